"""The QuPath export: stable UUIDs, review fields in metadata, object types, and OpenSlide bounds
(a generated Leica SCN that OpenSlide reads with bounds; bounds kept in the store). The import
side is tests/test_qupath_import.py."""

from __future__ import annotations

import copy
import json
import uuid

import numpy as np
import pytest
from qupath_support import BOUNDS, export_features, reviewed_store

from pvdesk.export.geojson import write_geojson
from pvdesk.export.geojson_import import import_geojson
from pvdesk.export.qupath import bounds_offset, tile_uuid
from pvdesk.review import ReviewStore, TilePrediction
from pvdesk.review.sample import make_sample_store
from pvdesk.taxonomy import CLASS_NAMES

# -- export ------------------------------------------------------------------------------------

def test_ids_are_uuids_stable_across_exports_and_distinct(tmp_path):
    store, run, ids = reviewed_store(tmp_path)
    a = export_features(store, tmp_path / "a.geojson")
    store.correct(ids[7], "mucinous_carcinoma")  # a review between exports changes no id
    b = export_features(store, tmp_path / "b.geojson", object_type="annotation")
    assert [f["id"] for f in a] == [f["id"] for f in b]
    assert len({f["id"] for f in a}) == len(a) == 16
    assert all(uuid.UUID(f["id"]).version == 5 for f in a)
    assert tile_uuid("slide-1", run, "0,0,100,100") != tile_uuid("slide-1", run + 1, "0,0,100,100")
    store.close()


def test_review_fields_in_metadata_probabilities_in_measurements(tmp_path):
    store, run, ids = reviewed_store(tmp_path)
    feats = {f["properties"]["metadata"]["tile"]: f for f in export_features(store, tmp_path / "g.json")}
    for rec in store.tiles(slide_id="slide-1"):
        props = feats[",".join(map(str, rec.coords))]["properties"]
        assert props["objectType"] == "tile"
        meta = props["metadata"]
        assert all(isinstance(v, str) for v in meta.values())
        assert meta["model"] == "sample-model@1.0" and meta["run"] == str(run)
        assert meta["source"] == "/data/slide-1.svs" and meta["slide_id"] == "slide-1"
        assert meta["review_status"] == rec.status and meta["predicted"] == rec.predicted
        if rec.status == "unreviewed":
            assert "review_label" not in meta and "reviewer" not in meta
        else:
            assert (meta["review_label"], meta["reviewer"]) == (rec.label, "ana")
            assert meta["reviewed_at"] == rec.reviewed_at
        m = props["measurements"]
        assert list(m) == [f"p_{c}" for c in CLASS_NAMES] + ["confidence"]
        assert m["confidence"] == pytest.approx(rec.confidence)
        assert props["classification"]["name"] == rec.shown_label
    store.close()


def test_object_types(tmp_path):
    store, _, _ = reviewed_store(tmp_path)
    for kind in ("tile", "detection", "annotation"):
        feats = export_features(store, tmp_path / f"{kind}.geojson", object_type=kind)
        assert {f["properties"]["objectType"] for f in feats} == {kind}
    with pytest.raises(ValueError):
        write_geojson(store, tmp_path / "x.geojson", object_type="cell")
    store.close()


# -- bounds ----------------------------------------------------------------------------------

def test_bounds_offset_follows_qupath_rules():
    assert bounds_offset(BOUNDS) == (200, 100)
    partial = {k: v for k, v in BOUNDS.items() if not k.endswith("height")}
    assert bounds_offset(partial) == (0, 0)  # QuPath needs all four
    assert bounds_offset({**BOUNDS, "openslide.bounds-x": "2.5"}) == (0, 0)  # parseInt fails
    assert bounds_offset(None) == (0, 0)


def write_leica_scn(path, offset_px=(200, 100), size=(1024, 768), nm_per_px=500):
    """A Leica SCN (BigTIFF + XML) whose main image sits at ``offset_px`` inside a larger
    collection, which OpenSlide reports as openslide.bounds-x/-y."""
    tifffile = pytest.importorskip("tifffile")
    w, h = size
    ox, oy = offset_px
    xml = f"""<?xml version="1.0" encoding="utf-8"?>
<scn xmlns="http://www.leica-microsystems.com/scn/2010/10/01">
 <collection name="t" uuid="c" sizeX="{8 * w * nm_per_px // 2}" sizeY="{8 * h * nm_per_px // 2}">
  <image name="main" uuid="i">
   <creationDate>2026-01-01T00:00:00.00Z</creationDate>
   <device model="pvdesk-test" version="1"/>
   <pixels sizeX="{w}" sizeY="{h}">
    <dimension sizeX="{w}" sizeY="{h}" r="0" ifd="0"/>
    <dimension sizeX="{w // 4}" sizeY="{h // 4}" r="1" ifd="1"/>
   </pixels>
   <view sizeX="{w * nm_per_px}" sizeY="{h * nm_per_px}" offsetX="{ox * nm_per_px}"
         offsetY="{oy * nm_per_px}" spacingZ="0"/>
   <scanSettings>
    <objectiveSettings><objective>20</objective></objectiveSettings>
    <illuminationSettings><numericalAperture>0.7</numericalAperture>
     <illuminationSource>brightfield</illuminationSource></illuminationSettings>
   </scanSettings>
  </image>
 </collection>
</scn>"""
    img = np.full((h, w, 3), 240, np.uint8)
    img[100:600, 150:900] = (190, 110, 170)  # tissue
    res = 1e4 / (nm_per_px / 1000)
    with tifffile.TiffWriter(path, bigtiff=True) as tif:
        tif.write(img, tile=(256, 256), photometric="rgb", description=xml, metadata=None,
                  resolution=(res, res), resolutionunit="CENTIMETER")
        tif.write(img[::4, ::4], tile=(256, 256), photometric="rgb", metadata=None)
    return path


def test_a_slide_with_bounds_exports_tiles_at_qupaths_coordinates(tmp_path):
    from pvdesk.export.qupath import openslide_properties
    from pvdesk.slides import open_source
    from pvdesk.tiling import make_grid

    path = write_leica_scn(tmp_path / "bounds.scn")
    props = openslide_properties(path)
    assert props is not None and props.get("openslide.vendor") == "leica"
    assert bounds_offset(props) == (200, 100)
    with open_source(path) as src, ReviewStore(tmp_path / "s.pvdb", "ana") as store:
        grid = make_grid(src)
        assert len(grid.tiles) > 0
        store.add_slide(src.slide_id, str(path), src.properties())
        run = store.add_run("demo", "1", "h", list(CLASS_NAMES), "cpu", {})
        rng = np.random.default_rng(0)
        store.add_predictions(run, src.slide_id, [
            TilePrediction(str(path), t.x, t.y, t.w, t.h, src.mpp, rng.dirichlet(np.ones(8)))
            for t in grid.tiles])
        feats = export_features(store, tmp_path / "g.geojson")
        assert len(feats) == len(grid.tiles)
        for f in feats:
            x, y, w, h = map(int, f["properties"]["metadata"]["tile"].split(","))
            ring = f["geometry"]["coordinates"][0]
            assert ring[0] == [x - 200, y - 100] and ring[2] == [x - 200 + w, y - 100 + h]
        # tissue sits at 150..900 x 100..600 of the main image: QuPath sees it there
        xs = [f["geometry"]["coordinates"][0][0][0] for f in feats]
        ys = [f["geometry"]["coordinates"][0][0][1] for f in feats]
        assert min(xs) >= 0 and min(ys) >= 0 and max(xs) < 1024 and max(ys) < 768
        # an explicit offset (QuPath with useBoundingBoxes off) wins
        raw = export_features(store, tmp_path / "raw.geojson", offset=(0, 0))
        assert raw[0]["geometry"]["coordinates"][0][0] == [grid.tiles[0].x, grid.tiles[0].y]

        # a QuPath annotation over the first tile, in QuPath's coordinates, labels that tile
        t = grid.tiles[0]
        qx, qy = t.x - 200, t.y - 100
        qp = [{"type": "Feature", "id": str(uuid.uuid4()),
               "geometry": {"type": "Polygon", "coordinates": [[[qx, qy], [qx + t.w, qy],
                            [qx + t.w, qy + t.h], [qx, qy + t.h], [qx, qy]]]},
               "properties": {"objectType": "annotation",
                              "classification": {"name": "Papillary carcinoma",
                                                 "color": [247, 129, 191]}}}]
        (tmp_path / "qp.geojson").write_text(json.dumps(qp))
        s = import_geojson(store, tmp_path / "qp.geojson")
        assert s["offset"] == [200, 100] and s["labelled"] == {"papillary_carcinoma": 1}
        tid = store.find_tile(src.slide_id, None, t.x, t.y, t.w, t.h)
        assert store.decisions()[tid].label == "papillary_carcinoma"



def test_store_slide_properties_with_bounds_are_used(tmp_path):
    store, run, ids = make_sample_store(tmp_path / "s.pvdb", n_tiles=2, tile=100)
    props = copy.deepcopy(store.slides()[0]["properties"])
    store.add_slide("slide-1", "/data/slide-1.mrxs", {**props, **BOUNDS})
    feats = export_features(store, tmp_path / "g.geojson")
    assert feats[1]["geometry"]["coordinates"][0][0] == [100 - 200, 0 - 100]
    store.add_slide("slide-1", "/nowhere/slide-1.mrxs", props)  # no bounds, no file
    notes: list[str] = []
    write_geojson(store, tmp_path / "h.geojson", notes=notes)
    assert notes and "bounds are unknown" in notes[0]
    store.close()
