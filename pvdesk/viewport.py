"""Viewer geometry, Qt-free: where the view looks, which display tiles it needs, scale bars.

Coordinates are level-0 pixels. ``scale`` is screen pixels per level-0 pixel. The viewer
draws a pyramid of display tiles: at display downsample ``ds`` (a power of two) a tile is
``TILE`` screen-sized pixels covering ``TILE * ds`` level-0 pixels, read from the finest
pyramid level that is not finer than needed and resized. A slide with a single level still
gets coarse display tiles, so zoomed-out views never read more pixels than they show.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

TILE = 256  # display tile side in pixels at its own downsample
MIN_SCALE_FACTOR = 0.5  # may zoom out to half the fit-to-window scale
MAX_SCALE = 4.0  # screen px per level-0 px (4x past full resolution)


@dataclass(frozen=True)
class TileKey:
    ds: int  # display downsample (power of two)
    tx: int
    ty: int

    def rect(self, slide_w: int, slide_h: int) -> tuple[int, int, int, int]:
        """Level-0 (x, y, w, h) of the tile, clipped to the slide."""
        side = TILE * self.ds
        x, y = self.tx * side, self.ty * side
        return x, y, max(0, min(side, slide_w - x)), max(0, min(side, slide_h - y))


def display_ds(scale: float) -> int:
    """The display downsample for a zoom: the largest power of two <= 1/scale (at least 1)."""
    if scale >= 1.0:
        return 1
    return 1 << max(0, int(math.floor(math.log2(1.0 / scale) + 1e-9)))


def max_display_ds(slide_w: int, slide_h: int) -> int:
    """The coarsest display downsample worth having: the whole slide in about one tile."""
    return display_ds(TILE / max(slide_w, slide_h, 1))


class Viewport:
    """A window of ``view_w`` x ``view_h`` screen px onto a slide of ``slide_w`` x ``slide_h``."""

    def __init__(self, slide_w: int, slide_h: int, view_w: int = 800, view_h: int = 600):
        self.slide_w, self.slide_h = max(1, slide_w), max(1, slide_h)
        self.view_w, self.view_h = max(1, view_w), max(1, view_h)
        self.cx, self.cy = self.slide_w / 2, self.slide_h / 2
        self.scale = self.fit_scale

    # zoom ------------------------------------------------------------------
    @property
    def fit_scale(self) -> float:
        return min(self.view_w / self.slide_w, self.view_h / self.slide_h)

    @property
    def min_scale(self) -> float:
        return min(self.fit_scale * MIN_SCALE_FACTOR, MAX_SCALE)

    def fit(self) -> None:
        self.cx, self.cy = self.slide_w / 2, self.slide_h / 2
        self.scale = self.fit_scale

    def resize(self, view_w: int, view_h: int) -> None:
        was_fit = math.isclose(self.scale, self.fit_scale, rel_tol=1e-6)
        self.view_w, self.view_h = max(1, view_w), max(1, view_h)
        if was_fit:
            self.fit()
        self.clamp()

    def set_scale(self, scale: float) -> None:
        self.scale = min(MAX_SCALE, max(self.min_scale, scale))
        self.clamp()

    def zoom(self, factor: float, sx: float | None = None, sy: float | None = None) -> None:
        """Zoom by ``factor`` keeping the slide point under screen (sx, sy) in place."""
        sx = self.view_w / 2 if sx is None else sx
        sy = self.view_h / 2 if sy is None else sy
        px, py = self.to_slide(sx, sy)
        self.scale = min(MAX_SCALE, max(self.min_scale, self.scale * factor))
        self.cx = px - (sx - self.view_w / 2) / self.scale
        self.cy = py - (sy - self.view_h / 2) / self.scale
        self.clamp()

    # pan -------------------------------------------------------------------
    def pan(self, dx_screen: float, dy_screen: float) -> None:
        """Move the content by a screen-pixel drag (content follows the mouse)."""
        self.cx -= dx_screen / self.scale
        self.cy -= dy_screen / self.scale
        self.clamp()

    def center_on(self, x: float, y: float) -> None:
        self.cx, self.cy = x, y
        self.clamp()

    def clamp(self) -> None:
        """Keep the slide centre reachable: the view may not wander off the slide."""
        self.cx = min(self.slide_w, max(0.0, self.cx))
        self.cy = min(self.slide_h, max(0.0, self.cy))

    # mapping ---------------------------------------------------------------
    def to_slide(self, sx: float, sy: float) -> tuple[float, float]:
        return (self.cx + (sx - self.view_w / 2) / self.scale,
                self.cy + (sy - self.view_h / 2) / self.scale)

    def to_screen(self, x: float, y: float) -> tuple[float, float]:
        return ((x - self.cx) * self.scale + self.view_w / 2,
                (y - self.cy) * self.scale + self.view_h / 2)

    def visible_rect(self) -> tuple[float, float, float, float]:
        """Level-0 (x, y, w, h) the view shows (may extend past the slide)."""
        x0, y0 = self.to_slide(0, 0)
        return x0, y0, self.view_w / self.scale, self.view_h / self.scale

    # tiles -----------------------------------------------------------------
    @property
    def ds(self) -> int:
        return min(display_ds(self.scale), max_display_ds(self.slide_w, self.slide_h))

    def tiles(self, ds: int | None = None, margin: int = 0) -> list[TileKey]:
        """Display tiles at ``ds`` that intersect the view (plus ``margin`` tiles around),
        nearest the centre first."""
        ds = self.ds if ds is None else ds
        side = TILE * ds
        x, y, w, h = self.visible_rect()
        nx = math.ceil(self.slide_w / side)
        ny = math.ceil(self.slide_h / side)
        tx0 = max(0, int(math.floor(x / side)) - margin)
        ty0 = max(0, int(math.floor(y / side)) - margin)
        tx1 = min(nx - 1, int(math.floor((x + w) / side)) + margin)
        ty1 = min(ny - 1, int(math.floor((y + h) / side)) + margin)
        keys = [TileKey(ds, tx, ty) for ty in range(ty0, ty1 + 1) for tx in range(tx0, tx1 + 1)]
        keys.sort(key=lambda k: ((k.tx + 0.5) * side - self.cx) ** 2
                  + ((k.ty + 0.5) * side - self.cy) ** 2)
        return keys


def read_plan(key: TileKey, slide_w: int, slide_h: int, level_downsamples: list[float],
              best_level) -> tuple[tuple[int, int], int, tuple[int, int], tuple[int, int]] | None:
    """How to read a display tile: (level-0 location, level, size at level, output size).

    ``best_level(ds)`` is the source's ``best_level_for_downsample``. None for an empty tile.
    """
    x, y, w, h = key.rect(slide_w, slide_h)
    if w <= 0 or h <= 0:
        return None
    level = best_level(key.ds)
    lds = level_downsamples[level]
    size = (max(1, math.ceil(w / lds)), max(1, math.ceil(h / lds)))
    out = (max(1, round(w / key.ds)), max(1, round(h / key.ds)))
    return (x, y), level, size, out


NICE_STEPS = (1, 2, 5)


def scale_bar(mpp: float | None, scale: float, target_px: float = 120.0
              ) -> tuple[float, str] | None:
    """A scale bar near ``target_px`` long: (length in screen px, label), or None without mpp.

    The length in micrometres is a 1, 2 or 5 times a power of ten.
    """
    if not mpp or scale <= 0:
        return None
    um_per_px = mpp / scale
    target_um = target_px * um_per_px
    exp = math.floor(math.log10(target_um))
    best = None
    for e in (exp - 1, exp, exp + 1):
        for s in NICE_STEPS:
            um = s * 10.0 ** e
            if um <= target_um * 1.0001 and (best is None or um > best):
                best = um
    um = best or 10.0 ** exp
    label = f"{um / 1000:g} mm" if um >= 1000 else f"{um:g} µm"
    return um / um_per_px, label


def magnification(objective_power: float | None, scale: float) -> str:
    """The zoom as a magnification when the scan's objective is known, else a percentage."""
    if objective_power:
        m = objective_power * scale
        return f"{m:.1f}x" if m < 10 else f"{m:.0f}x"
    return f"{scale * 100:.0f}%"
