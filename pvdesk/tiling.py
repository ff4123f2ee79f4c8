"""Tile grids at a physical scale.

A model states the field of view it was trained on (micrometres per tile side) and its
input size. The grid covers the slide with squares of that many micrometres (level-0
pixels = um / mpp), optionally overlapping, keeps those whose tissue fraction passes a
threshold, and records the pyramid level to read them from (the coarsest level that
still gives at least the model's input size). Without a known mpp the grid falls back
to pixel units and says so in ``warnings``. In a patch folder every image is one tile.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from pvdesk.slides.base import PyramidSource, Source, Tile
from pvdesk.tissue import TissueMask, TissueParams, detect_tissue

DEFAULT_TILE_UM = 112.0
DEFAULT_OUT_SIZE = 224


@dataclass
class TileGrid:
    tiles: list[Tile]
    out_size: int  # the model's input size; read_tile returns images of this size
    side: int | None = None  # tile side in level-0 px (None for patch folders)
    stride: int | None = None
    level: int = 0  # pyramid level tiles are read from
    units: str = "um"  # "um" when the scale is physical, "px" when mpp is unknown
    tile_um: float | None = None
    mpp: float | None = None
    total_positions: int = 0  # grid positions before the tissue filter
    mask: TissueMask | None = None
    warnings: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.tiles)

    @property
    def columns(self) -> int:
        return self._count(0)

    @property
    def rows(self) -> int:
        return self._count(1)

    def _count(self, axis: int) -> int:
        if not self.tiles or self.stride is None:
            return 0
        coords = {(t.x, t.y)[axis] for t in self.tiles}
        return (max(coords) - min(coords)) // self.stride + 1

    def describe(self) -> str:
        if self.side is None:
            return f"{len(self.tiles)} patch images, each resized to {self.out_size} px"
        scale = (f"{self.tile_um:g} um ({self.side} px at level 0)" if self.units == "um"
                 else f"{self.side} px at level 0 (mpp unknown)")
        return (f"{len(self.tiles)} of {self.total_positions} tiles on tissue; tile side {scale}, "
                f"stride {self.stride} px, read at level {self.level}, "
                f"resized to {self.out_size} px")


def make_grid(
    source: Source,
    tile_um: float = DEFAULT_TILE_UM,
    out_size: int = DEFAULT_OUT_SIZE,
    overlap: float = 0.0,
    min_tissue: float = 0.25,
    tile_px: int | None = None,
    mask: TissueMask | None = None,
    tissue_params: TissueParams = TissueParams(),
    progress=None,
) -> TileGrid:
    """The tile grid of a source: row-major, deterministic, level-0 coordinates.

    ``overlap`` is the fraction of a tile shared with its neighbour (0.5: 50% stride).
    ``tile_px`` forces the tile side in level-0 pixels (used when mpp is unknown; default
    then is ``out_size``). ``min_tissue`` is the tissue fraction a tile must reach.
    """
    if not 0.0 <= overlap < 1.0:
        raise ValueError(f"overlap must be in [0, 1), got {overlap}")
    if not isinstance(source, PyramidSource):
        tiles = source.tiles()
        return TileGrid(tiles, out_size, total_positions=len(tiles), units="patch")

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
    if mask is None:
        mask = detect_tissue(source, tissue_params, progress=progress)

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
