"""A team's review survives CSV and GeoJSON round trips: export --team, import into a fresh
store, export again gives the same team columns; each reviewer's label comes back as that
reviewer's decision (audited, replayable), roles follow the consensus, bad cells are refused
with the file and line and nothing half-written."""

from __future__ import annotations

import csv
import json

import pytest

from pvdesk.cli import main
from pvdesk.export.csv import read_predictions_csv, write_predictions_csv
from pvdesk.review.replay import replay_by_reviewer
from pvdesk.review.sample import make_sample_store
from pvdesk.review.store import ReviewStore
from pvdesk.review.types import CONFIRMED, CORRECTED, TilePrediction


@pytest.fixture(autouse=True)
def _home(tmp_path, monkeypatch):
    monkeypatch.setenv("PVDESK_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PVDESK_OFFLINE", "1")


def _team_store(path, second_run: bool = False):
    """Readers ana, ben and carl, adjudicator dora, reader eve (no decisions). Tiles: 0-2
    unanimous, 3 disputed then adjudicated, 4 disputed, 5 confirmed by ben alone, 6-7 none."""
    store, run, ids = make_sample_store(path, n_tiles=8, reviewer="ana")
    if second_run:
        run2 = store.add_run("other-model", "2", "sha256:1", list(store.run(run).classes),
                             "cpu", {})
        recs = list(store.tiles(run_id=run))
        store.add_predictions(run2, "slide-1", [TilePrediction(
            r.source, r.tile_x, r.tile_y, r.tile_w, r.tile_h, r.mpp, list(r.probs[::-1]))
            for r in recs])
    store.correct_many(ids[:5], "adenosis", run)
    with ReviewStore(path, reviewer="ben") as ben:
        ben.correct_many(ids[:3], "adenosis", run)
        ben.correct(ids[3], "fibroadenoma", run)
        ben.confirm(ids[5], run)
    with ReviewStore(path, reviewer="carl") as carl:
        carl.correct(ids[3], "phyllodes_tumor", run)
        carl.correct(ids[4], "tubular_adenoma", run)
    store.set_role("dora", "adjudicator")
    with ReviewStore(path, reviewer="dora") as dora:
        dora.correct(ids[3], "fibroadenoma", run)
    store.set_role("eve", "reader")
    return store, run, ids


def _team(table) -> dict:
    """{(source, x, y, model): {team column: cell}} of a read CSV."""
    return {(r["source"], r["tile_x"], r["tile_y"], r["model"]):
            {k: v for k, v in r.items() if k.startswith(("label_by:", "consensus_"))}
            for r in table.rows}


def _labels(store) -> dict:
    """{reviewer: {(x, y): (status, label)}} of a store, with the tiles by coordinates."""
    xy = {r.tile_id: (r.tile_x, r.tile_y) for r in store.tiles()}
    return {name: {xy[t]: (d.status, d.label) for t, d in ds.items()}
            for name, ds in store.decisions_by_reviewer().items()}


def test_csv_team_round_trip_restores_every_reviewer(tmp_path, capsys):
    a, _run, _ids = _team_store(tmp_path / "a.pvdb")
    a.close()
    first, second = tmp_path / "1.csv", tmp_path / "2.csv"
    b = str(tmp_path / "b.pvdb")
    assert main(["review", "export", str(a.path), "--csv", str(first), "--team"]) == 0
    assert main(["review", "import", b, "--csv", str(first), "--reviewer", "site2"]) == 0
    out = capsys.readouterr().out
    assert "team: " in out and "dora (adjudicator)" in out and "eve (reader)" in out
    assert main(["review", "export", b, "--csv", str(second), "--team"]) == 0
    t1, t2 = read_predictions_csv(first), read_predictions_csv(second)
    assert list(t2.rows[0]) == list(t1.rows[0])  # the same columns, eve's included
    assert _team(t2) == _team(t1)
    sources = sorted(c["consensus_source"] for c in _team(t1).values())
    assert sources == ["", "", "adjudicated", "disputed", "single", "unanimous", "unanimous",
                       "unanimous"]
    with ReviewStore(a.path, reviewer="x") as a2, ReviewStore(b, reviewer="x") as b2:
        assert _labels(b2) == _labels(a2)
        assert b2.roles() == a2.roles()
        assert b2.consensus() and set(b2.consensus().values()) == set(a2.consensus().values())
        # the decisions table is the replay of the audit trail, every reviewer's included
        replayed = replay_by_reviewer(b2.audit())
        assert {n: {t: (d.status, d.label) for t, d in ds.items()}
                for n, ds in replayed.items()} == {
            n: {t: (d.status, d.label) for t, d in ds.items()}
            for n, ds in b2.decisions_by_reviewer().items()}
        pred = {r.tile_id: r.predicted for r in b2.tiles()}
        for ds in b2.decisions_by_reviewer().values():  # confirmed = the model's class
            for t, d in ds.items():
                assert d.status == (CONFIRMED if d.label == pred[t] else CORRECTED)
        imported = [r for r in b2.audit() if r.tile_id is not None]
        assert {r.action for r in imported} == {"import"}
        assert {r.reviewer for r in imported} == {"ana", "ben", "carl", "dora"}


def test_reimport_changes_nothing_and_the_file_wins_over_a_different_decision(tmp_path):
    a, run, ids = _team_store(tmp_path / "a.pvdb")
    path = tmp_path / "1.csv"
    write_predictions_csv(a, path, team=True)
    want = _labels(a)
    a.close()
    b = tmp_path / "b.pvdb"
    assert main(["review", "import", str(b), "--csv", str(path)]) == 0
    with ReviewStore(b, reviewer="x") as store:
        n = len(store.audit())
    assert main(["review", "import", str(b), "--csv", str(path)]) == 0
    with ReviewStore(b, reviewer="carl") as carl:
        assert len(carl.audit()) == n  # nothing new: same labels, same reviewers
        tile = next(r.tile_id for r in carl.tiles() if (r.tile_x, r.tile_y) ==
                    next(xy for xy, (_, lab) in want["carl"].items() if lab == "tubular_adenoma"))
        carl.correct(tile, "lobular_carcinoma")
    assert main(["review", "import", str(b), "--csv", str(path)]) == 0
    with ReviewStore(b, reviewer="x") as store:
        assert _labels(store) == want  # carl's label from the file again
        rows = [r for r in store.audit() if r.tile_id == tile and r.reviewer == "carl"]
        assert [r.new_label for r in rows] == ["tubular_adenoma", "lobular_carcinoma",
                                                "tubular_adenoma"]


def _rewrite(src, dst, edit):
    """Copy a CSV, applying ``edit(rows)`` to its rows (header first)."""
    with open(src, newline="") as fh:
        rows = list(csv.reader(fh))
    edit(rows)
    with open(dst, "w", newline="") as fh:
        csv.writer(fh).writerows(rows)


@pytest.mark.parametrize("what, edit, message", [
    ("unknown label", lambda rows: rows[3].__setitem__(rows[0].index("label_by:ben"), "Tumour"),
     "line 4: label_by:ben: unknown label 'Tumour'"),
    ("bad reviewer name", lambda rows: rows[0].__setitem__(-1, "label_by:" + "e" * 70),
     "line 1: 'eeee"),
    ("unprintable reviewer name", lambda rows: rows[0].__setitem__(-1, "label_by:e\x07"),
     "line 1: "),
    ("unknown consensus source", lambda rows: rows[2].__setitem__(
        rows[0].index("consensus_source"), "majority"), "line 3: unknown consensus_source"),
    ("adjudicated label nobody gave", lambda rows: [
        row.__setitem__(rows[0].index("consensus_label"), "lobular_carcinoma")
        for row in rows[1:] if row[rows[0].index("consensus_source")] == "adjudicated"],
     "is adjudicated, but no reviewer of the row gave it"),
])
def test_bad_team_cells_are_refused_and_nothing_is_written(tmp_path, capsys, what, edit,
                                                           message):
    a, run, ids = _team_store(tmp_path / "a.pvdb")
    good = tmp_path / "good.csv"
    write_predictions_csv(a, good, team=True)
    a.close()
    bad = tmp_path / "bad.csv"
    _rewrite(good, bad, edit)
    b = tmp_path / "b.pvdb"
    assert main(["review", "import", str(b), "--csv", str(good)]) == 0
    with ReviewStore(b, reviewer="x") as store:
        before = (len(store.audit()), store.roles(), _labels(store))
    capsys.readouterr()
    assert main(["review", "import", str(b), "--csv", str(bad)]) == 2, what
    err = capsys.readouterr().err
    assert str(bad) in err and message in err and "Traceback" not in err
    with ReviewStore(b, reviewer="x") as store:
        assert (len(store.audit()), store.roles(), _labels(store)) == before


def test_two_labels_of_one_reviewer_for_one_tile_roll_the_whole_import_back(tmp_path, capsys):
    """An all-runs export repeats a tile's team cells on each run's row; rows that disagree
    are refused while writing, and the transaction leaves the store as it was."""
    a, run, ids = _team_store(tmp_path / "a.pvdb", second_run=True)
    good = tmp_path / "good.csv"
    write_predictions_csv(a, good, team=True)
    a.close()

    def edit(rows):
        col = rows[0].index("label_by:ben")
        last = max(i for i, r in enumerate(rows) if r[col])  # a second run's row
        rows[last][col] = "mucinous_carcinoma"

    bad = tmp_path / "bad.csv"
    _rewrite(good, bad, edit)
    b = tmp_path / "b.pvdb"
    assert main(["review", "import", str(b), "--csv", str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"{bad}: line " in err and "label_by:ben is 'mucinous_carcinoma'" in err
    with ReviewStore(b, reviewer="x") as store:
        assert store.audit() == [] and store.runs() == [] and store.roles() == {}
    assert main(["review", "import", str(b), "--csv", str(good)]) == 0
    with ReviewStore(b, reviewer="x") as store, ReviewStore(a.path, reviewer="x") as orig:
        # labels only: with two runs, confirmed/corrected depends on the row's run
        labels = [{n: {xy: lab for xy, (_, lab) in d.items()} for n, d in _labels(s).items()}
                  for s in (store, orig)]
        assert labels[0] == labels[1]


def test_geojson_carries_the_team_and_reads_it_back(tmp_path, capsys):
    a, run, ids = _team_store(tmp_path / "a.pvdb")
    a.close()
    gj = tmp_path / "team.geojson"
    assert main(["review", "export", str(a.path), "--geojson", str(gj), "--object-type",
                 "annotation", "--offset", "0,0"]) == 0
    feats = json.loads(gj.read_text())["features"]
    meta = {tuple(f["geometry"]["coordinates"][0][0]): f["properties"]["metadata"]
            for f in feats}
    with ReviewStore(a.path, reviewer="x") as store:
        xy = {r.tile_id: (r.tile_x, r.tile_y) for r in store.tiles()}
    adjudicated = meta[xy[ids[3]]]
    assert {k: v for k, v in adjudicated.items() if k.startswith(("label_by:", "consensus"))} \
        == {"consensus_label": "fibroadenoma", "consensus_source": "adjudicated",
            "label_by:ana": "adenosis", "label_by:ben": "fibroadenoma",
            "label_by:carl": "phyllodes_tumor", "label_by:dora": "fibroadenoma"}
    assert meta[xy[ids[4]]]["consensus_source"] == "disputed"
    assert not any(k.startswith(("label_by:", "consensus")) for k in meta[xy[ids[7]]])
    assert all(isinstance(v, str) for m in meta.values() for v in m.values())  # QuPath: strings
    b = tmp_path / "b.pvdb"
    assert main(["review", "import-geojson", str(b), str(gj), "--reviewer", "site2"]) == 0
    assert "dora (adjudicator)" in capsys.readouterr().out
    first, second = tmp_path / "1.csv", tmp_path / "2.csv"
    assert main(["review", "export", str(a.path), "--csv", str(first), "--team"]) == 0
    assert main(["review", "export", str(b), "--csv", str(second), "--team"]) == 0
    t1, t2 = _team(read_predictions_csv(first)), _team(read_predictions_csv(second))
    eve_less = {k: {c: v for c, v in cells.items() if c != "label_by:eve"}
                for k, cells in t1.items()}  # eve labelled nothing: no feature names her
    assert t2 == eve_less
    with ReviewStore(b, reviewer="x") as store, ReviewStore(a.path, reviewer="x") as orig:
        assert _labels(store) == _labels(orig)
        assert store.roles()["dora"] == "adjudicator"


def test_geojson_with_a_bad_team_label_is_refused(tmp_path, capsys):
    a, run, ids = _team_store(tmp_path / "a.pvdb")
    a.close()
    gj = tmp_path / "team.geojson"
    assert main(["review", "export", str(a.path), "--geojson", str(gj), "--offset", "0,0"]) == 0
    doc = json.loads(gj.read_text())
    victim = next(f for f in doc["features"] if "label_by:carl" in f["properties"]["metadata"])
    victim["properties"]["metadata"]["label_by:carl"] = "Tumour"
    gj.write_text(json.dumps(doc))
    b = tmp_path / "b.pvdb"
    assert main(["review", "import-geojson", str(b), str(gj)]) == 2
    err = capsys.readouterr().err
    assert f"team.geojson: feature {victim['id']}: label_by:carl: unknown label 'Tumour'" in err
    with ReviewStore(b, reviewer="x") as store:
        assert store.audit() == [] and store.tile_count() == 0


def test_a_single_reviewer_geojson_is_unchanged(tmp_path):
    store, run, ids = make_sample_store(tmp_path / "s.pvdb", n_tiles=3, reviewer="ana")
    store.correct(ids[0], "adenosis", run)
    from pvdesk.export.geojson import write_geojson

    write_geojson(store, tmp_path / "g.geojson", offset=(0, 0))
    metas = [f["properties"]["metadata"] for f in
             json.loads((tmp_path / "g.geojson").read_text())["features"]]
    assert not any(k.startswith(("label_by:", "consensus")) for m in metas for k in m)
    write_geojson(store, tmp_path / "t.geojson", offset=(0, 0), team=True)
    metas = [f["properties"]["metadata"] for f in
             json.loads((tmp_path / "t.geojson").read_text())["features"]]
    assert metas[0]["label_by:ana"] == "adenosis" and metas[0]["consensus_source"] == "single"
    store.close()


def test_a_crowd_of_reviewer_columns_is_refused(tmp_path, capsys):
    a, run, ids = _team_store(tmp_path / "a.pvdb")
    good = tmp_path / "good.csv"
    write_predictions_csv(a, good, team=True)
    a.close()

    def edit(rows):
        rows[0] += [f"label_by:r{i}" for i in range(1001)]
        for row in rows[1:]:
            row += [""] * 1001

    bad = tmp_path / "crowd.csv"
    _rewrite(good, bad, edit)
    b = tmp_path / "b.pvdb"
    assert main(["review", "import", str(b), "--csv", str(bad)]) == 2
    assert "crowd.csv: line 2: more than 1000 reviewers" in capsys.readouterr().err
    with ReviewStore(b, reviewer="x") as store:
        assert store.audit() == [] and store.roles() == {}


def test_a_store_keeps_its_own_roles_and_says_where_the_file_disagrees(tmp_path, capsys):
    a, run, ids = _team_store(tmp_path / "a.pvdb")
    path = tmp_path / "1.csv"
    write_predictions_csv(a, path, team=True)
    a.close()
    b = tmp_path / "b.pvdb"
    with ReviewStore(b, reviewer="site2", create=True) as store:
        store.set_role("dora", "reader")
    assert main(["review", "import", str(b), "--csv", str(path)]) == 0
    out = capsys.readouterr().out
    assert "note: 1 tiles adjudicated in the file have no adjudicator" in out
    assert "dora (" not in out  # not a new reviewer here
    with ReviewStore(b, reviewer="x") as store:
        assert store.roles()["dora"] == "reader"
        assert store.disputed()  # dora reads here: tile 3 has three readers who disagree
