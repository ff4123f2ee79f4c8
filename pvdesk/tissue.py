"""Tissue detection on a low-resolution thumbnail.

HSV saturation (stained tissue is coloured, glass is grey-white), an Otsu threshold with
a floor (a blank slide has no tissue, not half of it), morphological opening and closing,
then removal of small objects and small holes. ``TissueMask.fraction`` gives the tissue
fraction of any level-0 rectangle in O(1) through an integral image.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image


@dataclass(frozen=True)
class TissueParams:
    thumb_size: int = 1024  # longest side of the thumbnail the mask is computed on
    min_saturation: float = 0.07  # floor under the Otsu threshold (0..1)
    max_saturation: float | None = None  # fixed threshold instead of Otsu when set
    max_value: float = 0.97  # brighter than this is background whatever the saturation
    min_separation: float = 0.12  # class means closer than this: one population, no split
    min_value: float = 0.05  # darker than this (pen, black borders) is not tissue
    opening: int = 1  # radius in mask pixels
    closing: int = 2
    min_object_fraction: float = 0.0005  # objects smaller than this share of the mask go
    min_hole_fraction: float = 0.0005  # holes smaller than this share are filled


def otsu_threshold(values: np.ndarray, bins: int = 256) -> float:
    """Otsu's threshold for values in [0, 1]."""
    hist, edges = np.histogram(values, bins=bins, range=(0.0, 1.0))
    hist = hist.astype(np.float64)
    total = hist.sum()
    if total == 0:
        return 1.0
    centers = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(hist)
    w1 = total - w0
    m0 = np.cumsum(hist * centers)
    mt = m0[-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        between = (mt * w0 / total - m0) ** 2 / (w0 * w1 / total)
    between = np.nan_to_num(between)
    return float(centers[int(np.argmax(between))])


def _unimodal(values: np.ndarray, threshold: float, min_separation: float) -> bool:
    low, high = values[values <= threshold], values[values > threshold]
    if low.size == 0 or high.size == 0:
        return True
    return float(high.mean() - low.mean()) < min_separation


def _disk(radius: int) -> np.ndarray:
    r = np.arange(-radius, radius + 1)
    return (r[:, None] ** 2 + r[None, :] ** 2) <= radius * radius


@dataclass
class TissueMask:
    mask: np.ndarray  # bool, thumbnail resolution (rows, cols)
    downsample: tuple[float, float]  # level-0 px per mask px along x and y
    threshold: float

    def __post_init__(self) -> None:
        m = self.mask.astype(np.int64)
        self._integral = np.pad(m.cumsum(0).cumsum(1), ((1, 0), (1, 0)))

    @property
    def fraction_total(self) -> float:
        return float(self.mask.mean()) if self.mask.size else 0.0

    def fraction(self, x: float, y: float, w: float, h: float) -> float:
        """Tissue share of a level-0 rectangle (parts outside the slide count as background)."""
        dx, dy = self.downsample
        rows, cols = self.mask.shape
        area = (w / dx) * (h / dy)
        if area <= 0:
            return 0.0
        c0, c1 = (int(np.clip(round(v / dx), 0, cols)) for v in (x, x + w))
        r0, r1 = (int(np.clip(round(v / dy), 0, rows)) for v in (y, y + h))
        s = self._integral
        count = s[r1, c1] - s[r0, c1] - s[r1, c0] + s[r0, c0]
        return float(min(1.0, count / area))

    def grid_fractions(self, xs: np.ndarray, ys: np.ndarray, w: float, h: float) -> np.ndarray:
        """Tissue share of every ``w`` x ``h`` rectangle at (xs[i], ys[j]), as (len(ys), len(xs)).

        The same numbers as ``fraction`` for each rectangle, computed at once: rectangle
        edges snap to mask pixels per column and per row, then four gathers from the
        integral image.
        """
        dx, dy = self.downsample
        rows, cols = self.mask.shape
        xs, ys = np.asarray(xs), np.asarray(ys)
        area = (w / dx) * (h / dy)
        if area <= 0:
            return np.zeros((ys.size, xs.size))

        def edges(v, scale, limit):
            return np.clip(np.rint(v / scale), 0, limit).astype(np.intp)

        c0, c1 = edges(xs, dx, cols), edges(xs + w, dx, cols)
        r0, r1 = edges(ys, dy, rows), edges(ys + h, dy, rows)
        s = self._integral
        count = (s[np.ix_(r1, c1)] - s[np.ix_(r0, c1)]) - (s[np.ix_(r1, c0)] - s[np.ix_(r0, c0)])
        return np.minimum(count / area, 1.0)


def mask_from_rgb(rgb: np.ndarray, params: TissueParams = TissueParams()):
    """Boolean tissue mask and the saturation threshold used, for an RGB uint8 array."""
    from scipy import ndimage

    hsv = np.asarray(Image.fromarray(rgb).convert("HSV"), dtype=np.float32) / 255.0
    sat, val = hsv[..., 1], hsv[..., 2]
    usable = (val <= params.max_value) & (val >= params.min_value)
    if params.max_saturation is not None:
        thr = params.max_saturation
    else:
        values = sat[usable]
        thr = otsu_threshold(values) if values.size else 1.0
        if values.size and _unimodal(values, thr, params.min_separation):
            # All tissue (or all glass): Otsu would split one population in two.
            thr = params.min_saturation
        thr = max(thr, params.min_saturation)
    mask = (sat > thr) & usable
    if params.opening:
        mask = ndimage.binary_opening(mask, _disk(params.opening))
    if params.closing:
        mask = ndimage.binary_closing(mask, _disk(params.closing), border_value=0)
    n = mask.size
    mask = _remove_small(mask, params.min_object_fraction * n)
    holes = ~_remove_small(~mask, params.min_hole_fraction * n, keep_border=True)
    return mask | holes, thr


def _remove_small(mask: np.ndarray, min_size: float, keep_border: bool = False) -> np.ndarray:
    from scipy import ndimage

    labels, count = ndimage.label(mask)
    if count == 0:
        return mask
    sizes = np.bincount(labels.ravel())
    keep = sizes >= min_size
    keep[0] = False
    if keep_border:  # background touching the border is outside, never a hole
        border = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
        keep[border[border > 0]] = True
    return keep[labels]


def detect_tissue(source, params: TissueParams = TissueParams(), progress=None) -> TissueMask:
    """Tissue mask of a pyramid source, computed on its thumbnail."""
    thumb = source.thumbnail(params.thumb_size, progress=progress)
    rgb = np.asarray(thumb.convert("RGB"))
    mask, thr = mask_from_rgb(rgb, params)
    w0, h0 = source.dimensions
    return TissueMask(mask, (w0 / rgb.shape[1], h0 / rgb.shape[0]), thr)
