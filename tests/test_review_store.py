"""The review store: slides, runs, predictions, decisions, queue, audit, schema safety."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest

from pvdesk.errors import StoreError
from pvdesk.review import ReviewStore, TilePrediction
from pvdesk.review.sample import make_sample_store
from pvdesk.review.schema import SCHEMA_VERSION


@pytest.fixture
def sample(tmp_path):
    store, run, ids = make_sample_store(tmp_path / "s.pvdb", n_tiles=20, patches=4,
                                        embedding_dim=5)
    yield store, run, ids
    store.close()


def test_reopen_keeps_everything(tmp_path):
    path = tmp_path / "s.pvdb"
    store, run, ids = make_sample_store(path, n_tiles=6)
    store.correct(ids[0], "lobular_carcinoma")
    store.close()
    with ReviewStore(path, reviewer="other") as again:
        # Decisions are per reviewer: another reviewer's own view is empty, and the
        # tester's decision is kept beside it.
        assert again.decision(ids[0])[:3] == ("unreviewed", None, None)
        assert again.decisions_by_reviewer()["tester"][ids[0]][:3] == (
            "corrected", "lobular_carcinoma", "tester")
        assert again.run(run).classes[0] == "adenosis"
        assert len(list(again.tiles())) == 6
        assert again.con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert again.con.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        assert again.con.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_slides_are_idempotent_and_non_identifying(tmp_path):
    with ReviewStore(tmp_path / "s.pvdb") as store:
        props = {"openslide.vendor": "aperio", "width": 100, "mpp": 0.5,
                 "aperio.Filename": "SMITH_J", "tiff.ImageDescription": "Jane", "aperio.User": "x",
                 "label": "1234", "aperio.Date": "01/01/20"}
        store.add_slide("a", "/x/a.svs", props)
        store.add_slide("a", "/x/a.svs", props)
        (slide,) = store.slides()
        assert slide["properties"] == {"openslide.vendor": "aperio", "width": 100, "mpp": 0.5}


def test_predictions_and_embeddings(sample):
    store, run, ids = sample
    recs = list(store.tiles(run_id=run))
    assert len(recs) == 24
    r = recs[0]
    assert abs(sum(r.probs) - 1) < 1e-9 and r.predicted == r.classes[int(np.argmax(r.probs))]
    assert r.coords == (0, 0, 512, 512) and recs[-1].coords is None
    emb = store.embedding(r.tile_id, run)
    assert emb.dtype == np.float32 and emb.shape == (5,)
    assert store.find_tile("slide-1", None, 0, 0, 512, 512) == r.tile_id
    assert store.find_tile(source=recs[-1].source) == recs[-1].tile_id
    # Storing the same tiles again (a re-run) reuses the tile ids.
    again = store.add_run("m", "2", "h", ["benign", "malignant"], "cpu", {})
    store.add_predictions(again, "slide-1", [TilePrediction("/data/slide-1.svs", 0, 0, 512, 512,
                                                            0.25, [0.3, 0.7])])
    assert store.find_tile("slide-1", None, 0, 0, 512, 512) == r.tile_id
    assert store.queue(run_id=again)[0].predicted == "malignant"
    with pytest.raises(StoreError, match="2 probabilities"):
        store.add_predictions(run, "slide-1", [TilePrediction("x", 1, 1, 1, 1, None, [0.5, 0.5])])
    with pytest.raises(StoreError, match="unknown slide"):
        store.add_predictions(run, "nope", [])


def test_queue_orders_and_filters(sample):
    store, run, ids = sample
    q = store.queue()
    assert [r.entropy for r in q] == sorted((r.entropy for r in q), reverse=True)
    m = store.queue(order="margin")
    assert [r.margin for r in m] == sorted(r.margin for r in m)
    first = q[0]
    store.confirm(first.tile_id)
    assert first.tile_id not in [r.tile_id for r in store.queue(status="unreviewed")]
    assert [r.tile_id for r in store.queue(status="confirmed")] == [first.tile_id]
    assert all(r.predicted == first.predicted for r in store.queue(predicted=first.predicted))
    assert all(r.folder_class != r.predicted for r in store.queue(disagree=True))
    assert len(store.queue(limit=3)) == 3
    assert store.counts() == (1, 24, 0)
    with pytest.raises(ValueError):
        store.queue(order="random")


def test_actions_decisions_and_bulk_undo(sample):
    store, run, ids = sample
    rec = {r.tile_id: r for r in store.tiles()}
    store.confirm(ids[0])
    assert store.decision(ids[0])[:3] == ("confirmed", rec[ids[0]].predicted, "tester")
    store.correct(ids[1], rec[ids[1]].predicted)  # correcting to the prediction confirms
    assert store.decision(ids[1]).status == "confirmed"
    other = "non_tissue"
    store.correct_many(ids[2:6], other)
    assert store.counts() == (6, 24, 4)
    store.undo()  # the whole bulk
    assert store.counts() == (2, 24, 0)
    store.redo()
    assert store.decision(ids[5])[:2] == ("corrected", "non_tissue")
    store.undo(), store.undo(), store.undo()
    assert store.counts().reviewed == 0 and store.undo() is None
    store.redo()
    store.confirm(ids[7])  # a new action clears the redo stack
    assert not store.can_redo() and store.redo() is None
    with pytest.raises(StoreError, match="not a review label"):
        store.correct(ids[0], "cancer")
    with pytest.raises(StoreError, match="no prediction for tile"):
        store.confirm(99999)
    assert store.decision(99999).status == "unreviewed"


def test_undo_is_per_reviewer(tmp_path):
    store, run, ids = make_sample_store(tmp_path / "s.pvdb", n_tiles=4)
    store.confirm(ids[0])
    with ReviewStore(tmp_path / "s.pvdb", reviewer="bob") as bob:
        bob.correct(ids[1], "uncertain")
        store.undo()
        assert bob.decision(ids[1]).label == "uncertain"
        assert bob.decision(ids[0]).status == "unreviewed"
    store.close()


def test_audit_is_append_only_and_replays(sample):
    store, run, ids = sample
    store.confirm(ids[0])
    store.correct_many(ids[1:3], "uncertain")
    store.undo()
    store.set_diagnosis("slide-1", "ductal_carcinoma", "=cmd| ' /C calc'!A0 \n naïve")
    assert store.diagnosis("slide-1")[:2] == ("ductal_carcinoma", "=cmd| ' /C calc'!A0 \n naïve")
    rows = store.audit()
    assert [r.action for r in rows] == ["confirm", "correct", "correct", "undo", "undo",
                                        "diagnosis"]
    assert all(r.at.endswith("Z") and r.reviewer == "tester" for r in rows)
    assert rows[3].ref_batch == rows[1].batch_id and rows[3].old_label == "uncertain"
    assert set(store.state_at(rows[2].audit_id)) == {ids[0], ids[1], ids[2]}
    assert store.state_at() == store.decisions()
    for sql in ("UPDATE audit SET reviewer='x'", "DELETE FROM audit"):
        with pytest.raises(StoreError, match="append-only"):
            store.con.execute(sql)
    with pytest.raises(StoreError):
        store.set_diagnosis("slide-1", "bogus", "")


def test_newer_schema_refused_and_untouched(tmp_path):
    path = tmp_path / "new.pvdb"
    store, _, _ = make_sample_store(path, n_tiles=2)
    store.close()
    con = sqlite3.connect(path)
    con.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    con.execute("PRAGMA journal_mode=DELETE")
    con.close()
    before = path.read_bytes()
    with pytest.raises(StoreError, match="newer") as err:
        ReviewStore(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)
    assert path.read_bytes() == before


def test_non_sqlite_and_foreign_sqlite_refused(tmp_path):
    junk = tmp_path / "notes.pvdb"
    junk.write_bytes(b"hello, I am a text file\n")
    with pytest.raises(StoreError, match="not an SQLite database") as err:
        ReviewStore(junk)
    assert "notes.pvdb" in str(err.value)
    assert junk.read_bytes() == b"hello, I am a text file\n"
    foreign = tmp_path / "other.db"
    con = sqlite3.connect(foreign)
    con.execute("CREATE TABLE t(x)")
    con.close()
    with pytest.raises(StoreError, match="not a pvdesk review store"):
        ReviewStore(foreign)
    with pytest.raises(StoreError, match="no such review store"):
        ReviewStore(tmp_path / "missing.pvdb", create=False)
    empty = tmp_path / "empty.pvdb"
    empty.write_bytes(b"")
    with pytest.raises(StoreError, match="empty file"):  # never written into: not ours
        ReviewStore(empty)
    assert empty.read_bytes() == b""


def test_class_counts(sample):
    store, run, ids = sample
    store.correct(ids[0], "mucinous_carcinoma")
    counts = store.class_counts()
    assert sum(p for p, _ in counts.values()) == 24
    assert counts["mucinous_carcinoma"][1] == 1


def test_migrations_apply_in_order(tmp_path, monkeypatch):
    from pvdesk.review import schema

    path = tmp_path / "old.pvdb"
    store, run, ids = make_sample_store(path, n_tiles=3)
    store.confirm(ids[0])
    store.close()
    v2 = ["CREATE TABLE notes (tile_id INTEGER, text TEXT)"]
    monkeypatch.setattr(schema, "MIGRATIONS", [*schema.MIGRATIONS, v2])
    monkeypatch.setattr(schema, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    with ReviewStore(path, reviewer="tester") as store:
        assert store.con.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION + 1
        store.con.execute("INSERT INTO notes VALUES (1, 'x')")
        assert store.decision(ids[0]).status == "confirmed"


def test_finding_a_tile_by_source_and_position_does_not_scan_the_slide(tmp_path):
    """An import finds each row's tile by its source and position. Every tile of a slide has
    the same source, so an unindexed lookup walked all of them: re-importing a CSV grew with
    the square of its rows. The work of one lookup (SQLite VM steps) is the same for a slide
    of 50 tiles and one of 5,000."""
    steps = []
    for n in (50, 5000):
        store, _run, ids = make_sample_store(tmp_path / f"s{n}.pvdb", n_tiles=n)
        rec = max(store.tiles(), key=lambda r: r.tile_id)  # the last: a scan's worst case
        count = [0]

        def tick(count=count):
            count[0] += 1
            return 0
        store.con.set_progress_handler(tick, 10)
        assert store.find_tile(source=rec.source, tile_x=rec.tile_x, tile_y=rec.tile_y,
                               tile_w=rec.tile_w, tile_h=rec.tile_h) == rec.tile_id
        store.con.set_progress_handler(None, 10)
        steps.append(count[0])
        store.close()
    assert steps[1] <= steps[0] + 5, steps
