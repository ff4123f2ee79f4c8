"""The QuPath round trip and import: pvdesk's export re-imported into a fresh store, a hand-written
QuPath-format file labelling the right tiles, and regions that limit the next run. The export
side is tests/test_qupath_export.py."""

from __future__ import annotations

import json
import uuid
from types import SimpleNamespace

import numpy as np
import pytest
from qupath_support import by_coords, export_features, reviewed_store

from pvdesk.cli import main
from pvdesk.export import ExportError
from pvdesk.export.geojson_import import import_geojson, review_label
from pvdesk.export.qupath import coverage
from pvdesk.review import ReviewStore
from pvdesk.review.sample import make_sample_store
from pvdesk.taxonomy import CLASS_NAMES

# -- round trip ---------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["tile", "annotation"])
def test_export_reimported_into_a_fresh_store_gives_back_every_label(tmp_path, kind):
    store, run, ids = reviewed_store(tmp_path)
    first = export_features(store, tmp_path / "a.geojson", object_type=kind)
    before = by_coords(store)
    with ReviewStore(tmp_path / "fresh.pvdb", "importer", view="latest") as fresh:
        s = import_geojson(fresh, tmp_path / "a.geojson")
        assert s["restored"] == 16 and s["decisions"] == 6 and not s["labelled"]
        after = by_coords(fresh)
        assert set(after) == set(before)
        for xy, rec in before.items():
            got = after[xy]
            assert (got.status, got.label, got.reviewer, got.reviewed_at) == \
                (rec.status, rec.label, rec.reviewer, rec.reviewed_at)
            assert got.probs == pytest.approx(rec.probs) and got.predicted == rec.predicted
            assert got.slide_id == rec.slide_id and got.source == rec.source
            assert got.mpp == rec.mpp
        assert {a.action for a in fresh.audit()} == {"import"}
        # the fresh store exports the same objects (ids included)
        assert export_features(fresh, tmp_path / "b.geojson", object_type=kind) == first
        # importing again changes nothing
        n = len(fresh.audit())
        import_geojson(fresh, tmp_path / "a.geojson")
        assert len(fresh.audit()) == n and len(fresh.runs()) == 1
    store.close()


def test_a_class_changed_in_qupath_becomes_a_correction(tmp_path):
    store, run, ids = reviewed_store(tmp_path)
    feats = export_features(store, tmp_path / "a.geojson", object_type="annotation")
    changed = next(f for f in feats if f["properties"]["metadata"]["review_status"] ==
                   "unreviewed")
    changed["properties"]["classification"]["name"] = "Lobular carcinoma"
    (tmp_path / "qp.geojson").write_text(json.dumps(feats))  # QuPath writes a bare list
    with ReviewStore(store.path, "dr-qupath") as other:
        s = import_geojson(other, tmp_path / "qp.geojson")
    assert s["labelled"] == {"lobular_carcinoma": 1}
    x, y, w, h = map(int, changed["properties"]["metadata"]["tile"].split(","))
    tid = store.find_tile("slide-1", None, x, y, w, h)
    assert tid not in store.decisions()  # decisions are per reviewer: not ana's
    d = store.decisions_by_reviewer()["dr-qupath"][tid]
    assert (d.label, d.reviewer) == ("lobular_carcinoma", "dr-qupath")
    last = store.audit()[-1]
    assert (last.action, last.reviewer, last.tile_id) == ("correct", "dr-qupath", tid)
    store.close()


def test_tiles_back_from_qupath_without_metadata_match_by_id(tmp_path):
    """QuPath drops metadata from tile objects; the UUID still finds the tile, and only a
    changed class counts (unchanged predictions are not confirmed wholesale)."""
    store, run, ids = reviewed_store(tmp_path)
    feats = export_features(store, tmp_path / "a.geojson")
    for f in feats:
        del f["properties"]["metadata"]
    rec = next(r for r in store.tiles() if r.tile_id == ids[10])
    new = "tubular_adenoma" if rec.predicted != "tubular_adenoma" else "adenosis"
    feats[10]["properties"]["classification"] = {"name": new, "color": [0, 0, 0]}
    (tmp_path / "qp.geojson").write_text(json.dumps({"type": "FeatureCollection",
                                                     "features": feats}))
    n_decisions = len(store.decisions())
    s = import_geojson(store, tmp_path / "qp.geojson")
    assert s["labelled"] == {new: 1}
    assert s["skipped"] == {"pvdesk tile, class unchanged": 15}
    assert len(store.decisions()) == n_decisions + 1
    assert store.decisions()[ids[10]].label == new
    store.close()


# -- a hand-written QuPath file -------------------------------------------------------------

def _qp(geometry, name=None, kind="annotation"):
    props = {"objectType": kind}
    if name:
        props["classification"] = {"name": name, "color": [200, 0, 0]}
    return {"type": "Feature", "id": str(uuid.uuid4()), "geometry": geometry,
            "properties": props}


def _poly(*rings):
    return {"type": "Polygon", "coordinates": [[list(p) for p in r] + [list(r[0])]
                                               for r in rings]}


QUPATH_FILE = [
    # 1. a rectangle over the 2 x 2 tiles at the top left
    _qp(_poly([(0, 0), (200, 0), (200, 200), (0, 200)]), "Ductal carcinoma"),
    # 2. three whole tiles on row 0 (x 400..700) and 30 % of the three below them
    _qp(_poly([(400, 0), (700, 0), (700, 130), (400, 130)]), "Fibroadenoma"),
    # 3. six tiles (x 0..300, y 200..400) minus a hole over the tile at (100, 200)
    _qp(_poly([(0, 200), (300, 200), (300, 400), (0, 400)],
              [(100, 200), (200, 200), (200, 300), (100, 300)]), "LC"),
    # not labels: a point, an unclassified polygon, a class pvdesk does not know
    _qp({"type": "Point", "coordinates": [50, 50]}, "Ductal carcinoma"),
    _qp(_poly([(700, 300), (800, 300), (800, 400), (700, 400)])),
    _qp(_poly([(700, 300), (800, 300), (800, 400), (700, 400)]), "Tumor"),
]


def test_a_handwritten_qupath_file_with_three_polygons_labels_the_right_tiles(tmp_path):
    store, run, ids = make_sample_store(tmp_path / "s.pvdb", n_tiles=32, tile=100)  # 8 x 4
    (tmp_path / "qp.geojson").write_text(json.dumps(QUPATH_FILE, indent=2))
    with ReviewStore(store.path, "dr-qupath") as qstore:
        s = import_geojson(qstore, tmp_path / "qp.geojson")
    expect = {
        "ductal_carcinoma": {(0, 0), (100, 0), (0, 100), (100, 100)},
        "fibroadenoma": {(400, 0), (500, 0), (600, 0)},
        "lobular_carcinoma": {(0, 200), (200, 200), (0, 300), (100, 300), (200, 300)},
    }
    assert s["labelled"] == {k: len(v) for k, v in expect.items()}
    assert s["skipped"] == {"no area (point or line)": 1, "no classification": 1,
                            "unknown class 'Tumor'": 1}
    got: dict[str, set] = {}
    store.reviewer = "dr-qupath"  # the importer's decisions
    recs = by_coords(store)
    for (x, y, _, _), rec in recs.items():
        if rec.status != "unreviewed":
            got.setdefault(rec.label, set()).add((x, y))
            assert rec.reviewer == "dr-qupath"
    assert got == expect
    audit = store.audit()
    assert {a.action for a in audit} == {"correct"} and {a.reviewer for a in audit} == \
        {"dr-qupath"} and len(audit) == 12
    # the importing reviewer can undo the import like any action (one label at a time)
    with ReviewStore(store.path, "dr-qupath") as qstore:
        for _ in expect:
            qstore.undo()
    assert not store.decisions()
    # a lower threshold takes the fibroadenoma polygon's 30 % tiles too
    with ReviewStore(store.path, "dr-qupath") as qstore:
        s = import_geojson(qstore, tmp_path / "qp.geojson", min_coverage=0.25)
    assert s["labelled"]["fibroadenoma"] == 6
    store.close()


def test_class_names_map_to_review_labels():
    assert review_label("Ductal carcinoma") == "ductal_carcinoma"
    assert review_label("DC") == "ductal_carcinoma"
    assert review_label("phyllodes_tumor") == "phyllodes_tumor"
    assert review_label("Non-tissue / artefact") == "non_tissue"
    assert review_label("Uncertain") == "uncertain"
    for name in ("Tumor", "Stroma", "benign", "Tumor: Positive", "", None):
        assert review_label(name) is None


def test_coverage_is_exact_for_concave_and_holed_polygons():
    square = [np.array([[0, 0], [10, 0], [10, 10], [0, 10]], float)]
    assert coverage(square, [[0, 0, 10, 10], [5, 5, 10, 10], [20, 20, 5, 5]]).tolist() == \
        [100, 25, 0]
    ell = [np.array([[0, 0], [10, 0], [10, 4], [4, 4], [4, 10], [0, 10]], float)]
    assert coverage(ell, [[0, 0, 10, 10], [3, 3, 4, 4]]) == pytest.approx([64, 7])
    holed = square + [np.array([[2, 2], [8, 2], [8, 8], [2, 8]], float)]
    assert coverage(holed, [[0, 0, 10, 10], [0, 0, 5, 5]]) == pytest.approx([64, 16])
    # orientation does not matter
    assert coverage([square[0][::-1]], [[5, 5, 10, 10]]) == pytest.approx([25])


def test_bad_files_are_one_line_errors(tmp_path):
    store, _, _ = make_sample_store(tmp_path / "s.pvdb", n_tiles=4)
    bad = tmp_path / "bad.geojson"
    bad.write_text("{not json")
    with pytest.raises(ExportError, match="not a GeoJSON file"):
        import_geojson(store, bad)
    bad.write_text('{"type": "Topology"}')
    with pytest.raises(ExportError, match="not a GeoJSON FeatureCollection"):
        import_geojson(store, bad)
    with ReviewStore(tmp_path / "empty.pvdb") as empty:
        (tmp_path / "qp.geojson").write_text(json.dumps(QUPATH_FILE))
        with pytest.raises(ExportError, match="no slide with tile predictions"):
            import_geojson(empty, tmp_path / "qp.geojson")
    store.close()


# -- regions ----------------------------------------------------------------------------------

def test_regions_limit_the_next_run(tmp_path):
    from inference_fakes import FakeClassifier, small_slide

    from pvdesk.predict import LoadedModel, predict_source
    from pvdesk.regions import limit_grid, regions_for
    from pvdesk.slides import open_source
    from pvdesk.tiling import make_grid

    slide = small_slide(tmp_path)
    bundle = SimpleNamespace(name="fake", version="1", classes=list(CLASS_NAMES), trained=False,
                             input_size=32, tile_um=32.0, manifest_hash="h", label="fake 1")
    with open_source(slide) as src, ReviewStore(tmp_path / "s.pvdb", "ana") as store:
        store.add_slide(src.slide_id, str(slide), src.properties())
        full = make_grid(src, 32.0, 32)
        # one region over the left tissue block (100..700 x 100..500)
        region = [_qp(_poly([(100, 100), (700, 100), (700, 500), (100, 500)]), "ROI")]
        (tmp_path / "roi.geojson").write_text(json.dumps(region))
        s = import_geojson(store, tmp_path / "roi.geojson", as_region=True)
        assert s["regions"] == 1 and not s["labelled"]
        regions = regions_for(store, src.slide_id)
        assert regions[0]["label"] == "ROI" and regions[0]["reviewer"] == "ana"
        limited = limit_grid(full, regions)
        assert 0 < len(limited.tiles) < len(full.tiles)
        assert all(100 <= t.x and t.x + t.w <= 700 + t.w / 2 for t in limited.tiles)
        assert "region" in limited.warnings[-1]
        info = predict_source(src, [LoadedModel(bundle, FakeClassifier(seed=1))],
                              tmp_path / "out", batch_size=16, workers=1, heatmap_size=200,
                              store=store, regions=regions)
        assert info["tiles"] == len(limited.tiles)
        assert main(["review", "stats", str(store.path), "--json"]) == 0


def test_review_cli_import_geojson_and_export_options(tmp_path, capsys):
    store, run, ids = make_sample_store(tmp_path / "s.pvdb", n_tiles=32, tile=100)
    store.close()
    (tmp_path / "qp.geojson").write_text(json.dumps(QUPATH_FILE))
    assert main(["review", "import-geojson", str(tmp_path / "s.pvdb"),
                 str(tmp_path / "qp.geojson"), "--reviewer", "dr-cli"]) == 0
    out = capsys.readouterr().out
    assert "labelled 12 tiles" in out and "skipped 1: unknown class 'Tumor'" in out
    assert main(["review", "export", str(tmp_path / "s.pvdb"), "--geojson",
                 str(tmp_path / "g.geojson"), "--object-type", "detection",
                 "--offset", "10,20"]) == 0
    assert "32 tiles" in capsys.readouterr().out
    feats = json.loads((tmp_path / "g.geojson").read_text())["features"]
    assert feats[0]["properties"]["objectType"] == "detection"
    assert feats[0]["geometry"]["coordinates"][0][0] == [-10, -20]
    reviewed = [f for f in feats if f["properties"]["metadata"].get("reviewer") == "dr-cli"]
    assert len(reviewed) == 12
    assert main(["review", "stats", str(tmp_path / "s.pvdb"), "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["reviewed"] == 12 and stats["regions"] == 0
    assert main(["review", "import-geojson", str(tmp_path / "s.pvdb"),
                 str(tmp_path / "nope.geojson")]) == 2
    assert "nope.geojson: cannot read" in capsys.readouterr().err
