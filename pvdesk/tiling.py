"""Tile grids at a physical scale.

A model states the field of view it was trained on (micrometres per tile side) and its
input size. The grid covers the slide with squares of that many micrometres (level-0
pixels = um / mpp), optionally overlapping, keeps those whose tissue fraction passes a
threshold, and records the pyramid level to read them from (the coarsest level that
still gives at least the model's input size). Without a known mpp the grid falls back
to pixel units and says so in ``warnings``. In a patch folder every image is one tile.

The tissue filter is computed for every grid position at once (numpy, over the tissue
mask's integral image), so building a grid costs about the same for 1k or 160k positions;
the kept tiles are also offered as numpy arrays (``TileGrid.xy``, ``TileGrid.tissue``) for
consumers that work on coordinates rather than Tile objects.

Unreadable parts of the slide (``TissueMask.unknown``) are not background: a tile is kept
when its tissue share, counting the unknown share as possible tissue, reaches the threshold.
Such a tile records its unknown share (``Tile.unknown``); it is read like any other and,
when the read fails, counted as unreadable by the engine.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np

from pvdesk.errors import GridError
from pvdesk.slides.base import PyramidSource, Source, Tile
from pvdesk.tile_size import DEFAULT_TILE_UM
from pvdesk.tissue import TissueMask, TissueParams, detect_tissue

DEFAULT_OUT_SIZE = 224
# Grid positions one make_grid may weigh (16.8M: a 200k px slide at a 56 px stride). More
# means a tile side too small for the slide; the arrays would grow past ~1 GiB.
MAX_GRID_POSITIONS = 1 << 24
# The smallest tile side in level-0 pixels: below it a tile holds no structure a model can
# classify (a 1 px tile would also mean millions of positions on a small slide).
MIN_TILE_PX = 16
_NO_XY = np.zeros((0, 2), np.int64)
_NO_XY.flags.writeable = False


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
    # (N, 2) int64 level-0 (x, y) of ``tiles``, in the same order; built on first use when
    # the grid was made from a list of tiles. Treat as read-only.
    _xy: np.ndarray | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._xy_for = self.tiles if self._xy is not None else None

    def __len__(self) -> int:
        return len(self.tiles)

    @property
    def xy(self) -> np.ndarray:
        """Level-0 top-left corners of the tiles as an (N, 2) int64 array, row i = tiles[i].

        Empty (0, 2) for a patch folder (its tiles have no coordinates). Read-only: a copy
        is needed to modify it.
        """
        if self.side is None:
            return _NO_XY
        if (self._xy is None or self._xy_for is not self.tiles
                or len(self._xy) != len(self.tiles)):
            xy = np.array([(t.x, t.y) for t in self.tiles], np.int64).reshape(-1, 2)
            xy.flags.writeable = False
            self._xy, self._xy_for = xy, self.tiles
        return self._xy

    @property
    def tissue(self) -> np.ndarray:
        """Tissue fraction of each tile (float64, the value stored in ``Tile.tissue``)."""
        return np.fromiter((t.tissue for t in self.tiles), np.float64, len(self.tiles))

    @property
    def columns(self) -> int:
        return self._count(0)

    @property
    def rows(self) -> int:
        return self._count(1)

    def _count(self, axis: int) -> int:
        if not self.tiles or self.stride is None:
            return 0
        coords = self.xy[:, axis]
        return int(coords.max() - coords.min()) // self.stride + 1

    @property
    def unknown_tiles(self) -> int:
        """Kept tiles that overlap a part of the slide the overview could not read."""
        return sum(1 for t in self.tiles if t.unknown > 0)

    def describe(self) -> str:
        if self.side is None:
            return f"{len(self.tiles)} patch images, each resized to {self.out_size} px"
        scale = (f"{self.tile_um:g} um ({self.side} px at level 0)" if self.units == "um"
                 else f"{self.side} px at level 0 (mpp unknown)")
        unknown = self.unknown_tiles
        where = (f"{len(self.tiles)} of {self.total_positions} tiles on tissue"
                 + (f" ({unknown} of them overlap unreadable regions)" if unknown else ""))
        return (f"{where}; tile side {scale}, "
                f"stride {self.stride} px, read at level {self.level}, "
                f"resized to {self.out_size} px")


def grid_positions(length: int, side: int, stride: int) -> int:
    """How many tiles of ``side`` px at ``stride`` cover ``length`` px (the last may overhang)."""
    return max(1, math.ceil((length - side) / stride) + 1) if length > side else 1


def grid_geometry(source: PyramidSource, tile_um: float = DEFAULT_TILE_UM,
                  out_size: int = DEFAULT_OUT_SIZE, overlap: float = 0.0,
                  tile_px: int | None = None) -> tuple[int, str, int, int, int, list[str]]:
    """(side px, units, stride px, columns, rows, warnings) of a slide's grid, from its
    size and mpp alone: cheap, and GridError when the tiles would be under MIN_TILE_PX or
    the positions over MAX_GRID_POSITIONS. make_grid checks this before any pixel is read;
    callers may check it before loading a model."""
    if not 0.0 <= overlap < 1.0:
        raise GridError(f"overlap must be in [0, 1), got {overlap}")
    warnings: list[str] = []
    mpp = source.mpp
    if tile_px:
        side, units = int(tile_px), "px"
    elif mpp:
        if not (math.isfinite(tile_um) and tile_um > 0 and math.isfinite(tile_um / mpp)):
            raise GridError(f"{source.path.name}: tile size {tile_um!r} um at {mpp!r} um/px "
                            "is not a usable tile size")
        side, units = max(1, round(tile_um / mpp)), "um"
    else:
        side, units = out_size, "px"
        warnings.append(
            f"{source.path.name}: microns per pixel unknown; tiles are {side} px at level 0 "
            "instead of a physical size (state the mpp to tile at a physical scale)"
        )
    if side < MIN_TILE_PX:
        size = f"{tile_um:g} um at {mpp:g} um/px" if units == "um" else "the tile size"
        raise GridError(
            f"{source.path.name}: {size} gives {side} px tiles; tiles need at least "
            f"{MIN_TILE_PX} px at level 0 (choose a larger tile size)")
    stride = max(1, round(side * (1.0 - overlap)))
    w0, h0 = source.dimensions
    nx, ny = grid_positions(w0, side, stride), grid_positions(h0, side, stride)
    if nx * ny > MAX_GRID_POSITIONS:  # checked before the tissue mask or any array
        raise GridError(
            f"{source.path.name}: {nx} x {ny} = {nx * ny} grid positions for {side} px tiles "
            f"at a {stride} px stride on a {w0} x {h0} px slide; at most "
            f"{MAX_GRID_POSITIONS} (choose larger tiles or less overlap)")
    return side, units, stride, nx, ny, warnings


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
    then is ``out_size``). ``min_tissue`` is the tissue fraction a tile must reach. Edge
    tiles may overhang the slide; the part outside counts as background.
    """
    if not 0.0 <= overlap < 1.0:
        raise GridError(f"overlap must be in [0, 1), got {overlap}")
    if not isinstance(source, PyramidSource):
        tiles = source.tiles()
        return TileGrid(tiles, out_size, total_positions=len(tiles), units="patch")

    side, units, stride, nx, ny, warnings = grid_geometry(source, tile_um, out_size, overlap,
                                                           tile_px)
    mpp = source.mpp
    w0, h0 = source.dimensions
    level = source.best_level_for_downsample(side / out_size)
    if mask is None:
        mask = detect_tissue(source, tissue_params, progress=progress)
    xs = np.arange(nx, dtype=np.int64) * stride
    ys = np.arange(ny, dtype=np.int64) * stride
    frac = mask.grid_fractions(xs, ys, side, side)  # (ny, nx)
    keep = (frac >= min_tissue) & (frac > 0)
    unknown = mask.unknown_grid_fractions(xs, ys, side, side)
    if unknown is not None:  # unreadable is possible tissue: keep what could reach the bar
        keep |= (unknown > 0) & (frac + unknown >= min_tissue)
    rows, cols = np.nonzero(keep)  # row-major order
    xy = np.empty((rows.size, 2), np.int64)
    xy[:, 0], xy[:, 1] = xs[cols], ys[rows]
    xy.flags.writeable = False
    # Python's round, as the per-position loop stored it; a grid has few distinct
    # fractions (one per tissue pixel count), so each is rounded once
    values, which = np.unique(frac[rows, cols], return_inverse=True)
    rounded = [round(v, 4) for v in values.tolist()]
    tiles = [Tile(i, x, y, side, side, rounded[k]) for i, x, y, k in
             zip(range(rows.size), xy[:, 0].tolist(), xy[:, 1].tolist(), which.tolist(),
                 strict=True)]
    if unknown is not None:
        share = unknown[rows, cols]
        for i in np.flatnonzero(share > 0).tolist():
            tiles[i] = dataclasses.replace(tiles[i], unknown=round(float(share[i]), 4))
    return TileGrid(tiles, out_size, side, stride, level, units,
                    tile_um if units == "um" else None, mpp, nx * ny, mask, warnings, xy)
