"""A prediction CSV says exactly which weights made each row (model_sha256): written by
`pvdesk predict` and by every store export, read back, refused when hostile, carried by
imports, and checked against a bundle with `pvdesk models check NAME --csv FILE`."""

from __future__ import annotations

import csv
import json

import pytest
from hostile_inputs import csv_row, write_csv
from inference_fakes import FakeClassifier, small_slide
from models_support import linear_tensors, manifest
from old_store_support import old_sample_store

from pvdesk.cli import main
from pvdesk.export import ExportError
from pvdesk.export.csv import import_csv, read_predictions_csv, write_predictions_csv
from pvdesk.models.registry import write_bundle
from pvdesk.predict import LoadedModel, predict_source
from pvdesk.review import ReviewStore
from pvdesk.review.project import export_review
from pvdesk.review.schema import SCHEMA_VERSION
from pvdesk.slides import open_source
from pvdesk.taxonomy import CLASS_NAMES

CSV_NAME = "clip_predictions.csv"


def _bundle(folder, seed: int, name: str = "fine"):
    """A clip-linear bundle ``name``@1 whose own weights (a linear head) depend on ``seed``."""
    m = manifest(name, "clip-linear", lineage={"parts": []})
    return write_bundle(folder, m, linear_tensors(len(CLASS_NAMES), seed=seed))


def _recorded_sha(bundle) -> str:
    """The weights sha256 the bundle's manifest.json records, read from the file itself."""
    raw = json.loads((bundle.path / "manifest.json").read_text())
    (rec,) = raw["lineage"]["files"]
    assert rec["file"] == "weights.safetensors"
    return rec["sha256"]


@pytest.fixture(scope="module")
def slide(tmp_path_factory):
    return small_slide(tmp_path_factory.mktemp("identity"))


@pytest.fixture(scope="module")
def bundles(tmp_path_factory):
    """Two bundles with one name and version and different weights (a fine-tune saved over
    a name, a re-download)."""
    root = tmp_path_factory.mktemp("bundles")
    return _bundle(root / "a", seed=0), _bundle(root / "b", seed=1)


def _predict(slide, bundle, out, store=None):
    with open_source(slide) as src:
        return predict_source(src, [LoadedModel(bundle, FakeClassifier(CLASS_NAMES))], out,
                              tile_um=32.0, batch_size=16, workers=1, heatmap_size=200,
                              store=store)


def test_predict_csv_carries_the_manifests_weights_sha(slide, bundles, tmp_path):
    a, b = bundles
    assert (a.name, a.version) == (b.name, b.version)
    _predict(slide, a, tmp_path / "a")
    _predict(slide, b, tmp_path / "b")
    rows_a = read_predictions_csv(tmp_path / "a" / CSV_NAME).rows
    rows_b = read_predictions_csv(tmp_path / "b" / CSV_NAME).rows
    assert rows_a and {r["model"] for r in rows_a} == {r["model"] for r in rows_b}
    assert {r["model_sha256"] for r in rows_a} == {_recorded_sha(a)[:16]}
    assert {r["model_sha256"] for r in rows_b} == {_recorded_sha(b)[:16]}
    assert _recorded_sha(a)[:16] != _recorded_sha(b)[:16]  # one name@version, two cells
    with open(tmp_path / "a" / CSV_NAME, newline="") as fh:
        header = next(csv.reader(fh))
    assert header[-3:] == ["tile_status", "patient", "model_sha256"]


def test_store_runs_and_review_export_carry_the_sha(slide, bundles, tmp_path, capsys):
    a, b = bundles
    with ReviewStore(tmp_path / "s.pvdb") as store:
        _predict(slide, a, tmp_path / "a", store)
        _predict(slide, b, tmp_path / "b", store)
        assert [r.weights_sha256 for r in store.runs()] == [_recorded_sha(a), _recorded_sha(b)]
    out = tmp_path / "export.csv"
    assert main(["review", "export", str(tmp_path / "s.pvdb"), "--csv", str(out)]) == 0
    by_run = {}
    for r in read_predictions_csv(out).rows:
        by_run.setdefault(r["model_sha256"], 0)
        by_run[r["model_sha256"]] += 1
    assert set(by_run) == {_recorded_sha(a)[:16], _recorded_sha(b)[:16]}
    capsys.readouterr()
    assert main(["review", "stats", str(tmp_path / "s.pvdb")]) == 0
    out = capsys.readouterr().out
    for sha in by_run:  # the store's runs are named with their weights
        assert f"fine@1 [weights sha256 {sha}]" in out
    with ReviewStore(tmp_path / "s.pvdb") as store:  # the window's File > Export path
        export_review(store, tmp_path / "window.csv")
    assert {r["model_sha256"] for r in read_predictions_csv(tmp_path / "window.csv").rows
            } == set(by_run)


def test_a_bundle_without_its_own_weights_file_leaves_the_cell_empty(slide, tmp_path):
    m = manifest("zs", "clip-zeroshot", lineage={"parts": []}, prompts="breakhis-default")
    zs = write_bundle(tmp_path / "zs", m, {})
    assert zs.weights_sha256 == ""
    _predict(slide, zs, tmp_path / "o")
    assert {r["model_sha256"] for r in read_predictions_csv(tmp_path / "o" / CSV_NAME).rows
            } == {""}


def test_an_old_store_migrates_and_its_runs_get_an_empty_cell(tmp_path, monkeypatch):
    path = tmp_path / "v3.pvdb"
    store, run, ids = old_sample_store(path, 3, monkeypatch, n_tiles=4)
    store.close()
    with ReviewStore(path) as store:
        assert store.con.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 4
        (info,) = store.runs()
        assert info.weights_sha256 == "" and info.model_sha == ""  # unknown, never guessed
        n = write_predictions_csv(store, tmp_path / "old.csv")
        new = store.add_run("m", "2", "", ["a", "b"], "cpu", weights_sha256="ab" * 32)
        assert store.run(new).model_sha == "ab" * 8
    rows = read_predictions_csv(tmp_path / "old.csv").rows
    assert len(rows) == n == 4 and {r["model_sha256"] for r in rows} == {""}


def test_an_old_csv_without_the_column_reads_and_imports(tmp_path):
    path = write_csv(tmp_path / "new.csv", [csv_row(tile_x=224 * i) for i in range(3)])
    lines = path.read_text().splitlines()
    old = tmp_path / "old.csv"
    old.write_text("\n".join(line.rsplit(",", 1)[0] for line in lines) + "\n")
    assert "model_sha256" not in old.read_text()
    table = read_predictions_csv(old)
    assert [r["model_sha256"] for r in table.rows] == ["", "", ""]
    with ReviewStore(tmp_path / "s.pvdb") as store:
        r = import_csv(store, old)
        assert r["rows"] == 3 and [(m["model"], m["sha"]) for m in r["models"]] == [("m@1", "")]
        assert store.runs()[0].weights_sha256 == ""


def test_a_team_export_reads_with_and_without_the_column(tmp_path):
    from pvdesk.review.sample import make_sample_store

    store, run, ids = make_sample_store(tmp_path / "s.pvdb", n_tiles=3)
    with store:
        write_predictions_csv(store, tmp_path / "t.csv", team=True)
    with open(tmp_path / "t.csv", newline="") as fh:
        table = list(csv.reader(fh))
    k = table[0].index("model_sha256")
    assert table[0][k + 1] == "consensus_label"  # the team columns follow it
    with open(tmp_path / "old.csv", "w", newline="") as fh:  # as written before it existed
        csv.writer(fh).writerows([r[:k] + r[k + 1:] for r in table])
    for name in ("t.csv", "old.csv"):
        rows = read_predictions_csv(tmp_path / name).rows
        assert len(rows) == 3 and {r["model_sha256"] for r in rows} == {""}
        assert all("consensus_source" in r for r in rows)


def test_import_keeps_two_weights_of_one_name_apart_and_exports_them_back(tmp_path, capsys):
    sha_a, sha_b = "0123456789abcdef", "fedcba9876543210"
    rows = ([csv_row(tile_x=224 * i, model_sha256=sha_a) for i in range(2)]
            + [csv_row(tile_x=224 * i, model_sha256=sha_b.upper()) for i in range(3)])
    path = write_csv(tmp_path / "two.csv", rows)
    store_path = tmp_path / "s.pvdb"
    assert main(["review", "import", str(store_path), "--csv", str(path)]) == 0
    out = capsys.readouterr().out
    assert f"model m@1 [weights sha256 {sha_a}]: 2 rows" in out
    assert f"model m@1 [weights sha256 {sha_b}]: 3 rows" in out  # read back lowercase
    with ReviewStore(store_path) as store:
        assert sorted(r.weights_sha256 for r in store.runs()) == [sha_a, sha_b]
        write_predictions_csv(store, tmp_path / "back.csv")
        again = import_csv(store, tmp_path / "back.csv")
        assert again["runs_created"] == 0  # the same weights find their own runs
    cells = sorted(r["model_sha256"] for r in read_predictions_csv(tmp_path / "back.csv").rows)
    assert cells == [sha_a] * 2 + [sha_b] * 3


HOSTILE_SHA = {
    "formula": ("=HYPERLINK(\"http://x\")", "model_sha256"),
    "quoted formula": ("'=1+2", "model_sha256"),
    "non-hex": ("zzzzzzzzzzzzzzzz", "model_sha256"),
    "too short": ("0123abcd", "model_sha256"),
    "full sha with a space": ("0123456789abcdef ", "model_sha256"),
    "10 MB cell": ("a" * 10_000_000, "longer than"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_SHA))
def test_hostile_sha_cells_are_refused_with_the_line(tmp_path, case):
    cell, says = HOSTILE_SHA[case]
    rows = [csv_row(tile_x=224 * i, model_sha256="0123456789abcdef") for i in range(5)]
    rows[2]["model_sha256"] = cell
    path = write_csv(tmp_path / "bad.csv", rows)
    with ReviewStore(tmp_path / "s.pvdb") as store:
        with pytest.raises(ExportError) as err:
            import_csv(store, path)
        assert store.runs() == [] and store.tile_count() == 0
    text = str(err.value)
    assert "\n" not in text and str(path) in text and says in text and "line 4" in text
    assert len(text) < 400


def test_models_check_csv_counts_matching_different_and_unknown(slide, bundles, tmp_path,
                                                                capsys):
    a, b = bundles
    _predict(slide, a, tmp_path / "a")
    _predict(slide, b, tmp_path / "b")
    only_a = tmp_path / "a" / CSV_NAME
    n = len(read_predictions_csv(only_a).rows)
    assert main(["models", "check", str(a.path), "--csv", str(only_a)]) == 0
    out = capsys.readouterr().out
    assert f"weights sha256 {_recorded_sha(a)[:16]}" in out
    assert f"{n} rows: {n} made by these weights, 0 by other weights, 0 unknown" in out
    # the same name@version with other weights: every row is different
    assert main(["models", "check", str(b.path), "--csv", str(only_a)]) == 1
    assert f"{n} rows: 0 made by these weights, {n} by other weights" in capsys.readouterr().out
    # a mixed file: rows of a, rows of b and rows without the column's value
    mixed = tmp_path / "mixed.csv"
    lines = only_a.read_text().splitlines()
    other = (tmp_path / "b" / CSV_NAME).read_text().splitlines()[1:3]
    unknown = [line.rsplit(",", 1)[0] + "," for line in lines[1:4]]
    mixed.write_text("\n".join(lines[:6] + other + unknown) + "\n")
    assert main(["models", "check", str(a.path), "--csv", str(mixed)]) == 1
    assert "10 rows: 5 made by these weights, 2 by other weights, 3 unknown" in (
        capsys.readouterr().out)


def test_models_check_csv_refuses_weights_that_differ_from_the_manifest(bundles, tmp_path,
                                                                        capsys):
    import shutil

    a, b = bundles
    swapped = tmp_path / "swapped"
    shutil.copytree(a.path, swapped)
    shutil.copy(b.path / "weights.safetensors", swapped / "weights.safetensors")
    good = write_csv(tmp_path / "g.csv", [csv_row(model_sha256=_recorded_sha(a)[:16])])
    assert main(["models", "check", str(swapped), "--csv", str(good)]) == 2
    err = capsys.readouterr().err
    assert "does not match" in err and "Traceback" not in err


def test_models_lists_the_cell_a_bundles_rows_carry(bundles, capsys):
    a, _ = bundles
    assert main(["models", "--dir", str(a.path)]) == 0
    sha = _recorded_sha(a)
    assert f"own weights: sha256 {sha} (CSV model_sha256 {sha[:16]})" in capsys.readouterr().out
    assert main(["models", "--dir", str(a.path), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["bundles"]
    assert [r["model_sha256"] for r in rows if r["path"] == str(a.path)] == [sha[:16]]


def test_models_check_csv_refuses_a_bad_file_in_one_line(bundles, tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("not,a,predictions,csv\n")
    assert main(["models", "check", str(bundles[0].path), "--csv", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert str(bad) in err and "\n" not in err and "Traceback" not in err


def test_training_names_the_models_and_weights_a_review_csv_came_from(tmp_path):
    from training_fixtures import colour_slide, review_rows

    from pvdesk.export.csv import write_rows_csv
    from training.data import load_dataset

    slide, tiles = colour_slide(tmp_path / "slide.tif", classes=2, per_class=2)
    rows = review_rows(slide, tiles)
    for i, row in enumerate(rows):
        row["model_sha256"] = "0123456789abcdef" if i < 3 else ""
    write_rows_csv(tmp_path / "p.csv", list(CLASS_NAMES), rows)
    ds = load_dataset(tmp_path / "p.csv")
    assert ("p.csv: predictions by demo-clip-rn50@1 [weights sha256 0123456789abcdef] "
            "(3 rows); demo-clip-rn50@1 [weights unknown] (1 rows)") in ds.notes


def test_a_team_merge_keeps_each_runs_weights(tmp_path):
    from pvdesk.review.merge import merge_stores

    for name, sha in (("a", "aa" * 32), ("b", "bb" * 32)):
        with ReviewStore(tmp_path / f"{name}.pvdb") as store:
            store.add_run("m", "1", "", ["x", "y"], "cpu", weights_sha256=sha)
    merge_stores(tmp_path / "m.pvdb", [tmp_path / "a.pvdb", tmp_path / "b.pvdb"])
    with ReviewStore(tmp_path / "m.pvdb") as store:
        assert sorted(r.weights_sha256 for r in store.runs()) == ["aa" * 32, "bb" * 32]
