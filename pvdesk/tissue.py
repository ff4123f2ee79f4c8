"""Tissue detection on a low-resolution thumbnail.

HSV saturation (stained tissue is coloured, glass is grey-white), an Otsu threshold with
a floor (a blank slide has no tissue, not half of it), morphological opening and closing,
then removal of small objects and small holes. ``TissueMask.fraction`` gives the tissue
fraction of any level-0 rectangle in O(1) through an integral image.

The smallest object kept and the largest hole filled are physical areas (um²) when the
slide's microns per pixel are known, so a core biopsy fragment survives on a 100k px slide
as on a small one; only without an mpp are they a share of the mask. What the rule dropped
is counted (``TissueMask.dropped_*``) for ``info`` and the preview.

Pixels of the slide that could not be read (damaged tiles of the file) are *unknown*, never
background: ``TissueMask.unknown`` marks them, and the tile grid keeps every tile that could
reach the tissue threshold with them (see pvdesk.tiling).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image


@dataclass(frozen=True)
class TissueParams:
    thumb_size: int = 1024  # longest side of the thumbnail the mask is computed on, at least
    # with a known mpp the mask is made finer, up to max_thumb_size px, until one of its
    # pixels is at most mask_um wide: a 50 mm slide gets a 2048 px mask (25 um pixels)
    # instead of 1024 px (49 um), so fragments a few cells wide survive the opening (peak
    # memory of tissue detection on a 100k px slide: 234 MiB, was 194)
    mask_um: float = 16.0
    max_thumb_size: int = 2048
    min_saturation: float = 0.07  # floor under the Otsu threshold (0..1)
    max_saturation: float | None = None  # fixed threshold instead of Otsu when set
    max_value: float = 0.97  # brighter than this is background whatever the saturation
    min_separation: float = 0.12  # class means closer than this: one population, no split
    min_value: float = 0.05  # darker than this (pen, black borders) is not tissue
    opening: int = 1  # radius in mask pixels
    closing: int = 2
    # objects smaller than this go, holes smaller than this are filled: in um² when the
    # slide's mpp is known (800 um², about 28 x 28 um: a few cells; what the share below
    # meant on the 1.6 mm² sample slide), else a share of the mask
    min_object_um2: float = 800.0
    min_hole_um2: float = 800.0
    min_object_fraction: float = 0.0005
    min_hole_fraction: float = 0.0005


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


def _integral(mask: np.ndarray) -> np.ndarray:
    """Summed-area table with a zero first row and column (int32: masks stay under 2^31
    pixels), built in place."""
    rows, cols = mask.shape
    out = np.zeros((rows + 1, cols + 1), np.int32 if mask.size < 2**31 else np.int64)
    np.cumsum(mask, axis=0, dtype=out.dtype, out=out[1:, 1:])
    np.cumsum(out[1:, 1:], axis=1, out=out[1:, 1:])
    return out


@dataclass
class TissueMask:
    mask: np.ndarray  # bool, thumbnail resolution (rows, cols)
    downsample: tuple[float, float]  # level-0 px per mask px along x and y
    threshold: float
    unknown: np.ndarray | None = None  # bool, same shape: pixels that could not be read
    mpp: float | None = None  # microns per level-0 px, when known
    min_object_px: float = 0.0  # the small-object rule in mask pixels
    min_object_rule: str = ""  # the same rule in words ("under 2500 um²")
    dropped_objects: int = 0  # tissue fragments the rule removed
    dropped_px: int = 0  # their mask pixels
    dropped: np.ndarray | None = None  # bool, same shape: where they were (None if none)

    def __post_init__(self) -> None:
        self._integral = _integral(self.mask)
        if self.unknown is not None and not self.unknown.any():
            self.unknown = None
        self._unknown_integral = None if self.unknown is None else _integral(self.unknown)

    @property
    def fraction_total(self) -> float:
        return float(self.mask.mean()) if self.mask.size else 0.0

    @property
    def unknown_fraction_total(self) -> float:
        """Share of the slide that could not be read (0 when all of it could)."""
        return float(self.unknown.mean()) if self.unknown is not None else 0.0

    def area_mm2(self, pixels: float) -> float | None:
        """The level-0 area of ``pixels`` mask pixels in mm² (None without an mpp)."""
        if not self.mpp:
            return None
        dx, dy = self.downsample
        return float(pixels) * dx * dy * self.mpp * self.mpp / 1e6

    @property
    def unknown_mm2(self) -> float | None:
        return self.area_mm2(self.unknown.sum()) if self.unknown is not None else (
            0.0 if self.mpp else None)

    def describe_unknown(self) -> str | None:
        """One line on the unreadable area, or None when everything could be read."""
        if self.unknown is None:
            return None
        share = self.unknown_fraction_total
        mm2 = self.unknown_mm2
        where = f"{mm2:.3g} mm² ({share:.1%} of the slide)" if mm2 is not None else (
            f"{share:.1%} of the slide")
        return (f"{where} could not be read (damaged image data): unknown, not background; "
                "tiles there are tried and counted")

    def describe_dropped(self) -> str | None:
        """One line on the fragments the small-object rule removed, or None."""
        if not self.dropped_objects:
            return None
        mm2 = self.area_mm2(self.dropped_px)
        size = f"{mm2:.3g} mm²" if mm2 is not None else f"{self.dropped_px} mask px"
        return (f"{self.dropped_objects} tissue fragment(s) dropped as too small "
                f"({self.min_object_rule}; {size} in all)")

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

    def grid_fractions(self, xs: np.ndarray, ys: np.ndarray, w: float, h: float,
                       _integral_image: np.ndarray | None = None) -> np.ndarray:
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
        s = self._integral if _integral_image is None else _integral_image
        count = (s[np.ix_(r1, c1)] - s[np.ix_(r0, c1)]) - (s[np.ix_(r1, c0)] - s[np.ix_(r0, c0)])
        return np.minimum(count / area, 1.0)

    def unknown_grid_fractions(self, xs: np.ndarray, ys: np.ndarray, w: float,
                               h: float) -> np.ndarray | None:
        """Unreadable share of every rectangle, like :meth:`grid_fractions` (None when the
        whole slide could be read)."""
        if self._unknown_integral is None:
            return None
        return self.grid_fractions(xs, ys, w, h, self._unknown_integral)


def min_sizes(params: TissueParams, shape: tuple[int, int],
              px_um2: float | None) -> tuple[float, float, str]:
    """(smallest object, largest hole filled) in mask pixels, and the object rule in words.
    ``px_um2`` is one mask pixel's area in um² (None when the mpp is unknown)."""
    if px_um2:
        return (params.min_object_um2 / px_um2, params.min_hole_um2 / px_um2,
                f"under {params.min_object_um2:g} um²")
    n = shape[0] * shape[1]
    return (params.min_object_fraction * n, params.min_hole_fraction * n,
            f"under {params.min_object_fraction:.2%} of the slide (mpp unknown)")


def mask_from_rgb(rgb: np.ndarray, params: TissueParams = TissueParams(),
                  px_um2: float | None = None, stats: dict | None = None):
    """Boolean tissue mask and the saturation threshold used, for an RGB uint8 array.

    ``px_um2``: the area of one pixel of ``rgb`` in um², for the physical size rules.
    ``stats`` (optional dict) receives min_object_px, min_object_rule, dropped_objects and
    dropped_px.
    """
    from scipy import ndimage

    hsv = np.asarray(Image.fromarray(rgb).convert("HSV"))  # uint8: 3 bytes a pixel
    sat, val = hsv[..., 1], hsv[..., 2]
    usable = (val <= params.max_value * 255) & (val >= params.min_value * 255)
    if params.max_saturation is not None:
        thr = params.max_saturation
    else:
        values = sat[usable].astype(np.float32) / 255.0
        thr = otsu_threshold(values) if values.size else 1.0
        if values.size and _unimodal(values, thr, params.min_separation):
            # All tissue (or all glass): Otsu would split one population in two.
            thr = params.min_saturation
        thr = max(thr, params.min_saturation)
    mask = (sat > thr * 255) & usable
    if params.opening:
        mask = ndimage.binary_opening(mask, _disk(params.opening))
    if params.closing:
        mask = ndimage.binary_closing(mask, _disk(params.closing), border_value=0)
    min_obj, min_hole, rule = min_sizes(params, mask.shape, px_um2)
    before = mask
    mask = _remove_small(mask, min_obj)
    if stats is not None:
        gone = before & ~mask
        n_gone = int(ndimage.label(gone)[1]) if gone.any() else 0
        stats.update(min_object_px=min_obj, min_object_rule=rule, dropped_px=int(gone.sum()),
                     dropped_objects=n_gone, dropped=gone if n_gone else None)
    holes = ~_remove_small(~mask, min_hole, keep_border=True)
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


def mask_size(source, params: TissueParams = TissueParams()) -> int:
    """The longest side of the mask: ``thumb_size``, or finer with a known mpp (up to
    ``max_thumb_size``) so that a mask pixel is at most ``mask_um`` wide."""
    mpp = getattr(source, "mpp", None)
    if not mpp or params.mask_um <= 0:
        return params.thumb_size
    longest_um = max(source.dimensions) * mpp
    need = math.ceil(longest_um / params.mask_um)
    return int(min(max(params.thumb_size, need), max(params.thumb_size, params.max_thumb_size)))


def detect_tissue(source, params: TissueParams = TissueParams(), progress=None) -> TissueMask:
    """Tissue mask of a pyramid source, computed on its thumbnail; the parts of the slide
    that could not be read are marked unknown."""
    size = mask_size(source, params)
    both = getattr(source, "thumbnail_and_unknown", None)
    if both is not None:
        thumb, unknown = both(size, progress=progress)
    else:
        thumb, unknown = source.thumbnail(size, progress=progress), None
    rgb = np.asarray(thumb.convert("RGB"))
    w0, h0 = source.dimensions
    ds = (w0 / rgb.shape[1], h0 / rgb.shape[0])
    mpp = getattr(source, "mpp", None)
    stats: dict = {}
    mask, thr = mask_from_rgb(rgb, params, ds[0] * ds[1] * mpp * mpp if mpp else None, stats)
    return TissueMask(mask, ds, thr, unknown, mpp, stats["min_object_px"],
                      stats["min_object_rule"], stats["dropped_objects"], stats["dropped_px"],
                      stats["dropped"])
