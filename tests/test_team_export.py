"""Team exports: consensus and per-reviewer CSV columns, read back; training takes the
consensus label by default and says where its labels came from; a head retrains on it."""

from __future__ import annotations

import json

import pytest
from training_fixtures import colour_slide

from pvdesk.export.csv import read_predictions_csv, write_predictions_csv
from pvdesk.review.sample import make_sample_store
from pvdesk.review.store import ReviewStore
from pvdesk.review.types import TilePrediction
from pvdesk.taxonomy import CLASS_NAMES


def test_team_columns_follow_the_store_and_read_back(tmp_path):
    store, run, ids = make_sample_store(tmp_path / "s.pvdb", n_tiles=6, reviewer="ana")
    store.correct_many(ids[:4], "adenosis", run)
    plain = tmp_path / "plain.csv"
    write_predictions_csv(store, plain)  # one reviewer: the usual layout
    assert "consensus_label" not in read_predictions_csv(plain).rows[0]
    write_predictions_csv(store, tmp_path / "forced.csv", team=True)
    row = read_predictions_csv(tmp_path / "forced.csv").rows[0]
    assert (row["consensus_source"], row["label_by:ana"]) == ("single", "adenosis")
    with ReviewStore(store.path, reviewer="=ben") as ben:  # a formula-like name
        ben.correct_many(ids[:2], "adenosis", run)
        ben.correct(ids[2], "fibroadenoma", run)
        ben.correct(ids[5], "fibroadenoma", run)
    store.set_role("dora", "adjudicator")
    with ReviewStore(store.path, reviewer="dora") as dora:
        dora.correct(ids[2], "phyllodes_tumor", run)
    path = tmp_path / "team.csv"
    write_predictions_csv(store, path)
    header = path.read_text().splitlines()[0].split(",")
    assert header[-5:] == ["consensus_label", "consensus_source", "label_by:=ben",
                           "label_by:ana", "label_by:dora"]
    table = read_predictions_csv(path)
    by = {(r["tile_x"], r["tile_y"]): r for r in table.rows}
    recs = {r.tile_id: (r.tile_x, r.tile_y) for r in store.tiles()}
    got = {t: (by[recs[t]]["consensus_label"], by[recs[t]]["consensus_source"]) for t in ids}
    assert got == {ids[0]: ("adenosis", "unanimous"), ids[1]: ("adenosis", "unanimous"),
                   ids[2]: ("phyllodes_tumor", "adjudicated"), ids[3]: ("adenosis", "single"),
                   ids[4]: ("", ""), ids[5]: ("fibroadenoma", "single")}  # 4: unreviewed
    assert by[recs[ids[2]]]["label_by:=ben"] == "fibroadenoma"
    assert by[recs[ids[2]]]["label_by:dora"] == "phyllodes_tumor"
    store.close()


def _team_store(tmp_path):
    """Four slides of two coloured classes, read by ana and ben; ben disagrees on two tiles
    of the first slide, which dora adjudicates, and on one of the second, left disputed."""
    store = ReviewStore(tmp_path / "team.pvdb", reviewer="ana")
    run = store.add_run("demo-clip-rn50", "1", "", list(CLASS_NAMES), "cpu", {})
    truth = {}
    for i in range(4):
        slide, tiles = colour_slide(tmp_path / f"slide{i}.tif", classes=2, per_class=3, seed=i)
        store.add_slide(f"s{i}", str(slide), {})
        p = [1.0 / len(CLASS_NAMES)] * len(CLASS_NAMES)
        store.add_predictions(run, f"s{i}", [TilePrediction(str(slide), x, y, w, h, 0.5, p)
                                             for x, y, w, h, _ in tiles])
        for x, y, w, h, label in tiles:
            truth[store.find_tile(f"s{i}", None, x, y, w, h)] = (i, label)
    for tid, (_, label) in truth.items():
        store.correct(tid, label, run)
    wrong = {0: "mucinous_carcinoma", 1: "adenosis"}
    with ReviewStore(store.path, reviewer="ben") as ben:
        flips = [t for t, (i, _) in truth.items() if i == 0][:2] + \
                [t for t, (i, _) in truth.items() if i == 1][:1]
        for tid, (_, label) in truth.items():
            ben.correct(tid, wrong[0] if tid in flips else label, run)
    store.set_role("dora", "adjudicator")
    with ReviewStore(store.path, reviewer="dora") as dora:
        for tid in flips[:2]:
            dora.correct(tid, truth[tid][1], run)
    return store, truth, flips


def test_training_uses_consensus_and_counts_where_labels_come_from(tmp_path):
    from training.data.review_csv import load_review_csv

    store, truth, flips = _team_store(tmp_path)
    assert store.disputed() == [flips[2]]
    path = tmp_path / "clip_predictions.csv"
    write_predictions_csv(store, path)
    store.close()
    ds = load_review_csv(path)
    assert ds.label_sources() == {"adjudicated": 2, "unanimous": len(truth) - 3}
    assert any("1 disputed" in n for n in ds.notes)
    labels = {(s.region[0], s.region[1], s.path): s.label for s in ds.samples}
    assert len(labels) == len(truth) - 1
    # without consensus, the review columns are used (each tile's latest decision: dora's
    # or ben's), so the disputed tile comes back
    assert len(load_review_csv(path, consensus=False).samples) == len(truth)


@pytest.fixture
def home(monkeypatch, pvdesk_home):
    monkeypatch.setenv("PVDESK_OFFLINE", "1")


def test_a_head_retrains_on_the_consensus_export(tmp_path, home, capsys):
    from pvdesk.cli import main as pvdesk_main
    from training.cli import main

    store, truth, _ = _team_store(tmp_path)
    store.close()
    csv_path = tmp_path / "consensus.csv"
    assert pvdesk_main(["review", "export", str(store.path), "--csv", str(csv_path)]) == 0
    assert (f"consensus (rows): 2 adjudicated, {len(truth) - 3} unanimous, 0 single, "
            "1 disputed, 0 none") in capsys.readouterr().out
    out = tmp_path / "bundle"
    rc = main(["train", "--data", str(csv_path), "--head", "clip-linear", "--backbone",
               "demo-clip-rn50", "--out", str(out), "--fractions", "0.5,0.25,0.25",
               "--progress", "plain", "--bootstrap", "0", "--workers", "1"])
    err = capsys.readouterr()
    assert rc == 0, err.err
    sources = json.loads((out / "manifest.json").read_text())["provenance"]["label_sources"]
    assert set(sources) <= {"adjudicated", "unanimous"} and sources.get("unanimous", 0) > 0
    report = (out / "report.md").read_text()
    n = sources.get("adjudicated", 0) + sources["unanimous"]
    assert (f"- training labels: {n} consensus labels ({sources.get('adjudicated', 0)} "
            f"adjudicated, {sources['unanimous']} unanimous), 0 single-reader confirmed model "
            "predictions, 0 single-reader corrections") in report


def test_retrain_merges_a_team_export_with_a_single_reader_one(tmp_path):
    from pvdesk.app.retrain_plan import merge_csvs
    from training.data.review_csv import load_review_csv

    store, truth, _ = _team_store(tmp_path)
    write_predictions_csv(store, tmp_path / "team.csv")
    store.close()
    slide, tiles = colour_slide(tmp_path / "solo.tif", classes=2, per_class=2, seed=9)
    with ReviewStore(tmp_path / "solo.pvdb", reviewer="eve") as solo:
        run = solo.add_run("demo-clip-rn50", "1", "", list(CLASS_NAMES), "cpu", {})
        solo.add_slide("solo", str(slide), {})
        p = [1.0 / len(CLASS_NAMES)] * len(CLASS_NAMES)
        solo.add_predictions(run, "solo", [TilePrediction(str(slide), x, y, w, h, 0.5, p)
                                           for x, y, w, h, _ in tiles])
        for x, y, w, h, label in tiles:
            solo.correct(solo.find_tile("solo", None, x, y, w, h), label, run)
        write_predictions_csv(solo, tmp_path / "solo.csv")
    assert "consensus_source" not in read_predictions_csv(tmp_path / "solo.csv").rows[0]
    n = merge_csvs([tmp_path / "team.csv", tmp_path / "solo.csv"], tmp_path / "all.csv")
    assert n == len(truth) + len(tiles)
    ds = load_review_csv(tmp_path / "all.csv")
    # eve's two tiles of the predicted class (uniform probabilities: the first) confirm it
    assert ds.label_sources() == {"adjudicated": 2, "unanimous": len(truth) - 3,
                                  "confirmed": 2, "corrected": 2}


@pytest.mark.parametrize("tail, says", [
    (["consensus_label"], "team columns"),
    (["consensus_source", "consensus_label"], "team columns"),
    (["consensus_label", "consensus_source", "label_by:"], "team columns"),
    (["consensus_label", "consensus_source", "other"], "team columns"),
])
def test_malformed_team_headers_are_refused_with_one_line(tmp_path, tail, says):
    from pvdesk.export import ExportError

    store, run, ids = make_sample_store(tmp_path / "s.pvdb", n_tiles=2, reviewer="ana")
    store.correct(ids[0], "adenosis", run)
    path = tmp_path / "t.csv"
    write_predictions_csv(store, path)
    store.close()
    lines = path.read_text().splitlines()
    lines[0] += "," + ",".join(tail)
    lines[1:] = [line + "," * len(tail) for line in lines[1:]]
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ExportError, match=says) as err:
        read_predictions_csv(path)
    assert "\n" not in str(err.value) and str(path) in str(err.value)


def test_a_bad_consensus_source_stops_training_with_the_line(tmp_path):
    from training.data.review_csv import load_review_csv
    from training.errors import DataError

    store, truth, _ = _team_store(tmp_path)
    path = tmp_path / "team.csv"
    write_predictions_csv(store, path)
    store.close()
    text = path.read_text().replace(",unanimous,", ",majority,", 1)
    path.write_text(text)
    with pytest.raises(DataError, match=r"line \d+: unknown consensus_source 'majority'"):
        load_review_csv(path)


def test_export_with_a_reviewer_shows_that_reviewers_decisions(tmp_path):
    from pvdesk.cli import main

    store, run, ids = make_sample_store(tmp_path / "s.pvdb", n_tiles=3, reviewer="ana")
    store.correct(ids[0], "adenosis", run)
    with ReviewStore(store.path, reviewer="ben") as ben:
        ben.correct(ids[0], "fibroadenoma", run)
    store.close()
    for who, want in ((None, ("fibroadenoma", "ben")), ("ana", ("adenosis", "ana"))):
        out = tmp_path / f"{who}.csv"
        assert main(["review", "export", str(store.path), "--csv", str(out)]
                    + (["--reviewer", who] if who else [])) == 0
        row = next(r for r in read_predictions_csv(out).rows if r["review_label"])
        assert (row["review_label"], row["reviewer"]) == want
        assert (row["label_by:ana"], row["label_by:ben"]) == ("adenosis", "fibroadenoma")
