"""What pvdesk and QuPath must agree on, shared by the GeoJSON exporter and importer.

Read from QuPath's own code (qupath-core ``PathObjectTypeAdapters``, the OpenSlide image
server), not its documentation:

- A feature's ``id`` is kept only when it parses as a UUID; anything else gets a new random
  id on every import. pvdesk's ids are uuid5 of (slide id, run, tile coordinates): the same
  tile of the same run has the same id in every export, so QuPath objects stay matched.
- ``properties.objectType``: "tile", "detection", "annotation" (and "cell", "tmaCore").
  ``classification`` {name, color [r, g, b]}; ``measurements`` a map name -> number (a list of
  {name, value} is read too); ``metadata`` a map of strings, which QuPath keeps only on
  objects that hold metadata (annotations); ``isLocked``; ``name``.
- Coordinates: QuPath opens a slide whose OpenSlide properties hold all four
  ``openslide.bounds-x/-y/-width/-height`` (MRXS, Leica SCN, some others) cropped to those
  bounds (its default, "useBoundingBoxes"): QuPath's x is OpenSlide's level-0 x minus
  bounds-x, y likewise. pvdesk stores OpenSlide level-0 pixels, so the exporter subtracts
  the offset and the importer adds it back.

Also here: the area of a polygon inside each of many axis-aligned rectangles (tiles),
exactly and vectorised, for "which tiles does this annotation cover".
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

BOUNDS_KEYS = ("openslide.bounds-x", "openslide.bounds-y", "openslide.bounds-width",
               "openslide.bounds-height")

# uuid5 namespace of pvdesk's QuPath object ids (a fixed random UUID; never change it).
ID_NAMESPACE = uuid.UUID("6f1c2b7e-3d4a-5e8f-9a0b-1c2d3e4f5a6b")

OBJECT_TYPES = ("tile", "detection", "annotation")


def tile_uuid(slide_id: str, run_id: int, tile_key: str) -> str:
    """The QuPath object id of a tile of a run: stable across exports."""
    return str(uuid.uuid5(ID_NAMESPACE, f"{slide_id}\n{run_id}\n{tile_key}"))


# -- bounds ----------------------------------------------------------------------------------

def bounds_offset(properties: Mapping[str, str] | None) -> tuple[int, int]:
    """(bounds-x, bounds-y) as QuPath applies them: only when all four bounds properties are
    present and parse as integers (Java's Integer.parseInt), else (0, 0)."""
    if not properties or not all(k in properties for k in BOUNDS_KEYS):
        return (0, 0)
    try:
        vals = [int(str(properties[k]).strip()) for k in BOUNDS_KEYS]
    except ValueError:
        return (0, 0)
    return (vals[0], vals[1])


def openslide_properties(path) -> dict | None:
    """The slide's OpenSlide properties, or None when the file is not there or OpenSlide does
    not read it (an image, a patch folder)."""
    p = Path(str(path)).expanduser()
    if not p.is_file():
        return None
    try:
        import openslide

        with openslide.OpenSlide(str(p)) as slide:
            return dict(slide.properties)
    except Exception:
        return None


def slide_offset(store, slide_id: str) -> tuple[tuple[int, int], str | None]:
    """((dx, dy), note): the offset from pvdesk's level-0 pixels to QuPath's for a slide of a
    store. Bounds recorded in the store's slide properties win; otherwise the slide file is
    read (its stored path). ``note`` says when the offset could not be known."""
    path = None
    for s in store.slides():
        if s["slide_id"] == slide_id:
            if all(k in s["properties"] for k in BOUNDS_KEYS):
                return bounds_offset(s["properties"]), None
            path = s["path"]
            break
    if path is None or Path(str(path)).is_dir():
        return (0, 0), None
    props = openslide_properties(path)
    if props is None:
        if Path(str(path)).suffix.lower() in (".mrxs", ".scn", ".vms", ".vmu", ".bif", ".ndpi"):
            return (0, 0), (f"{path}: slide file not found, so its OpenSlide bounds are unknown;"
                            " coordinates are level-0 pixels (give --offset X,Y if QuPath "
                            "shows the objects displaced)")
        return (0, 0), None
    return bounds_offset(props), None


# -- geometry --------------------------------------------------------------------------------

def polygons_of(geometry: Mapping | None) -> list[list[np.ndarray]]:
    """The polygons of a GeoJSON geometry, each a list of rings (outer first) as float arrays
    of shape (n, 2). Points and lines have no area and give nothing."""
    if not geometry:
        return []
    kind = geometry.get("type")
    coords = geometry.get("coordinates")
    if kind == "Polygon":
        polys = [coords]
    elif kind == "MultiPolygon":
        polys = list(coords or [])
    elif kind == "GeometryCollection":
        return [p for g in geometry.get("geometries") or [] for p in polygons_of(g)]
    else:
        return []
    out = []
    for rings in polys:
        arrs = []
        for ring in rings or []:
            a = np.asarray(ring, dtype=np.float64).reshape(-1, 2)[:, :2]
            if len(a) >= 3:
                arrs.append(a)
        if arrs:
            out.append(arrs)
    return out


def _ring_integral(ring: np.ndarray) -> float:
    """sum over edges of the integral of y dx (the signed area, opposite to the shoelace)."""
    x, y = ring[:, 0], ring[:, 1]
    x2, y2 = np.roll(x, -1), np.roll(y, -1)
    return float(np.sum((x2 - x) * (y + y2) / 2))


def _oriented_edges(rings: list[np.ndarray]) -> np.ndarray:
    """Edges (x0, y0, x1, y1) of a polygon with the outer ring's integral positive and every
    hole's negative, so that the sum over all edges counts the holes out."""
    edges = []
    for i, ring in enumerate(rings):
        r = ring if np.any(ring[0] != ring[-1]) else ring[:-1]
        if len(r) < 3:
            continue
        s = _ring_integral(r)
        if (i == 0) != (s > 0):
            r = r[::-1]
        edges.append(np.column_stack([r, np.roll(r, -1, axis=0)]))
    return np.concatenate(edges) if edges else np.zeros((0, 4))


def _G(y, y0, y1):
    """Antiderivative of clamp(y, y0, y1) - y0."""
    h = y1 - y0
    below = y <= y0
    above = y >= y1
    mid = (y - y0) ** 2 / 2
    top = h ** 2 / 2 + h * (y - y1)
    return np.where(below, 0.0, np.where(above, top, mid))


def coverage(rings: list[np.ndarray], rects: np.ndarray, chunk: int = 1 << 20) -> np.ndarray:
    """Area of the polygon (outer ring + holes) inside each rectangle (x, y, w, h), exactly.

    For a vertical line at x, the signed crossings of the polygon's edges, each clamped to
    [y0, y1], add up to the length of the polygon inside the rectangle at x; integrating over
    x per edge is piecewise quadratic, so the whole computation is a sum over edges, done for
    all rectangles at once with numpy.
    """
    rects = np.asarray(rects, dtype=np.float64).reshape(-1, 4)
    out = np.zeros(len(rects))
    edges = _oriented_edges(rings)
    if not len(edges) or not len(rects):
        return out
    ex0, ey0, ex1, ey1 = (edges[:, i][:, None] for i in range(4))
    step = max(1, chunk // max(1, len(edges)))
    for start in range(0, len(rects), step):
        r = rects[start:start + step]
        rx0, ry0 = r[:, 0][None, :], r[:, 1][None, :]
        rx1, ry1 = rx0 + r[:, 2][None, :], ry0 + r[:, 3][None, :]
        dx = ex1 - ex0
        with np.errstate(divide="ignore", invalid="ignore"):
            slope = np.where(dx != 0, (ey1 - ey0) / np.where(dx != 0, dx, 1), 0.0)
        xa = np.clip(ex0, rx0, rx1)
        xb = np.clip(ex1, rx0, rx1)
        ya = ey0 + slope * (xa - ex0)
        yb = ey0 + slope * (xb - ex0)
        dy = yb - ya
        flat = np.abs(dy) < 1e-12
        with np.errstate(divide="ignore", invalid="ignore"):
            sloped = (_G(yb, ry0, ry1) - _G(ya, ry0, ry1)) / np.where(flat, 1, dy)
        level = np.clip(ya, ry0, ry1) - ry0
        part = (xb - xa) * np.where(flat, level, sloped)
        out[start:start + step] = part.sum(axis=0)
    return np.clip(out, 0.0, None)


def covered_fraction(polygons: Iterable[list[np.ndarray]], rects: np.ndarray) -> np.ndarray:
    """Fraction of each rectangle covered by the union of disjoint polygons (capped at 1).
    Only rectangles whose box meets a polygon's box are computed."""
    rects = np.asarray(rects, dtype=np.float64).reshape(-1, 4)
    area = np.zeros(len(rects))
    if not len(rects):
        return area
    x0, y0 = rects[:, 0], rects[:, 1]
    x1, y1 = x0 + rects[:, 2], y0 + rects[:, 3]
    for rings in polygons:
        px0, py0 = rings[0].min(axis=0)
        px1, py1 = rings[0].max(axis=0)
        near = np.flatnonzero((x1 > px0) & (x0 < px1) & (y1 > py0) & (y0 < py1))
        if len(near):
            area[near] += coverage(rings, rects[near])
    full = rects[:, 2] * rects[:, 3]
    return np.minimum(1.0, np.divide(area, full, out=np.zeros_like(area), where=full > 0))


def shift_polygons(polygons: list[list[np.ndarray]], dx: float, dy: float
                   ) -> list[list[np.ndarray]]:
    d = np.array([dx, dy], dtype=np.float64)
    return [[ring + d for ring in rings] for rings in polygons]
