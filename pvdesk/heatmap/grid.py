"""Tile predictions on a grid of cells: one cell per grid stride, in level-0 pixels.

Cell (row, col) covers level-0 x in [col * stride, (col + 1) * stride) and likewise y, so a
heatmap pixel maps to level-0 by ``cell * stride``. A tile at (x, y) of side ``side`` adds its
probabilities to the ``round(side / stride)`` x ``round(side / stride)`` cells from
(y // stride, x // stride); where tiles overlap (stride < side) a cell holds the mean of the
tiles covering it. Cells whose tissue share (from the grid's tissue mask) is below
``min_tissue`` are masked, as are cells no tile covers: their values are NaN.

Built to be updated as results arrive: ``add`` a batch, then ask for values again.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from pvdesk.taxonomy import Taxonomy

ROLLUP = "rollup"  # layer name: P(malignant) with the benign/malignant colours (P of the
# second of a custom taxonomy's two groups); absent when the taxonomy has no such pair
ARGMAX = "argmax"  # layer name: the most probable class per cell


class HeatmapGrid:
    """Per-class mean probabilities of one classifier over a slide's cells."""

    def __init__(self, grid, classes: Sequence[str], size: tuple[int, int] | None = None,
                 min_tissue: float = 0.05, taxonomy: Taxonomy | None = None):
        if grid.stride is None or grid.side is None:
            raise ValueError("a heatmap needs a slide tile grid (a patch folder has none)")
        self.classes = tuple(classes)
        # colours, names and groups of the classes (BreakHis unless the run says otherwise)
        self.taxonomy = taxonomy or Taxonomy.for_classes(self.classes)
        self.stride, self.side = int(grid.stride), int(grid.side)
        self.span = max(1, round(self.side / self.stride))  # cells per tile side
        if size is None:
            if grid.mask is None:
                raise ValueError("give the slide size: the grid has no tissue mask")
            rows, cols = grid.mask.mask.shape
            dx, dy = grid.mask.downsample
            size = (round(cols * dx), round(rows * dy))
        self.size = (int(size[0]), int(size[1]))  # level-0 (width, height)
        self.shape = (max(1, math.ceil(self.size[1] / self.stride)),
                      max(1, math.ceil(self.size[0] / self.stride)))
        self.mask = grid.mask
        self.tissue = self._tissue_cells(min_tissue)
        self.sums = np.zeros((len(self.classes), *self.shape), dtype=np.float64)
        self.counts = np.zeros(self.shape, dtype=np.int32)
        self.tiles_added = 0

    # -- building ----------------------------------------------------------------------------
    def _tissue_cells(self, min_tissue: float) -> np.ndarray:
        """Tissue share of each cell >= min_tissue (all True without a mask)."""
        if self.mask is None:
            return np.ones(self.shape, dtype=bool)
        m = self.mask.mask.astype(np.float64)
        dx, dy = self.mask.downsample
        integral = np.pad(m.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
        rows, cols = self.shape
        xs = np.clip(np.rint(np.arange(cols + 1) * self.stride / dx), 0, m.shape[1]).astype(int)
        ys = np.clip(np.rint(np.arange(rows + 1) * self.stride / dy), 0, m.shape[0]).astype(int)
        s = integral
        count = (s[ys[1:, None], xs[None, 1:]] - s[ys[:-1, None], xs[None, 1:]]
                 - s[ys[1:, None], xs[None, :-1]] + s[ys[:-1, None], xs[None, :-1]])
        area = (self.stride / dx) * (self.stride / dy)
        return (count / area) >= min_tissue

    def add(self, tiles: Sequence, probs: np.ndarray) -> int:
        """Add tiles (with level-0 x, y) and their (N, C) probabilities; NaN rows are skipped.
        Returns the number of tiles added."""
        probs = np.asarray(probs, dtype=np.float64)
        if probs.ndim != 2 or probs.shape != (len(tiles), len(self.classes)):
            raise ValueError(f"expected probabilities of shape ({len(tiles)}, "
                             f"{len(self.classes)}), got {probs.shape}")
        keep = np.array([t.x is not None for t in tiles], dtype=bool)
        if keep.any():
            keep &= np.isfinite(probs).all(axis=1)
        if not keep.any():
            return 0
        xs = np.array([t.x for t, k in zip(tiles, keep, strict=True) if k], dtype=np.int64)
        ys = np.array([t.y for t, k in zip(tiles, keep, strict=True) if k], dtype=np.int64)
        p = probs[keep]
        rows, cols = self.shape
        r0, c0 = ys // self.stride, xs // self.stride
        inside = (r0 < rows) & (c0 < cols)
        r0, c0, p = r0[inside], c0[inside], p[inside]
        # each tile covers span x span cells; np.add.at sums tiles that share a cell
        for dr in range(self.span):
            for dc in range(self.span):
                r, c = r0 + dr, c0 + dc
                ok = (r < rows) & (c < cols)
                if not ok.all():
                    r, c, q = r[ok], c[ok], p[ok]
                else:
                    q = p
                flat = r * cols + c
                np.add.at(self.counts.reshape(-1), flat, 1)
                for k in range(len(self.classes)):
                    np.add.at(self.sums[k].reshape(-1), flat, q[:, k])
        n = int(len(r0))
        self.tiles_added += n
        return n

    def clear(self) -> None:
        self.sums[:] = 0
        self.counts[:] = 0
        self.tiles_added = 0

    # -- reading -----------------------------------------------------------------------------
    @property
    def valid(self) -> np.ndarray:
        """Cells with at least one tile, on tissue."""
        return (self.counts > 0) & self.tissue

    def probabilities(self, smooth: float = 0.0) -> np.ndarray:
        """(C, rows, cols) mean class probabilities, NaN outside valid cells.

        ``smooth`` is a Gaussian sigma in cells; smoothing is normalised over valid cells
        only, so empty or non-tissue cells neither bleed in nor get filled.
        """
        valid = self.valid
        mean = np.divide(self.sums, np.maximum(self.counts, 1)[None])
        if smooth and smooth > 0 and valid.any():
            from scipy.ndimage import gaussian_filter

            w = valid.astype(np.float64)
            weight = gaussian_filter(w, smooth, mode="constant")
            mean = np.stack([gaussian_filter(c * w, smooth, mode="constant") for c in mean])
            mean = mean / np.maximum(weight, 1e-12)[None]
        out = mean.astype(np.float32)
        out[:, ~valid] = np.nan
        return out

    @property
    def layers(self) -> tuple[str, ...]:
        """Every layer this heatmap can draw: classes, the roll-up when the taxonomy has a
        pair of groups, and the arg-max map."""
        return (*self.classes, *((ROLLUP,) if self.taxonomy.rollup_pair else ()), ARGMAX)

    def groups(self, smooth: float = 0.0) -> np.ndarray:
        """(groups, rows, cols) roll-up in the taxonomy's group order (benign, malignant for
        BreakHis), NaN outside valid cells; no rows when the taxonomy has no groups."""
        p = self.probabilities(smooth)
        g = self.taxonomy.rollup(self.classes, np.moveaxis(p, 0, -1))
        return g.transpose(2, 0, 1).astype(np.float32)

    def values(self, layer: str, smooth: float = 0.0) -> np.ndarray:
        """(rows, cols) probabilities of one class or group (``rollup`` = the high group of
        the roll-up pair: malignant)."""
        if layer in self.classes:
            return self.probabilities(smooth)[self.classes.index(layer)]
        pair = self.taxonomy.rollup_pair
        name = pair[1] if layer == ROLLUP and pair else layer
        if name in self.taxonomy.groups:
            return self.groups(smooth)[self.taxonomy.groups.index(name)]
        raise KeyError(f"no heatmap layer {layer!r} (classes: {', '.join(self.classes)})")

    def argmax(self, smooth: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
        """(class index map with -1 outside valid cells, winning probability map)."""
        p = self.probabilities(smooth)
        valid = self.valid
        idx = np.where(valid, np.nan_to_num(p, nan=-1.0).argmax(0), -1)
        top = np.where(valid, np.nan_to_num(p, nan=0.0).max(0), np.nan).astype(np.float32)
        return idx, top

    def cell_of(self, x: float, y: float) -> tuple[int, int]:
        """The (row, col) of the cell holding level-0 point (x, y)."""
        return int(y) // self.stride, int(x) // self.stride

    def at(self, x: float, y: float) -> dict[str, float] | None:
        """Class probabilities at a level-0 point (None where there is no valid cell)."""
        r, c = self.cell_of(x, y)
        if not (0 <= r < self.shape[0] and 0 <= c < self.shape[1]) or not self.valid[r, c]:
            return None
        mean = self.sums[:, r, c] / self.counts[r, c]
        return {k: float(v) for k, v in zip(self.classes, mean, strict=True)}
