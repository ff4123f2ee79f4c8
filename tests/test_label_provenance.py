"""Where labels come from, and review status across runs.

A decision is made while one run's prediction is on screen; another run's export must not
call it "confirmed" where that run predicted something else. Retraining counts how many of
its labels were confirmed model predictions, corrections or unreviewed pseudo-labels, and
its report warns when the old model's opinions dominate (confirmation bias).
"""

from __future__ import annotations

import json

import pytest
from training_fixtures import colour_slide, review_rows

from pvdesk.export.csv import read_predictions_csv, write_predictions_csv, write_rows_csv
from pvdesk.review.store import ReviewStore
from pvdesk.review.types import TilePrediction
from pvdesk.taxonomy import CLASS_NAMES


def _onehot(name: str) -> list[float]:
    p = [0.02] * len(CLASS_NAMES)
    p[CLASS_NAMES.index(name)] = 1 - 0.02 * (len(CLASS_NAMES) - 1)
    return p


def test_each_runs_export_says_confirmed_only_where_that_run_predicted_the_label(tmp_path):
    with ReviewStore(tmp_path / "s.pvdb") as store:
        store.add_slide("s", "/x/s.svs", {})
        a = store.add_run("model-a", "1", "", list(CLASS_NAMES), "cpu", {})
        b = store.add_run("model-b", "1", "", list(CLASS_NAMES), "cpu", {})
        tile = TilePrediction("/x/s.svs", 0, 0, 224, 224, 0.5, _onehot("adenosis"))
        store.add_predictions(a, "s", [tile])
        store.add_predictions(b, "s", [TilePrediction("/x/s.svs", 0, 0, 224, 224, 0.5,
                                                      _onehot("ductal_carcinoma"))])
        tid = next(iter(store.tiles(run_id=a))).tile_id
        store.confirm(tid, run_id=a)  # the reviewer agrees with model A: adenosis
        for run, want in ((a, "confirmed"), (b, "corrected")):
            path = tmp_path / f"run{run}.csv"
            write_predictions_csv(store, path, run_id=run)
            (row,) = read_predictions_csv(path).rows
            assert row["review_label"] == "adenosis"
            assert row["review_status"] == want, (run, row["predicted"])
        from pvdesk.export.geojson import metadata

        by_run = {r.run_id: r for r in store.tiles()}
        assert metadata(by_run[b])["review_status"] == "corrected"
        assert metadata(by_run[a])["review_status"] == "confirmed"
        from pvdesk.review.project import export_review

        summary = export_review(store, tmp_path / "all.csv")
        assert (summary["confirmed"], summary["corrected"], summary["reviewed"]) == (1, 1, 2)


def test_review_export_says_where_its_labels_come_from(tmp_path, capsys):
    from pvdesk.cli import main

    with ReviewStore(tmp_path / "s.pvdb") as store:
        store.add_slide("s", "/x/s.svs", {})
        run = store.add_run("m", "1", "", list(CLASS_NAMES), "cpu", {})
        store.add_predictions(run, "s", [
            TilePrediction("/x/s.svs", 224 * i, 0, 224, 224, 0.5, _onehot("adenosis"))
            for i in range(4)])
        ids = [r.tile_id for r in store.tiles(run_id=run)]
        store.confirm(ids[0], run_id=run)
        store.correct(ids[1], "fibroadenoma", run_id=run)
    assert main(["review", "export", str(tmp_path / "s.pvdb"), "--csv",
                 str(tmp_path / "c.csv")]) == 0
    out = capsys.readouterr().out
    assert ("labels: 1 confirmed model predictions, 1 corrections, 2 unreviewed "
            "(pseudo-labels if trained on)") in out


@pytest.fixture
def home(monkeypatch, pvdesk_home):
    monkeypatch.setenv("PVDESK_OFFLINE", "1")


def test_retraining_counts_label_sources_and_warns_of_confirmation_bias(tmp_path, home,
                                                                       capsys):
    from training.cli import main
    from training.data.review_csv import load_review_csv

    rows = []
    for i in range(4):  # four slides (patients) of two coloured classes
        slide, tiles = colour_slide(tmp_path / f"slide{i}.tif", classes=2, per_class=3, seed=i)
        rows += review_rows(slide, tiles, "confirmed" if i < 3 else "corrected")
    csv_path = tmp_path / "clip_predictions.csv"
    write_rows_csv(csv_path, CLASS_NAMES, rows)
    ds = load_review_csv(csv_path)
    assert ds.label_sources() == {"confirmed": 18, "corrected": 6}
    # the reviewer only ever agreed with the model: every training label is its opinion
    write_rows_csv(csv_path, CLASS_NAMES, [dict(r, review_status="confirmed") for r in rows])
    out = tmp_path / "b"
    rc = main(["train", "--data", str(csv_path), "--head", "clip-linear", "--backbone",
               "demo-clip-rn50", "--out", str(out), "--fractions", "0.5,0.25,0.25",
               "--progress", "plain", "--bootstrap", "0", "--workers", "1"])
    err = capsys.readouterr()
    assert rc == 0, err.err
    assert "confirmation bias" in err.out + err.err
    m = json.loads((out / "manifest.json").read_text())
    sources = m["provenance"]["label_sources"]
    assert set(sources) == {"confirmed"} and sources["confirmed"] >= 6
    report = (out / "report.md").read_text()
    assert (f"- training labels: {sources['confirmed']} confirmed model predictions, "
            "0 corrections, 0 unreviewed pseudo-labels — WARNING: 100% of the training "
            "labels are the old model's own predictions") in report
    assert "confirmation bias" in report
    split = (out / "split.csv").read_text().splitlines()
    assert split[0].endswith(",label_source")  # kept with the split for later runs
