"""Regions of interest per slide (from QuPath annotations): where the next run looks.

A slide's active regions live in the review store, in a table of their own
(``qupath_regions``, made by the store's schema: geometry in level-0 pixels of OpenSlide's frame, label, origin file,
reviewer, time). Importing regions replaces the slide's active set (the old rows stay,
inactive, as a record). ``pvdesk predict --store`` reads them and classifies only the tiles
they cover (:func:`limit_grid`); ``--ignore-regions`` runs the whole slide.
"""

from __future__ import annotations

import copy
import json

from pvdesk.export.qupath import covered_fraction, polygons_of
from pvdesk.review.types import utc_now

TABLE = "qupath_regions"
# The share of a tile a region must cover for the tile to be classified.
DEFAULT_MIN_COVERAGE = 0.5


def set_regions(store, slide_id: str, regions: list[dict], origin: str) -> int:
    """Replace the slide's active regions with ``regions`` ({"geometry": GeoJSON geometry in
    level-0 pixels, "label": str | None, "qupath_id": str | None}); returns how many."""
    with store.transaction() as con:
        con.execute(f"UPDATE {TABLE} SET active=0 WHERE slide_id=? AND active=1", (slide_id,))
        at = utc_now()
        for r in regions:
            con.execute(f"INSERT INTO {TABLE}(slide_id, label, geometry, qupath_id, origin, "
                        "reviewer, added_at) VALUES (?,?,?,?,?,?,?)",
                        (slide_id, r.get("label"), json.dumps(r["geometry"]),
                         r.get("qupath_id"), origin, store.reviewer, at))
    return len(regions)


def clear_regions(store, slide_id: str) -> int:
    with store.transaction() as con:
        return con.execute(f"UPDATE {TABLE} SET active=0 WHERE slide_id=? AND active=1",
                           (slide_id,)).rowcount


def regions_for(store, slide_id: str) -> list[dict]:
    """The slide's active regions: dicts with geometry, label, qupath_id, origin, reviewer,
    added_at."""
    with store._lock:
        con = store.con
        rows = con.execute(f"SELECT geometry, label, qupath_id, origin, reviewer, added_at "
                           f"FROM {TABLE} WHERE slide_id=? AND active=1 ORDER BY region_id",
                           (slide_id,)).fetchall()
    return [{"geometry": json.loads(g), "label": lab, "qupath_id": q, "origin": o,
             "reviewer": r, "added_at": a} for g, lab, q, o, r, a in rows]


def region_count(store) -> int:
    with store._lock:
        con = store.con
        return con.execute(f"SELECT count(*) FROM {TABLE} WHERE active=1").fetchone()[0]


def tile_coverage(regions: list[dict], rects):
    """Fraction of each (x, y, w, h) rectangle inside the regions (numpy array)."""
    polys = [p for r in regions for p in polygons_of(r["geometry"])]
    return covered_fraction(polys, rects)


def limit_grid(grid, regions: list[dict], min_coverage: float = DEFAULT_MIN_COVERAGE):
    """A copy of a slide's tile grid keeping only the tiles the regions cover (at least
    ``min_coverage`` of each tile), with a warning that says so."""
    import numpy as np

    if not regions or grid.side is None:
        return grid
    rects = np.array([(t.x, t.y, t.w, t.h) for t in grid.tiles], dtype=np.float64)
    keep = tile_coverage(regions, rects) >= min_coverage if len(rects) else np.zeros(0, bool)
    out = copy.copy(grid)
    out.tiles = [t for t, k in zip(grid.tiles, keep, strict=True) if k]
    out.warnings = list(grid.warnings) + [
        f"limited to {len(regions)} region(s) imported from QuPath: {len(out.tiles)} of "
        f"{len(grid.tiles)} tissue tiles are at least {min_coverage:.0%} inside them "
        "(--ignore-regions runs the whole slide)"]
    return out
