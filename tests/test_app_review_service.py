"""The review service, headless: keys answered in memory, writes acknowledged from the writer
thread, failures put back what the store holds, deltas touch only what changed, tiles
streaming in never move rows under the reviewer."""

from __future__ import annotations

import pytest
from review_support import fake_bundle, fake_probs, fake_source, grid_tiles, record_fake_run

from pvdesk.app.review_service import ReviewService
from pvdesk.review import ReviewStore
from pvdesk.review.project import RunRecorder
from pvdesk.review.session import ReviewSession


def make(tmp_path, cols=10, rows=8, **kw):
    store = ReviewStore(tmp_path / "s.pvdb", reviewer="tester")
    src = fake_source(tmp_path / "slide.tif")
    run = record_fake_run(store, src, grid_tiles(cols, rows, 100), side=100)
    return store, ReviewService(store, src.slide_id, run, **kw)


def test_actions_are_shown_at_once_and_stored_when_acknowledged(tmp_path):
    store, s = make(tmp_path)
    s.take_delta()
    first = s.first()
    assert s.command("enter") == "confirm"
    # in memory already: the row, the counts, the next tile
    assert s.all[first.tile_id].status == "confirmed" and s.counts().reviewed == 1
    assert s.current.tile_id == s.entries[1].tile_id and s.pending >= 1
    d = s.take_delta()
    assert not d.reset and d.rows == {0} and first.tile_id in d.outlines and d.counts
    acks = s.wait()
    assert s.pending == 0 and [a.error for a in acks if a.kind == "action"] == [None]
    assert store.decision(first.tile_id).status == "confirmed" and s.can_undo
    second = s.current
    s.command("5")
    s.wait()
    assert store.decision(second.tile_id).label == "ductal_carcinoma"
    assert s.counts() == store.counts(s.run_id, "slide-1")
    s.close()


def test_undo_and_redo_complete_on_poll(tmp_path):
    store, s = make(tmp_path)
    t = s.first().tile_id
    s.correct("mucinous_carcinoma")
    s.wait()
    assert s.undo() == []  # asynchronous: nothing changed yet
    s.wait()
    assert s.all[t].status == "unreviewed" and store.decision(t).status == "unreviewed"
    assert s.current.tile_id == t and s.can_redo
    s.redo()
    s.wait()
    assert s.all[t].label == "mucinous_carcinoma" == store.decision(t).label
    s.close()


def test_a_failed_write_puts_back_what_the_store_holds(tmp_path, monkeypatch):
    store, s = make(tmp_path)
    t = s.first().tile_id

    def full_disk(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(store, "confirm_many", full_disk)
    s.confirm()
    assert s.all[t].status == "confirmed"  # optimistic
    acks = s.wait()
    assert acks[-1].error and "No space left" in acks[-1].error
    assert "No space left" in s.last_error
    assert s.all[t].status == "unreviewed" and s.counts().reviewed == 0  # the truth again
    assert t in s.take_delta().outlines
    s.close()


def test_bulk_is_one_transaction_and_one_undo(tmp_path):
    store, s = make(tmp_path, cols=80, rows=70)  # 5,600 tiles
    ids = [e.tile_id for e in s.entries[:5000]]
    s.toggle(ids)
    s.take_delta()
    ops = store.con.execute("SELECT count(*) FROM ops").fetchone()[0]
    s.command("0")
    d = s.take_delta()
    assert len(d.rows) == 5000 and not d.reset and not s.selection
    s.wait()
    assert store.con.execute("SELECT count(*) FROM ops").fetchone()[0] == ops + 1
    assert s.counts().reviewed == 5000 == store.counts(s.run_id, "slide-1").reviewed
    s.undo()
    s.wait()
    assert store.counts(s.run_id, "slide-1").reviewed == 0 == s.counts().reviewed
    s.close()


def test_streamed_tiles_join_the_end_and_are_sorted_in_when_the_run_ends(tmp_path):
    store = ReviewStore(tmp_path / "s.pvdb", reviewer="tester")
    src = fake_source(tmp_path / "slide.tif")
    tiles = grid_tiles(10, 6, 100)
    grid = type("G", (), {"describe": lambda self: "g", "tile_um": 50.0, "side": 100,
                          "stride": 100, "level": 0, "out_size": 224})()
    rec = RunRecorder(store, src)
    run = rec.begin({"m": fake_bundle("m")}, grid, "cpu")["m"]
    s = ReviewService(store, src.slide_id, run, load=False)
    s.frozen = True
    probs = fake_probs(len(tiles))
    from pvdesk.inference.results import BatchResult

    def stream(lo, hi):
        out = rec.add_records(BatchResult(tiles[lo:hi], {"m": probs[lo:hi]}, {"m": None}))
        return s.add_records(out["m"])

    assert stream(0, 20) == 20
    s.first()
    shown = [e.tile_id for e in s.entries]
    cur = s.current.tile_id
    s.take_delta()
    assert stream(20, 60) == 40
    d = s.take_delta()
    assert d.appended == 40 and not d.reset
    assert [e.tile_id for e in s.entries[:20]] == shown and s.current.tile_id == cur
    assert stream(20, 30) == 0  # a tile is added once
    s.settle()
    assert sorted(e.tile_id for e in s.entries) == sorted(e.tile_id for e in
                                                           store.tiles(run_id=run))
    ent = [e.entropy for e in s.entries]
    assert ent == sorted(ent, reverse=True) and s.current.tile_id == cur
    # records handed over equal what a full re-read gives
    fresh = ReviewSession(store, src.slide_id, run)
    assert {t: (r.predicted, r.probs, r.entropy) for t, r in s.all.items()} == {
        t: (r.predicted, r.probs, r.entropy) for t, r in fresh.all.items()}
    # the streamed session sorts from the columns it kept; a fresh one from its records
    for order in ("entropy", "margin", "tile", "spatial"):
        s.set_filters(order=order)
        fresh.set_filters(order=order)
        assert [e.tile_id for e in s.entries] == [e.tile_id for e in fresh.entries], order
    s.close()


def test_spatial_questions_use_the_index(tmp_path):
    store, s = make(tmp_path)
    rec = s.tile_at(250, 150)
    assert (rec.tile_x, rec.tile_y) == (200, 100)
    assert len(s.tiles_in(0, 0, 299, 199)) == 6
    s.correct("adenosis", [rec.tile_id])
    assert [r.tile_id for r in s.reviewed_in(0, 0, 1000, 1000)] == [rec.tile_id]
    assert s.reviewed_in(500, 500, 900, 700) == []
    s.close()


@pytest.mark.parametrize("status", ["unreviewed", "reviewed"])
def test_filters_hide_and_bring_back_rows(tmp_path, status):
    store, s = make(tmp_path)
    s.set_filters(status=status)
    if status == "reviewed":
        assert s.entries == []
        t = next(iter(s.all))
        s.correct("adenosis", [t])
        s.wait()
        s.set_filters(status=status)
        assert [e.tile_id for e in s.entries] == [t]
        s.undo()
        s.wait()
        assert s.entries == []
    else:
        n = len(s.entries)
        t = s.first().tile_id
        s.confirm()
        assert len(s.entries) == n - 1 and s.position(t) == -1
        s.wait()
        s.undo()
        s.wait()
        assert s.position(t) >= 0 and len(s.entries) == n
    s.close()
