"""CSV and GeoJSON imports of hostile files: refused with the file and line named, nothing
imported from a file that fails, no hang on a FIFO or /dev/zero, bounded memory."""

from __future__ import annotations

import json
import os
import threading

import pytest
from hostile_inputs import CSV_CLASSES, csv_row, write_csv

from pvdesk.cli import main
from pvdesk.errors import PvdeskError
from pvdesk.export import ExportError
from pvdesk.export.csv import columns, import_csv
from pvdesk.export.geojson_import import import_geojson
from pvdesk.review import ReviewStore
from pvdesk.review.sample import make_sample_store

CLASSES = CSV_CLASSES
GOOD = [csv_row(tile_x=224 * i) for i in range(5)]

# name -> (bad cell overrides for row 3, text the error must contain)
BAD_CELLS = {
    "30-digit tile_x": ({"tile_x": "9" * 30}, "tile_x"),
    "5000-digit tile_y": ({"tile_y": "1" * 5000}, "tile_y"),
    "tile_x beyond 2^53": ({"tile_x": str(1 << 60)}, "out of range"),
    "p = inf": ({"p_benign": "inf", "p_malignant": "0"}, "finite"),
    "p = nan": ({"p_benign": "nan"}, "finite"),
    "p = 1e999": ({"p_malignant": "1e999"}, "finite"),
    "p = -5": ({"p_benign": "-5", "p_malignant": "6"}, "probability"),
    "p = 1.5": ({"p_benign": "1.5"}, "probability"),
    "sum 0.5": ({"p_benign": "0.25", "p_malignant": "0.25"}, "sum to 0.5"),
    "sum 2": ({"p_benign": "1", "p_malignant": "1"}, "sum to 2"),
    "tile_w 0": ({"tile_w": "0"}, "tile_w must be a positive"),
    "tile_h -3": ({"tile_h": "-3"}, "tile_h must be a positive"),
    "partial coords": ({"tile_y": ""}, "partial tile coordinates"),
    "missing prob": ({"p_benign": ""}, "p_benign is missing"),
    "mpp 0": ({"mpp": "0"}, "mpp"),
    "mpp -inf": ({"mpp": "-inf"}, "finite"),
    "confidence 7": ({"confidence": "7"}, "probability"),
    "status bogus": ({"review_status": "maybe"}, "review_status"),
    "label bogus": ({"review_status": "corrected", "review_label": "=cmd"}, "review_label"),
    "text in number": ({"tile_x": "twelve"}, "not a number"),
    "empty source": ({"source": ""}, "source"),
}


@pytest.fixture
def store(tmp_path):
    s, run, ids = make_sample_store(tmp_path / "s.pvdb", n_tiles=4)
    yield s
    s.close()


def _snapshot(store):
    return (store.tile_count(), len(store.runs()), len(store.slides()), len(store.audit()),
            store.decisions())


@pytest.mark.parametrize("case", sorted(BAD_CELLS))
def test_bad_cell_is_refused_with_its_line_and_nothing_imported(tmp_path, store, case):
    over, says = BAD_CELLS[case]
    rows = [dict(r) for r in GOOD]
    rows[2].update(over)
    path = write_csv(tmp_path / "bad.csv", rows)
    before = _snapshot(store)
    with pytest.raises(ExportError) as err:
        import_csv(store, path)
    text = str(err.value)
    assert "\n" not in text and str(path) in text and says in text
    assert "line 4" in text  # the header is line 1
    assert _snapshot(store) == before


def test_good_file_imports(tmp_path, store):
    path = write_csv(tmp_path / "good.csv", GOOD)
    r = import_csv(store, path)
    assert r["rows"] == 5


def test_cli_refuses_before_creating_the_store(tmp_path, capsys):
    rows = [dict(r) for r in GOOD]
    rows[1]["p_benign"] = "nan"
    path = write_csv(tmp_path / "bad.csv", rows)
    target = tmp_path / "new.pvdb"
    assert main(["review", "import", str(target), "--csv", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "line 3" in err
    assert not target.exists()


def _refused_quickly(fn, timeout=10.0):
    out: list = []

    def attempt():
        try:
            fn()
        except PvdeskError as exc:
            out.append(str(exc))

    t = threading.Thread(target=attempt, daemon=True)
    t.start()
    t.join(timeout)
    assert not t.is_alive(), "blocked"
    assert out, "not refused"
    return out[0]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_fifo_and_devices_are_refused_without_blocking(tmp_path, store):
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    assert "not a regular file" in _refused_quickly(lambda: import_csv(store, fifo))
    assert "not a regular file" in _refused_quickly(lambda: import_geojson(store, fifo))
    if os.path.exists("/dev/zero"):
        assert "not a regular file" in _refused_quickly(
            lambda: import_csv(store, "/dev/zero"))
        assert "not a regular file" in _refused_quickly(
            lambda: import_geojson(store, "/dev/zero"))


def test_line_without_breaks_is_not_read_whole(tmp_path, store):
    path = tmp_path / "long.csv"
    with open(path, "w") as fh:
        fh.write(",".join(columns(CLASSES)) + "\n")
        fh.write("a" * (3 << 20))  # 3 MB, no line break
    with pytest.raises(ExportError, match="line 2: longer than"):
        import_csv(store, path)


@pytest.mark.parametrize("data, says", [
    (b"", "empty file"),
    (b"\xff\xfe\x00garbage\n", "not a readable CSV"),
    (b"source,x\n1,2\n", "not a predictions CSV"),
    (("," .join(columns(CLASSES)) + "\n" + "a\x00b," * 21 + "x\n").encode(), "line"),
    (("," .join(columns(CLASSES)) + "\n1,2,3\n").encode(), "line 2: 3 cells"),
    (("," .join(columns(CLASSES) + ["p_benign"]) + "\n").encode(), "not a predictions CSV"),
])
def test_malformed_files(tmp_path, store, data, says):
    path = tmp_path / "m.csv"
    path.write_bytes(data)
    before = _snapshot(store)
    with pytest.raises(ExportError, match=says) as err:
        import_csv(store, path)
    assert "\n" not in str(err.value)
    assert _snapshot(store) == before


def _feature(geometry, **meta):
    return {"type": "Feature", "id": "x", "geometry": geometry,
            "properties": {"classification": {"name": "Ductal carcinoma"},
                           "metadata": meta, "measurements": {}}}


@pytest.mark.parametrize("text, says", [
    ("[" * 200_000 + "]" * 200_000, "nested"),
    ('{"type": "FeatureCollection", "features": [], "x": NaN}', "NaN"),
    ('{"type": "FeatureCollection", "features": [], "x": 1e999}', "out of range"),
    ('{"type": "FeatureCollection", "features": [], "x": ' + "7" * 5001 + "}", "digits"),
    ('{"type": "FeatureCollection", "features": 5}', "not a list"),
    ("not json", "not valid JSON"),
    (json.dumps({"type": "FeatureCollection", "features": [_feature(
        {"type": "Polygon", "coordinates": [[["a", "b"], [1, 2], [3, 4]]]})]}), "malformed"),
    (json.dumps({"type": "FeatureCollection", "features": [_feature(
        {"type": "Polygon", "coordinates": [[[0, 0], [1], [3, 4, 5, 6]]]})]}), "malformed"),
    (json.dumps({"type": "FeatureCollection", "features": [_feature(
        {"type": "Polygon", "coordinates": 7})]}), "malformed"),
    (json.dumps({"type": "FeatureCollection", "features": [_feature([1, 2])]}), "malformed"),
    (json.dumps({"type": "FeatureCollection", "features": [{
        "type": "Feature", "geometry": None, "properties": {"metadata": {
            "tile": "9" * 40 + ",0,1,1", "model": "m@1", "slide_id": "s"},
            "measurements": {"p_benign": 0.5, "p_malignant": 0.5}}}]}), "tile"),
    (json.dumps({"type": "FeatureCollection", "features": [{
        "type": "Feature", "geometry": None, "properties": {"metadata": {
            "tile": "0,0,224,224", "model": "m@1", "slide_id": "s"},
            "measurements": {"p_benign": -5, "p_malignant": 6}}}]}), "probabilities"),
])
def test_hostile_geojson(tmp_path, store, text, says):
    path = tmp_path / "h.geojson"
    path.write_text(text)
    before = _snapshot(store)
    with pytest.raises(ExportError, match=says) as err:
        import_geojson(store, path)
    assert "\n" not in str(err.value) and path.name in str(err.value)
    assert _snapshot(store) == before


def test_read_only_store_import_is_one_line(tmp_path, capsys):
    s, run, ids = make_sample_store(tmp_path / "ro.pvdb", n_tiles=4)
    s.close()
    path = write_csv(tmp_path / "good.csv", GOOD)
    with ReviewStore(tmp_path / "ro.pvdb", readonly=True) as ro, pytest.raises(PvdeskError) as err:
        import_csv(ro, path)
    assert "read-only" in str(err.value) and "\n" not in str(err.value)
