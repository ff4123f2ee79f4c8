"""TileIndex answers like a scan over every tile, in time that does not depend on the count."""

from __future__ import annotations

import random

from pvdesk.app.tile_index import TileIndex


def brute_at(rects, x, y):
    best = None
    for tid, (tx, ty, w, h) in rects.items():
        if tx <= x < tx + w and ty <= y < ty + h:
            d = (x - tx - w / 2) ** 2 + (y - ty - h / 2) ** 2
            if best is None or d < best[0] or (d == best[0] and tid < best[1]):
                best = (d, tid)
    return None if best is None else best[1]


def test_index_matches_a_full_scan_with_overlap_and_removal():
    rng = random.Random(1)
    idx, rects = TileIndex(), {}
    side, stride = 100, 50  # 50% overlap
    for i, (c, r) in enumerate((c, r) for r in range(30) for c in range(40)):
        if rng.random() < 0.7:
            idx.add(i, c * stride, r * stride, side, side)
            rects[i] = (c * stride, r * stride, side, side)
    for tid in rng.sample(sorted(rects), 100):
        idx.remove(tid)
        del rects[tid]
    assert len(idx) == len(rects)
    for _ in range(300):
        x, y = rng.uniform(-20, 2100), rng.uniform(-20, 1600)
        assert idx.at(x, y) == brute_at(rects, x, y)
        x1, y1 = x + rng.uniform(-400, 400), y + rng.uniform(-400, 400)
        want = sorted(t for t, (tx, ty, w, h) in rects.items()
                      if min(x, x1) <= tx + w / 2 <= max(x, x1)
                      and min(y, y1) <= ty + h / 2 <= max(y, y1))
        assert idx.centres_in(x, y, x1, y1) == want
        meet = sorted(t for t, (tx, ty, w, h) in rects.items()
                      if tx < max(x, x1) and tx + w > min(x, x1)
                      and ty < max(y, y1) and ty + h > min(y, y1))
        assert sorted(idx.overlapping(x, y, x1, y1)) == meet


def test_limit_and_empty():
    idx = TileIndex()
    assert idx.at(5, 5) is None and idx.overlapping(0, 0, 10, 10) == []
    for i in range(50):
        idx.add(i, i * 10, 0, 10, 10)
    assert len(idx.overlapping(0, 0, 500, 10, limit=7)) == 7
    idx.add(3, 1000, 1000, 10, 10)  # moving a tile replaces it
    assert idx.at(35, 5) is None and idx.at(1005, 1005) == 3
