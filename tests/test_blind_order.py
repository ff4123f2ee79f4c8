"""Blinded queue orders: random with a stored seed, or spatial; neither looks at the model."""

from __future__ import annotations

import pytest
from review_support import fake_source, grid_tiles, record_fake_run

from pvdesk.review.blind_order import blind_key, blind_permutation
from pvdesk.review.session import ReviewSession
from pvdesk.review.store import ReviewStore


def _session(tmp_path, name, seed):
    store = ReviewStore(tmp_path / f"{name}.pvdb")
    src = fake_source(tmp_path / "s.svs")
    store.add_slide("slide-1", str(src.path), {})
    record_fake_run(store, src, grid_tiles(6, 5, 224), seed=seed)
    return store, ReviewSession(store, "slide-1")


def _xy(entries):
    return [(r.tile_x, r.tile_y) for r in entries]


def test_random_order_follows_the_seed_not_the_model(tmp_path):
    a_store, a = _session(tmp_path, "a", seed=1)
    b_store, b = _session(tmp_path, "b", seed=2)  # another model's probabilities
    for s in (a, b):
        s.set_filters(order="random", seed=42)
    assert _xy(a.entries) == _xy(b.entries)  # the same shuffle for every reader's copy
    assert sorted(_xy(a.entries)) == sorted(_xy(b.entries)) and len(a.entries) == 30
    rows = _xy(a.entries)
    a.set_filters(seed=43)
    assert _xy(a.entries) != rows and sorted(_xy(a.entries)) == sorted(rows)
    a.set_filters(seed=42)
    assert _xy(a.entries) == rows  # stored seed: the same queue when reopened
    b.set_filters(order="entropy")
    assert _xy(b.entries) != rows  # the model's order is a different one
    for st in (a_store, b_store):
        st.close()


def test_spatial_order_reads_row_by_row(tmp_path):
    store, s = _session(tmp_path, "a", seed=3)
    s.set_filters(order="spatial")
    ys = [r.tile_y for r in s.entries]
    assert ys == sorted(ys)
    assert _xy(s.entries) == sorted(_xy(s.entries), key=lambda xy: (xy[1], xy[0]))
    store.close()


def test_streamed_tiles_sort_by_the_same_key(tmp_path):
    store, s = _session(tmp_path, "a", seed=4)
    recs = list(s.all.values())
    import numpy as np

    ids = np.array([r.tile_id for r in recs])
    for order in ("random", "spatial"):
        perm = [recs[i].tile_id for i in blind_permutation(order, recs, ids, 7)]
        assert [r.tile_id for r in sorted(recs, key=blind_key(order, 7))] == perm
    with pytest.raises(ValueError, match="unknown blinded queue order"):
        blind_key("entropy", 0)
    store.close()


def test_only_limits_the_queue(tmp_path):
    store, s = _session(tmp_path, "a", seed=5)
    keep = {r.tile_id for r in list(s.all.values())[:4]}
    s.set_filters(only=keep)
    assert {r.tile_id for r in s.entries} == keep
    s.set_filters(only=None)
    assert len(s.entries) == 30
    store.close()
