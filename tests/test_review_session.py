"""The review session (core): queue order, keys, advancing, bulk, undo/redo, recorder."""

from __future__ import annotations

from review_support import fake_source, grid_tiles, record_fake_run

from pvdesk.review import ReviewStore
from pvdesk.review.project import (
    BackgroundWriter,
    default_store_path,
    latest_runs_by_model,
    restore_run,
)
from pvdesk.review.session import ReviewSession, key_command


def make(tmp_path, n_cols=4, n_rows=3):
    store = ReviewStore(tmp_path / "s.pvdb", reviewer="tester")
    src = fake_source(tmp_path / "slide.tif")
    record_fake_run(store, src, grid_tiles(n_cols, n_rows, 100), side=100)
    return store, ReviewSession(store, src.slide_id)


def test_keys_map_to_commands():
    assert key_command("1") == ("correct", "adenosis")
    assert key_command("8") == ("correct", "papillary_carcinoma")
    assert key_command("0") == ("correct", "non_tissue")
    assert key_command("U") == ("correct", "uncertain")
    assert key_command("enter") == key_command("space") == ("confirm", None)
    assert key_command("j") == key_command("down") == ("next", None)
    assert key_command("K") == key_command("left") == ("prev", None)
    assert key_command("x") is None and key_command("9") is None


def test_queue_actions_advance_undo_redo(tmp_path):
    store, s = make(tmp_path)
    assert len(s.entries) == 12 and s.counts().total == 12
    ent = [e.entropy for e in s.entries]
    assert ent == sorted(ent, reverse=True)  # most uncertain first
    first = s.first()
    assert s.command("enter") == "confirm"
    assert store.decision(first.tile_id).status == "confirmed"
    second = s.current
    assert second.tile_id == s.entries[1].tile_id  # advanced
    label = "ductal_carcinoma" if second.predicted != "ductal_carcinoma" else "adenosis"
    s.correct(label)
    assert store.decision(second.tile_id).label == label
    assert s.counts() == (2, 12, 1 if label != second.predicted else 0)
    assert s.undo() == [second.tile_id] and s.current.tile_id == second.tile_id
    assert store.decision(second.tile_id).status == "unreviewed"
    assert s.redo() == [second.tile_id]
    assert store.decision(second.tile_id).label == label
    # bulk: select three, correct together, one undo reverts all three
    ids = [e.tile_id for e in s.entries[4:7]]
    s.toggle(ids)
    s.command("0")
    assert all(store.decision(t).label == "non_tissue" for t in ids) and not s.selection
    assert sorted(s.undo()) == sorted(ids)
    assert all(store.decision(t).status == "unreviewed" for t in ids)
    assert s.counts() == store.counts(s.run_id, "slide-1")
    store.close()


def test_filters_and_spatial_lookup(tmp_path):
    store, s = make(tmp_path)
    s.set_filters(status="unreviewed")
    s.first()
    t = s.current.tile_id
    s.command("space")
    assert t not in [e.tile_id for e in s.entries] and len(s.entries) == 11
    assert s.current.status == "unreviewed"
    s.set_filters(status="reviewed")
    assert [e.tile_id for e in s.entries] == [t]
    s.set_filters(status=None, predicted=s.all[t].predicted)
    assert all(e.predicted == s.all[t].predicted for e in s.entries)
    assert s.tile_at(150, 250).tile_x == 100 and s.tile_at(150, 250).tile_y == 200
    assert s.tile_at(5000, 5000) is None
    assert len(s.tiles_in(0, 0, 210, 110)) == 2
    assert [r.tile_id for r in s.reviewed()] == [t]
    assert s.counts_text().startswith("1/12 reviewed")
    store.close()


def test_restore_and_paths(tmp_path, pvdesk_home):
    assert default_store_path("ab/c d") == tmp_path / "home" / "stores" / "ab_c_d.pvdb"
    store, s = make(tmp_path)
    (run,) = latest_runs_by_model(store, "slide-1")
    grid, batch = restore_run(store, run.run_id, "slide-1")
    assert len(grid.tiles) == 12 and grid.side == grid.stride == 100
    assert batch.probs["fake-model"].shape == (12, 8)
    store.close()


def test_background_writer_orders_and_reports(tmp_path):
    w = BackgroundWriter()
    out, errs = [], []
    for i in range(5):
        w.submit(out.append, i)
    w.submit(lambda: 1 / 0, done=lambda r, e: errs.append(e))
    w.flush()
    assert out == [0, 1, 2, 3, 4] and isinstance(errs[0], ZeroDivisionError)
    w.close()
    assert not w.submit(out.append, 9)


def test_queue_matches_the_store_queue_for_every_filter(tmp_path):
    store, s = make(tmp_path, 5, 4)
    s.first()
    s.command("enter")
    s.command("6")
    s.toggle([e.tile_id for e in s.entries[7:10]])
    s.command("0")
    predicted = s.entries[0].predicted
    for order in ("entropy", "margin", "tile"):
        for status in (None, "unreviewed", "reviewed", "confirmed", "corrected"):
            for pred in (None, predicted):
                s.set_filters(order=order, status=status, predicted=pred)
                want = store.queue(s.run_id, "slide-1", order=order, status=status,
                                   predicted=pred)
                assert [e.tile_id for e in s.entries] == [e.tile_id for e in want]
    store.close()


def test_a_store_made_under_the_older_slide_id_is_found_again(tmp_path, pvdesk_home):
    """pvdesk 0.1 named a slide's store after a weaker id; its reviews must stay reachable."""
    from inference_fakes import small_slide

    from pvdesk.review.project import find_review_store, legacy_slide_id
    from pvdesk.slides import open_source

    with open_source(small_slide(tmp_path)) as src:
        old = legacy_slide_id(src)
        assert old and old != src.slide_id
        # nothing stored yet: the new, file-named store
        path, sid = find_review_store(src, src.slide_id)
        assert sid == src.slide_id and path.name.startswith("small-")
        # a store from the earlier version, under the old id
        legacy_path = default_store_path(old)
        legacy_path.parent.mkdir(parents=True)
        with ReviewStore(legacy_path, reviewer="t") as store:
            record_fake_run(store, fake_source(src.path, slide_id=old), grid_tiles(2, 2, 100),
                            side=100)
        assert find_review_store(src, src.slide_id) == (legacy_path, old)
        # a review project holding the slide under its old id
        assert find_review_store(src, src.slide_id, legacy_path) == (legacy_path, old)
        assert find_review_store(src, src.slide_id, tmp_path / "new.pvdb") == (
            tmp_path / "new.pvdb", src.slide_id)
