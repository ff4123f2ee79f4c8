"""What the QuPath tests share: a store with reviewed tiles, its GeoJSON export read back, tiles
by their coordinates, and OpenSlide bounds."""

from __future__ import annotations

import json

from pvdesk.export.geojson import write_geojson
from pvdesk.review.sample import make_sample_store

BOUNDS = {"openslide.bounds-x": "200", "openslide.bounds-y": "100",
          "openslide.bounds-width": "1024", "openslide.bounds-height": "768"}


def export_features(store, path, **kw) -> list[dict]:
    write_geojson(store, path, **kw)
    return json.loads(path.read_text(encoding="utf-8"))["features"]


def reviewed_store(tmp_path, name="s.pvdb"):
    store, run, ids = make_sample_store(tmp_path / name, n_tiles=16, tile=100, reviewer="ana")
    store.correct_many(ids[:3], "ductal_carcinoma")
    store.correct(ids[3], "non_tissue")
    store.correct(ids[4], "uncertain")
    store.confirm(ids[5])
    return store, run, ids


def by_coords(store):
    return {r.coords: r for r in store.tiles() if r.coords}


