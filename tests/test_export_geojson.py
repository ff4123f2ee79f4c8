"""GeoJSON for QuPath: a FeatureCollection of closed tile polygons with the documented
properties (review fields in metadata); patches skipped; one file per slide. The QuPath
round trip is in test_qupath_import.py."""

from __future__ import annotations

import json

import pytest

from pvdesk.export import ExportError
from pvdesk.export.geojson import write_geojson, write_geojson_per_slide
from pvdesk.review import TilePrediction
from pvdesk.review.sample import make_sample_store
from pvdesk.taxonomy import colour_of, hex_to_rgb


def test_feature_collection_with_documented_properties(tmp_path):
    store, run, ids = make_sample_store(tmp_path / "s.pvdb", n_tiles=9, patches=3)
    store.correct(ids[0], "papillary_carcinoma")
    path = tmp_path / "g.geojson"
    assert write_geojson(store, path, slide_id="slide-1") == 9
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert doc["type"] == "FeatureCollection" and len(doc["features"]) == 9
    recs = {r.tile_id: r for r in store.tiles(slide_id="slide-1")}
    for f, rec in zip(doc["features"], recs.values(), strict=True):
        assert f["type"] == "Feature" and f["geometry"]["type"] == "Polygon"
        (ring,) = f["geometry"]["coordinates"]
        x, y, w, h = rec.coords
        assert ring[0] == ring[-1] == [x, y] and len(ring) == 5
        assert {tuple(p) for p in ring} == {(x, y), (x + w, y), (x + w, y + h), (x, y + h)}
        props = f["properties"]
        meta = props["metadata"]
        assert props["objectType"] == "tile" and meta["model"] == "sample-model@1.0"
        assert set(props["measurements"]) == {f"p_{c}" for c in rec.classes} | {"confidence"}
        assert props["measurements"]["confidence"] == rec.confidence
        name = props["classification"]["name"]
        assert props["classification"]["color"] == list(hex_to_rgb(colour_of(name)))
        if rec.tile_id == ids[0]:
            assert (name, meta["review_status"]) == ("papillary_carcinoma", "corrected")
            assert meta["review_label"] == "papillary_carcinoma"
        else:
            assert (name, meta["review_status"]) == (rec.predicted, "unreviewed")
    store.close()


def test_several_slides_need_a_choice_or_one_file_each(tmp_path):
    store, run, ids = make_sample_store(tmp_path / "s.pvdb", n_tiles=4)
    store.add_slide("slide-2", "/data/slide-2.svs", {})
    store.add_predictions(run, "slide-2", [TilePrediction("/data/slide-2.svs", 0, 0, 100, 100,
                                                          None, [1 / 8] * 8)])
    with pytest.raises(ExportError, match="2 slides"):
        write_geojson(store, tmp_path / "g.geojson")
    done = write_geojson_per_slide(store, tmp_path / "g.geojson", object_type="detection")
    assert [(p.name, n) for p, n in done] == [("g.slide-1.geojson", 4), ("g.slide-2.geojson", 1)]
    f = json.loads(done[1][0].read_text())["features"][0]
    assert f["properties"]["objectType"] == "detection"
    store.close()


def test_sample_slide_gives_one_feature_per_tissue_tile(tmp_path):
    """The CMU sample through the real slide and tiling code (random probabilities)."""
    import numpy as np

    from pvdesk.paths import sample_slide

    sample = sample_slide()
    slides = pytest.importorskip("pvdesk.slides")
    from pvdesk.review import ReviewStore
    from pvdesk.taxonomy import CLASS_NAMES
    from pvdesk.tiling import make_grid

    rng = np.random.default_rng(0)
    with slides.open_source(sample) as src, ReviewStore(tmp_path / "s.pvdb", "t") as store:
        grid = make_grid(src)
        store.add_slide(src.slide_id, str(sample), src.properties())
        run = store.add_run("demo", "0", "h", list(CLASS_NAMES), "cpu", {})
        store.add_predictions(run, src.slide_id, [
            TilePrediction(str(sample), t.x, t.y, t.w, t.h, src.mpp, rng.dirichlet(np.ones(8)))
            for t in grid.tiles])
        assert write_geojson(store, tmp_path / "g.geojson") == len(grid.tiles) > 0
        feats = json.loads((tmp_path / "g.geojson").read_text())["features"]
        w, h = src.dimensions
        side = grid.side or 0
        assert all(0 <= x <= w + side and 0 <= y <= h + side for f in feats
                   for x, y in f["geometry"]["coordinates"][0])
