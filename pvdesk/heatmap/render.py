"""Heatmap layers as RGBA images: per-class colours (pvdesk.taxonomy), opacity, threshold.

``render(heatmap, layer)`` gives one pixel per cell; with ``size`` (the pixel size of a
picture of the whole slide, e.g. its thumbnail) the cells are scaled onto it and the alpha
is cut to the tissue mask at that resolution, so edges follow the tissue, not the cells.

Layers: a class name (colour of the class, alpha = opacity x p / vmax), "benign" or
"malignant" (likewise, group colours), ``rollup`` (P(malignant) coloured from the benign
colour to the malignant colour, constant alpha) and ``argmax`` (the winning class's colour).
``threshold`` hides cells whose shown probability (the class's, or the winner's for
``rollup`` and ``argmax``) is below it.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from pvdesk.heatmap.grid import ARGMAX, ROLLUP, HeatmapGrid
from pvdesk.taxonomy import colour_of, hex_to_rgb


def _rgba(rgb: np.ndarray, alpha: np.ndarray) -> Image.Image:
    a = np.clip(np.nan_to_num(alpha, nan=0.0), 0.0, 1.0)
    out = np.zeros((*a.shape, 4), dtype=np.uint8)
    out[..., :3] = rgb
    out[..., 3] = np.rint(a * 255).astype(np.uint8)
    return Image.fromarray(out, "RGBA")


def colour_layer(values: np.ndarray, colour: str, opacity: float = 0.6, threshold: float = 0.0,
                 vmax: float | None = 1.0) -> Image.Image:
    """One colour, alpha proportional to the value (NaN and below-threshold: transparent).
    ``vmax=None`` scales to the layer's own maximum."""
    v = np.asarray(values, dtype=np.float64)
    top = np.nanmax(v) if vmax is None and np.isfinite(v).any() else (vmax or 1.0)
    alpha = opacity * np.clip(v / max(top, 1e-12), 0.0, 1.0)
    alpha = np.where(np.isfinite(v) & (v >= threshold), alpha, 0.0)
    return _rgba(np.array(hex_to_rgb(colour), dtype=np.uint8), alpha)


def rollup_layer(p_malignant: np.ndarray, opacity: float = 0.6,
                 threshold: float = 0.0, colours: tuple[str, str] | None = None) -> Image.Image:
    """Benign colour (p=0) to malignant colour (p=1) (``colours``: another pair's low and
    high colours); cells below ``threshold`` confidence hidden."""
    p = np.asarray(p_malignant, dtype=np.float64)
    low, high = colours or (colour_of("benign"), colour_of("malignant"))
    b = np.array(hex_to_rgb(low), dtype=np.float64)
    m = np.array(hex_to_rgb(high), dtype=np.float64)
    q = np.nan_to_num(np.clip(p, 0, 1), nan=0.0)[..., None]
    rgb = np.rint(b * (1 - q) + m * q).astype(np.uint8)
    conf = np.maximum(p, 1 - p)
    alpha = np.where(np.isfinite(p) & (conf >= threshold), opacity, 0.0)
    return _rgba(rgb, alpha)


def argmax_layer(index: np.ndarray, top: np.ndarray, classes, opacity: float = 0.6,
                 threshold: float = 0.0, taxonomy=None) -> Image.Image:
    """The winning class's colour per cell (index -1: transparent)."""
    colour = taxonomy.colour_of if taxonomy is not None else colour_of
    palette = np.array([hex_to_rgb(colour(c)) for c in classes] + [(0, 0, 0)], dtype=np.uint8)
    idx = np.asarray(index)
    rgb = palette[np.where(idx < 0, len(classes), idx)]
    alpha = np.where((idx >= 0) & (np.nan_to_num(top, nan=0.0) >= threshold), opacity, 0.0)
    return _rgba(rgb, alpha)


def render(heatmap: HeatmapGrid, layer: str, opacity: float = 0.6, threshold: float = 0.0,
           smooth: float = 0.0, size: tuple[int, int] | None = None,
           vmax: float | None = 1.0, tissue: np.ndarray | None = None) -> Image.Image:
    """A layer as RGBA: one pixel per cell, or scaled onto a ``size`` picture of the slide."""
    if layer == ARGMAX:
        idx, top = heatmap.argmax(smooth)
        img = argmax_layer(idx, top, heatmap.classes, opacity, threshold, heatmap.taxonomy)
    elif layer == ROLLUP:
        tax = heatmap.taxonomy
        pair = tax.rollup_pair
        if pair is None:
            raise KeyError(f"no roll-up layer: the {tax.name} taxonomy has no pair of groups")
        img = rollup_layer(heatmap.values(ROLLUP, smooth), opacity, threshold,
                           (tax.colour_of(pair[0]), tax.colour_of(pair[1])))
    else:
        img = colour_layer(heatmap.values(layer, smooth), heatmap.taxonomy.colour_of(layer),
                           opacity, threshold, vmax)
    return img if size is None else fit_to(heatmap, img, size, smooth=smooth > 0, tissue=tissue)


def tissue_alpha(heatmap: HeatmapGrid, size: tuple[int, int]) -> np.ndarray | None:
    """The grid's tissue mask as a (h, w) uint8 alpha limit at ``size`` (None: no mask).
    Depends only on the grid and the size: a caller rendering often may keep it."""
    if heatmap.mask is None:
        return None
    tissue = Image.fromarray(heatmap.mask.mask.astype(np.uint8) * 255, "L")
    return np.asarray(tissue.resize((int(size[0]), int(size[1])), Image.Resampling.NEAREST))


def fit_to(heatmap: HeatmapGrid, cells: Image.Image, size: tuple[int, int],
           smooth: bool = False, tissue: np.ndarray | None = None) -> Image.Image:
    """Scale a cell image onto a ``size`` picture of the whole slide, alpha cut to tissue
    (``tissue``: a :func:`tissue_alpha` computed before, else it is computed here)."""
    w, h = int(size[0]), int(size[1])
    sx, sy = w / heatmap.size[0], h / heatmap.size[1]
    rows, cols = heatmap.shape
    full = (max(1, round(cols * heatmap.stride * sx)), max(1, round(rows * heatmap.stride * sy)))
    resample = Image.Resampling.BILINEAR if smooth else Image.Resampling.NEAREST
    img = cells.resize(full, resample).crop((0, 0, w, h))
    if tissue is None:
        tissue = tissue_alpha(heatmap, (w, h))
    if tissue is not None:
        alpha = np.minimum(np.asarray(img.getchannel("A")), tissue)
        img.putalpha(Image.fromarray(alpha, "L"))
    return img


def overlay(background: Image.Image, layer: Image.Image) -> Image.Image:
    """``layer`` (RGBA, resized to fit if needed) composited over ``background``, as RGB."""
    base = background.convert("RGBA")
    if layer.size != base.size:
        layer = layer.resize(base.size, Image.Resampling.NEAREST)
    return Image.alpha_composite(base, layer).convert("RGB")
