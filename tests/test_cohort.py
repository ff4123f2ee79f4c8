"""`pvdesk predict` over a cohort, locally: inputs, cohort.csv, a broken slide, --resume,
a review project as --store, and --backend ray without Ray."""

from __future__ import annotations

import csv
import os
import sys

import pytest
from cohort_support import make_cohort, tiny_bundle
from PIL import Image

from pvdesk.cli import main
from pvdesk.cohort.cohort_csv import TIMING
from pvdesk.cohort.inputs import expand_inputs
from pvdesk.errors import PvdeskError

ARGS = ["--precision", "fp32", "--heatmap-size", "120", "--batch", "8"]


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    root = tmp_path_factory.mktemp("cohort")
    return make_cohort(root / "slides"), tiny_bundle(root / "bundles")


@pytest.fixture(autouse=True)
def _home(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("PVDESK_HOME", str(tmp_path_factory.getbasetemp() / "home"))


def predict(capsys, *argv):
    rc = main(["predict", *map(str, argv), *ARGS])
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def rows(out, timing: bool = False):
    """cohort.csv's rows (without the timing columns unless ``timing``)."""
    with open(out / "cohort.csv", newline="") as fh:
        table = list(csv.DictReader(fh))
    return table if timing else [{k: v for k, v in r.items() if k not in TIMING} for r in table]


def test_inputs_folders_globs_lists(tmp_path):
    root = make_cohort(tmp_path / "c", slides=2)
    Image.new("RGB", (8, 8)).save(root / "loose.png")
    tree = tmp_path / "breakhis" / "benign" / "adenosis"
    tree.mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(tree / "a.png")
    listed = tmp_path / "list.txt"
    listed.write_text("# cohort\nc/case-00.tif\n\nmissing.svs\nbreakhis\n")
    got = expand_inputs([str(root), str(tmp_path / "c" / "*.tif")], str(listed))
    names = [p.relative_to(tmp_path).as_posix() for p in got.paths]
    assert names == ["c/broken.svs", "c/case-00.tif", "c/patches", "c/site-b/case-01.tif",
                     "missing.svs", "breakhis"]  # each once, a BreakHis tree is one input
    assert any("loose" not in n and "1 image(s) beside slides" in n for n in got.notes)
    with pytest.raises(PvdeskError, match="no such file"):
        expand_inputs([str(tmp_path / "nowhere.svs")])
    with pytest.raises(PvdeskError, match="matches no file"):
        expand_inputs([str(tmp_path / "*.ndpi")])
    with pytest.raises(PvdeskError, match="no such list file"):
        expand_inputs([], str(tmp_path / "no-list.txt"))


@pytest.fixture(scope="module")
def local_run(cohort, tmp_path_factory):
    slides, bundle = cohort
    out = tmp_path_factory.mktemp("local") / "out"
    rc = main(["predict", str(slides), "--model", str(bundle), "--out", str(out), *ARGS])
    return rc, out


@pytest.mark.slow
def test_cohort_outputs_and_a_broken_slide(cohort, local_run):
    rc, out = local_run
    assert rc == 1  # finished, with a failed slide
    table = rows(out)
    assert [r["output"] for r in table] == ["broken", "case-00", "case-02", "patches",
                                            "case-01", "case-03"]
    broken = table[0]
    assert broken["status"] == "failed" and "broken.svs" in broken["error"]
    assert broken["tiles"] == ""
    done = table[1:]
    assert all(r["status"] == "done" and r["error"] == "" for r in done)
    for r in done:
        per_class = sum(int(v) for k, v in r.items() if k.startswith("n_"))
        assert per_class == int(r["tiles_classified"]) == int(r["tiles"]) > 0
        assert r["slide_call"] in ("benign", "malignant") and ">= 10%" in r["rule"]
        assert r["model"] == "tiny-resnet50@1 (UNTRAINED)"
        with open(out / r["output"] / "clip_predictions.csv") as fh:
            assert sum(1 for _ in fh) == int(r["tiles"]) + 1
    summary = (out / "cohort_summary.txt").read_text()
    assert "5 of 6 done, 1 of 6 failed" in summary and "tiles/s" in summary
    assert not [p for p in os.listdir(out) if p.startswith(".")]  # no half-made folder
    assert (out / "case-00" / "heatmaps").is_dir() and not (out / "broken").exists()


@pytest.mark.slow
def test_resume_skips_what_is_complete_and_redoes_what_changed(cohort, local_run, capsys,
                                                               tmp_path):
    import shutil

    slides, bundle = cohort
    rc, first = local_run
    out = tmp_path / "out"
    shutil.copytree(first, out)
    before = {p: (out / p / "clip_predictions.csv").stat().st_mtime_ns
              for p in ("case-00", "case-01", "patches")}
    rc, stdout, err = predict(capsys, slides, "--model", bundle, "--out", out, "--resume")
    assert rc == 1 and stdout.count("earlier run (--resume)") == 5
    assert "broken.svs" in err  # a failed slide is tried again
    assert rows(out) == rows(first)
    assert all((out / p / "clip_predictions.csv").stat().st_mtime_ns == t
               for p, t in before.items())
    # another grid: every slide is redone
    rc, stdout, _ = predict(capsys, slides, "--model", bundle, "--out", out, "--resume",
                            "--tile-um", "96")
    assert "earlier run (--resume)" not in stdout
    assert rows(out)[1]["tiles"] != rows(first)[1]["tiles"]


@pytest.mark.slow
def test_review_project_store_records_each_slide_once(cohort, capsys, tmp_path):
    from pvdesk.review.store import ReviewStore

    slides, bundle = cohort
    store, out = tmp_path / "project.pvdb", tmp_path / "out"
    for _ in range(2):
        rc, _, _ = predict(capsys, slides, "--model", bundle, "--out", out, "--store", store,
                           "--resume")
        assert rc == 1
    with ReviewStore(store, readonly=True) as s:
        assert len(s.slides()) == 5
        runs = s.runs()
        assert len(runs) == 5 and all(r.settings.get("cohort_key") for r in runs)
    shutil_out = out / "case-00"
    (shutil_out / "cohort.json").unlink()  # outputs incomplete, the store's run complete
    rc, stdout, _ = predict(capsys, slides, "--model", bundle, "--out", out, "--store", store,
                            "--resume")
    assert stdout.count("earlier run (--resume)") == 4
    with ReviewStore(store, readonly=True) as s:
        assert len(s.runs()) == 5  # redone outputs, the store's run not recorded twice


def test_ray_backend_without_ray_says_how_to_install(cohort, capsys, monkeypatch, tmp_path):
    slides, bundle = cohort
    monkeypatch.setitem(sys.modules, "ray", None)
    rc, _, err = predict(capsys, slides, "--model", bundle, "--out", tmp_path / "o",
                         "--backend", "ray")
    assert rc == 2 and "pip install 'pvdesk[cluster]'" in err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "o").exists()


def test_a_single_broken_input_is_refused_before_any_model(cohort, capsys, tmp_path):
    slides, bundle = cohort
    rc, _, err = predict(capsys, slides / "broken.svs", "--model", bundle, "--out",
                         tmp_path / "o")
    assert rc == 2 and "broken.svs" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_cohort_csv_is_rewritten_at_most_every_interval_and_at_the_end(cohort, tmp_path,
                                                                         monkeypatch):
    """Rewriting cohort.csv from all rows after every slide made a cohort's writing grow with
    the square of its size; it is rewritten on a clock and once at the end, with every row."""
    import pvdesk.cohort.driver as driver

    slides, bundle = cohort
    writes: list[int] = []
    real = driver.cohort_csv.write_cohort_csv

    def counted(path, classes, rows):
        writes.append(len(rows))
        return real(path, classes, rows)

    monkeypatch.setattr(driver.cohort_csv, "write_cohort_csv", counted)
    monkeypatch.setattr(driver, "FLUSH_EVERY_S", 3600.0)
    out = tmp_path / "out"
    assert main(["predict", str(slides), "--model", str(bundle), "--out", str(out), *ARGS]) == 1
    table = rows(out)
    assert writes == [0, len(table)]  # the empty table at the start, all rows at the end
    assert len(table) == 6 and sum(r["status"] == "failed" for r in table) == 1

    writes.clear()
    monkeypatch.setattr(driver, "FLUSH_EVERY_S", 0.0)  # a clock that is always due
    out2 = tmp_path / "out2"
    main(["predict", str(slides), "--model", str(bundle), "--out", str(out2), *ARGS])
    assert writes[0] == 0 and writes[-1] == len(table) and len(writes) == len(table) + 2
    assert writes == sorted(writes)


def test_a_run_removes_what_a_killed_rewrite_of_cohort_csv_left(cohort, tmp_path):
    """kill -9 while cohort.csv (or the summary) was being rewritten leaves its temporary
    file; the next run removes it with the half-made slide folders."""
    slides, bundle = cohort
    out = tmp_path / "out"
    out.mkdir()
    stray = [out / ".cohort.csv.k1ll3d.tmp", out / ".partial-case-00"]
    stray[0].write_text("path,slide_id\n/half")
    stray[1].mkdir()
    mine = out / "notes.txt"  # not ours: kept
    mine.write_text("keep")
    main(["predict", str(slides), "--model", str(bundle), "--out", str(out), "--resume", *ARGS])
    assert not any(p.exists() for p in stray) and mine.exists()
    assert not [p for p in os.listdir(out) if p.startswith(".")]
