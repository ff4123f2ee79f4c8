"""GeoJSON that QuPath imports (File > Import objects, or drag and drop), and reads back
(:mod:`pvdesk.export.geojson_import`).

A FeatureCollection with one Polygon feature per tile, in QuPath's pixel coordinates: pvdesk's
level-0 pixels minus the slide's OpenSlide bounds offset (see :mod:`pvdesk.export.qupath`),
as a closed ring x,y -> x+w,y -> x+w,y+h -> x,y+h -> x,y. Each feature:

    id              a UUID derived from slide id, run and tile (identical in every export)
    objectType      "tile" (default: light objects, as QuPath's own tile classifiers make),
                    "detection" or "annotation"
    classification  {"name": reviewed label if reviewed else predicted, "color": [r, g, b]}
                    (the colour of the run's taxonomy: BreakHis or the bundle's own)
    measurements    {"p_<class>": probability for each class, "confidence": top probability}
    metadata        strings: slide_id, source, model, run, tile ("x,y,w,h" in level-0 pixels),
                    mpp, predicted, review_status, and when reviewed review_label, reviewer,
                    reviewed_at (QuPath keeps metadata on annotations; pvdesk reads it from
                    any object type); in a team export (two or more reviewers decided tiles,
                    or ``team=True``) also the CSV's team cells under the same names:
                    consensus_label, consensus_source and label_by:<reviewer> for each
                    reviewer who labelled the tile (read back by the import)

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
from pvdesk.export.csv import team_cells
from pvdesk.export.qupath import OBJECT_TYPES, slide_offset, tile_uuid
from pvdesk.review.types import UNREVIEWED, status_for_run, tile_key
from pvdesk.taxonomy import Taxonomy, colour_of, hex_to_rgb


def _colour(name: str, taxonomy: Taxonomy | None = None) -> list[int]:
    try:
        return list(hex_to_rgb(taxonomy.colour_of(name) if taxonomy is not None
                               else colour_of(name)))
    except KeyError:
        return [128, 128, 128]


def _measurements(rec) -> dict:
    """Finite numbers only (QuPath reads measurements as doubles; null is not one)."""
    out = {f"p_{c}": float(p) for c, p in zip(rec.classes, rec.probs, strict=True)
           if p is not None and math.isfinite(p)}
    if rec.confidence is not None and math.isfinite(rec.confidence):
        out["confidence"] = float(rec.confidence)
    return out


def metadata(rec, team: dict | None = None) -> dict[str, str]:
    """The review and provenance of a tile as QuPath metadata (a map of strings); ``team``:
    the tile's team cells ({consensus_label, consensus_source, label_by:<name>: text})."""
    meta = {"slide_id": str(rec.slide_id), "source": str(rec.source), "model": rec.model,
            "run": str(rec.run_id), "tile": f"{rec.tile_x},{rec.tile_y},{rec.tile_w},{rec.tile_h}",
            "predicted": rec.predicted, "review_status": status_for_run(rec)}
    if rec.mpp is not None:
        meta["mpp"] = f"{rec.mpp:g}"
    if rec.status != UNREVIEWED:
        for key, value in (("review_label", rec.label), ("reviewer", rec.reviewer),
                           ("reviewed_at", rec.reviewed_at)):
            if value:
                meta[key] = str(value)
    meta.update({k: str(v) for k, v in (team or {}).items() if v})
    return meta


def feature(rec, object_type: str = "tile", offset: tuple[int, int] = (0, 0),
            taxonomy: Taxonomy | None = None, team: dict | None = None) -> dict:
    """The GeoJSON feature of a TileRecord with coordinates; ``offset`` is subtracted to give
    QuPath's coordinates; colours from ``taxonomy`` (BreakHis when None); ``team``: its team
    cells for the metadata."""
    x, y = rec.tile_x - offset[0], rec.tile_y - offset[1]
    w, h = rec.tile_w, rec.tile_h
    ring = [[x, y], [x + w, y], [x + w, y + h], [x, y + h], [x, y]]
    name = rec.shown_label
    return {
        "type": "Feature",
        "id": tile_uuid(rec.slide_id, rec.run_id, tile_key(rec.source, rec.tile_x, rec.tile_y,
                                                            rec.tile_w, rec.tile_h)),
        "geometry": {"type": "Polygon", "coordinates": [ring]},
        "properties": {
            "objectType": object_type,
            "classification": {"name": name, "color": _colour(name, taxonomy)},
            "isLocked": False,
            "measurements": _measurements(rec),
            "metadata": metadata(rec, team),
        },
    }


def write_geojson(store, path, run_id: int | None = None, slide_id: str | None = None,
                  object_type: str = "tile", offset: tuple[int, int] | None = None,
                  notes: list[str] | None = None, team: bool | None = None) -> int:
    """Write one slide's tiles as a FeatureCollection; returns the feature count.
    ``run_id`` None means the latest run of that slide. ``offset`` None reads the slide's
    OpenSlide bounds (the store's record, else the slide file); a note is appended to
    ``notes`` when they cannot be known. ``team``: add the team metadata (None: when two
    or more reviewers decided tiles; False: never)."""
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
    if offset is None:
        offset, note = slide_offset(store, slide_id) if slide_id else ((0, 0), None)
        if note and notes is not None:
            notes.append(note)
    taxonomy = Taxonomy.of_run(store.run(run_id)) if run_id is not None else None
    by_tile = team_cells(store, run_id, team)[1] if slide_id else {}
    n = 0
    with atomic_write(path, "w") as fh:
        fh.write('{"type": "FeatureCollection", "features": [')
        for rec in store.tiles(slide_id=slide_id, run_id=run_id) if slide_id else ():
            if rec.tile_x is None:
                continue
            fh.write(",\n" if n else "\n")
            fh.write(json.dumps(feature(rec, object_type, offset, taxonomy,
                                        by_tile.get(rec.tile_id)),
                                ensure_ascii=False, allow_nan=False))
            n += 1
        fh.write("\n]}\n")
    return n


def _slides_with_tiles(store, run_id=None) -> list[str]:
    return store.slide_ids(run_id=run_id, with_coords=True)


def write_geojson_per_slide(store, path, run_id: int | None = None,
                            object_type: str = "tile", notes: list[str] | None = None,
                            team: bool | None = None) -> list[tuple[Path, int]]:
    """One file per slide: ``path`` itself for a single slide, else ``<stem>.<slide><ext>``;
    each slide with its own bounds offset."""
    path = Path(path)
    slides = _slides_with_tiles(store, run_id)
    if len(slides) <= 1:
        return [(path, write_geojson(store, path, run_id, slides[0] if slides else None,
                                     object_type, notes=notes, team=team))]
    out, seen = [], set()
    for sid in slides:
        safe = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(sid).stem or sid).strip("._") or "slide"
        base, k = safe, 1
        while safe in seen:
            k += 1
            safe = f"{base}-{k}"
        seen.add(safe)
        target = path.with_name(f"{path.stem}.{safe}{path.suffix}")
        out.append((target, write_geojson(store, target, run_id, sid, object_type,
                                          notes=notes, team=team)))
    return out
