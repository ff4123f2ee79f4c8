"""The per-position make_grid that pvdesk shipped before it was vectorised, kept as the
reference the vectorised one must match exactly (tests) and be compared with (benchmark),
plus a pixel-less source of any size to run grids on.
"""

from __future__ import annotations

import math

import numpy as np

from pvdesk.slides.base import PyramidSource, Tile
from pvdesk.tiling import DEFAULT_OUT_SIZE, DEFAULT_TILE_UM, TileGrid
from pvdesk.tissue import TissueMask


def make_grid_reference(source, tile_um=DEFAULT_TILE_UM, out_size=DEFAULT_OUT_SIZE,
                        overlap=0.0, min_tissue=0.25, tile_px=None, mask=None) -> TileGrid:
    """The old algorithm: one ``mask.fraction`` call per grid position, in Python."""
    warnings: list[str] = []
    mpp = source.mpp
    if tile_px:
        side, units = int(tile_px), "px"
    elif mpp:
        side, units = max(1, round(tile_um / mpp)), "um"
    else:
        side, units = out_size, "px"
        warnings.append(
            f"{source.path.name}: microns per pixel unknown; tiles are {side} px at level 0 "
            "instead of a physical size (state the mpp to tile at a physical scale)"
        )
    stride = max(1, round(side * (1.0 - overlap)))
    level = source.best_level_for_downsample(side / out_size)
    w0, h0 = source.dimensions
    nx = max(1, math.ceil((w0 - side) / stride) + 1) if w0 > side else 1
    ny = max(1, math.ceil((h0 - side) / stride) + 1) if h0 > side else 1
    tiles: list[Tile] = []
    for j in range(ny):
        y = j * stride
        for i in range(nx):
            x = i * stride
            frac = mask.fraction(x, y, side, side)
            if frac >= min_tissue and frac > 0:
                tiles.append(Tile(len(tiles), x, y, side, side, round(frac, 4)))
    return TileGrid(tiles, out_size, side, stride, level, units,
                    tile_um if units == "um" else None, mpp, nx * ny, mask, warnings)


class GeometrySource(PyramidSource):
    """A pyramid of any size with no pixels: enough for make_grid given a mask."""

    kind = "geometry"

    def __init__(self, width: int, height: int, mpp: float | None = 0.5, levels: int = 4,
                 name: str = "geometry.tiff"):
        super().__init__(name)
        self._dims = [(max(1, width // 4**i), max(1, height // 4**i)) for i in range(levels)]
        self._native = mpp

    @property
    def slide_id(self) -> str:
        return "geometry"

    @property
    def native_mpp(self):
        return self._native

    @property
    def level_dimensions(self):
        return self._dims

    @property
    def level_downsamples(self):
        return [self._dims[0][0] / d[0] for d in self._dims]

    def read_region(self, location, level, size):
        raise NotImplementedError("a geometry source has no pixels")

    def clone(self):
        return self


def blob_mask(width: int, height: int, seed: int = 0, thumb: int = 1024,
              density: float = 0.5) -> TissueMask:
    """A random tissue mask (smoothed noise, so tiles see partial tissue) for a slide."""
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    scale = thumb / max(width, height)
    cols, rows = max(1, round(width * scale)), max(1, round(height * scale))
    noise = ndimage.gaussian_filter(rng.random((rows, cols)), sigma=max(1.0, rows / 40))
    mask = noise > np.quantile(noise, 1 - density)
    return TissueMask(mask, (width / cols, height / rows), 0.1)
