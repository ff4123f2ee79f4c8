"""GeoJSON that QuPath imports (File > Import objects, or drag and drop).

A FeatureCollection with one Polygon feature per tile in level-0 pixel coordinates (a closed
ring x,y -> x+w,y -> x+w,y+h -> x,y+h -> x,y). Properties:

    objectType      "annotation" (default) or "detection"
    classification  {"name": reviewed label if reviewed else predicted, "color": [r, g, b]}
    measurements    {"p_<class>": probability for each class, "confidence": top probability}
    review_status, review_label, model, source, predicted

Patch images (no coordinates) are skipped. One file describes one slide; for a store with
several slides use ``slide_id``, or :func:`write_geojson_per_slide`. Written atomically,
streamed feature by feature.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

from pvdesk.export import ExportError
from pvdesk.export.atomic import atomic_write
from pvdesk.taxonomy import colour_of, hex_to_rgb

OBJECT_TYPES = ("annotation", "detection")


def _colour(name: str) -> list[int]:
    try:
        return list(hex_to_rgb(colour_of(name)))
    except KeyError:
        return [128, 128, 128]


def _num(v: float):
    return None if v is None or not math.isfinite(v) else float(v)


def feature(rec, object_type: str = "annotation") -> dict:
    """The GeoJSON feature of a TileRecord with coordinates."""
    x, y, w, h = rec.tile_x, rec.tile_y, rec.tile_w, rec.tile_h
    ring = [[x, y], [x + w, y], [x + w, y + h], [x, y + h], [x, y]]
    name = rec.shown_label
    measurements = {f"p_{c}": _num(p) for c, p in zip(rec.classes, rec.probs, strict=True)}
    measurements["confidence"] = _num(rec.confidence)
    return {
        "type": "Feature",
        "id": f"tile-{rec.tile_id}-run-{rec.run_id}",
        "geometry": {"type": "Polygon", "coordinates": [ring]},
        "properties": {
            "objectType": object_type,
            "classification": {"name": name, "color": _colour(name)},
            "measurements": measurements,
            "isLocked": False,
            "review_status": rec.status,
            "review_label": rec.label,
            "predicted": rec.predicted,
            "model": rec.model,
            "source": rec.source,
        },
    }


def write_geojson(store, path, run_id: int | None = None, slide_id: str | None = None,
                  object_type: str = "annotation") -> int:
    """Write one slide's tiles as a FeatureCollection; returns the feature count.
    ``run_id`` None means the latest run of that slide."""
    if object_type not in OBJECT_TYPES:
        raise ValueError(f"object_type must be one of {OBJECT_TYPES}")
    if slide_id is None:
        slides = _slides_with_tiles(store, run_id)
        if len(slides) > 1:
            raise ExportError(f"{path}: the store holds {len(slides)} slides; choose one "
                              "(--slide) or write one file per slide")
        slide_id = slides[0] if slides else None
    if run_id is None and slide_id is not None:
        run_id = store.latest_run(slide_id)
    n = 0
    with atomic_write(path, "w") as fh:
        fh.write('{"type": "FeatureCollection", "features": [')
        for rec in store.tiles(slide_id=slide_id, run_id=run_id) if slide_id else ():
            if rec.tile_x is None:
                continue
            fh.write(",\n" if n else "\n")
            fh.write(json.dumps(feature(rec, object_type), ensure_ascii=False, allow_nan=False))
            n += 1
        fh.write("\n]}\n")
    return n


def _slides_with_tiles(store, run_id=None) -> list[str]:
    return store.slide_ids(run_id=run_id, with_coords=True)


def write_geojson_per_slide(store, path, run_id: int | None = None,
                            object_type: str = "annotation") -> list[tuple[Path, int]]:
    """One file per slide: ``path`` itself for a single slide, else ``<stem>.<slide><ext>``."""
    path = Path(path)
    slides = _slides_with_tiles(store, run_id)
    if len(slides) <= 1:
        return [(path, write_geojson(store, path, run_id, slides[0] if slides else None,
                                     object_type))]
    out, seen = [], set()
    for sid in slides:
        safe = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(sid).stem or sid).strip("._") or "slide"
        base, k = safe, 1
        while safe in seen:
            k += 1
            safe = f"{base}-{k}"
        seen.add(safe)
        target = path.with_name(f"{path.stem}.{safe}{path.suffix}")
        out.append((target, write_geojson(store, target, run_id, sid, object_type)))
    return out
