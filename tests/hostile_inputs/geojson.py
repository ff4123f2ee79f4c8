"""Hostile GeoJSON: deep nesting, NaN and huge numbers, bad coordinates and geometries,
not UTF-8, FIFOs, /dev/zero."""

from __future__ import annotations

import json
import os
from pathlib import Path

from .common import HAS_FIFO, make_fifo


def _fc(*features) -> str:
    return json.dumps({"type": "FeatureCollection", "features": list(features)})


def _poly(coords) -> dict:
    return {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": coords},
            "properties": {"classification": {"name": "Ductal carcinoma"}}}


def _tile(tile: str, probs: dict) -> dict:
    return {"type": "Feature", "geometry": None, "properties": {
        "metadata": {"tile": tile, "model": "m@1", "slide_id": "s"}, "measurements": probs}}


def geojson_inputs(root: Path) -> dict[str, Path]:
    root.mkdir(parents=True, exist_ok=True)
    texts = {
        "nested 200k": "[" * 200_000 + "]" * 200_000,
        "NaN": '{"type": "FeatureCollection", "features": [], "x": NaN}',
        "Infinity": '{"type": "FeatureCollection", "features": [], "x": -Infinity}',
        "1e999": '{"type": "FeatureCollection", "features": [], "x": 1e999}',
        "5001 digits": '{"type": "FeatureCollection", "features": [], "x": ' + "7" * 5001 + "}",
        "features not a list": '{"type": "FeatureCollection", "features": 5}',
        "not JSON": "this is not json",
        "string coordinates": _fc(_poly([[["a", "b"], [1, 2], [3, 4]]])),
        "ragged coordinates": _fc(_poly([[[0, 0], [1], [3, 4, 5, 6]]])),
        "coordinates a number": _fc(_poly(7)),
        "geometry a list": _fc({"type": "Feature", "geometry": [1, 2], "properties": {
            "classification": {"name": "Ductal carcinoma"}}}),
        "huge tile": _fc(_tile("9" * 40 + ",0,1,1", {"p_benign": 0.5, "p_malignant": 0.5})),
        "negative probabilities": _fc(_tile("0,0,224,224", {"p_benign": -5, "p_malignant": 6})),
        "tile w 0": _fc(_tile("0,0,0,224", {"p_benign": 0.5, "p_malignant": 0.5})),
    }
    out: dict[str, Path] = {}
    for i, (name, text) in enumerate(texts.items()):
        p = root / f"g{i}.geojson"
        p.write_text(text)
        out[name] = p
    p = root / "not-utf8.geojson"
    p.write_bytes(b"\xff\xfe{}" * 10)
    out["not UTF-8"] = p
    if HAS_FIFO:
        out["FIFO"] = make_fifo(root / "fifo.geojson")
    if os.path.exists("/dev/zero"):
        out["/dev/zero"] = Path("/dev/zero")
    return out
