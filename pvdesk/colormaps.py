"""Sequential colormaps for probability heatmaps, as an alternative to the class colour.

Qt-free. The look-up tables come from matplotlib (imported on first use) and are cached.
``colormap_layer`` returns RGBA with the same opacity and threshold rules as
``pvdesk.heatmap.render.colour_layer`` except that colour, not alpha, carries the value.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from PIL import Image

CLASS_COLOUR = "class colour"
COLORMAPS = (CLASS_COLOUR, "viridis", "inferno", "turbo")  # turbo's dark red end hides in eosin


@lru_cache(maxsize=8)
def lut(name: str) -> np.ndarray:
    """(256, 3) uint8 RGB table of a matplotlib colormap."""
    from matplotlib import colormaps

    table = colormaps[name](np.linspace(0.0, 1.0, 256))[:, :3]
    return np.rint(table * 255).astype(np.uint8)


def colormap_layer(values: np.ndarray, name: str, opacity: float = 0.6,
                   threshold: float = 0.0) -> Image.Image:
    """Values in [0, 1] coloured by colormap ``name``; NaN and values below ``threshold``
    are transparent. Alpha grows with the value, from a quarter of ``opacity`` at 0 to
    ``opacity`` at 1: the low end of most colormaps is as dark as haematoxylin, so fading
    it keeps the tissue readable where the class is unlikely."""
    v = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(v)
    idx = np.rint(np.clip(np.nan_to_num(v, nan=0.0), 0.0, 1.0) * 255).astype(np.intp)
    out = np.zeros((*v.shape, 4), dtype=np.uint8)
    out[..., :3] = lut(name)[idx]
    alpha = opacity * (0.25 + 0.75 * np.clip(np.nan_to_num(v, nan=0.0), 0.0, 1.0))
    out[..., 3] = np.where(finite & (v >= threshold), np.rint(alpha * 255), 0).astype(np.uint8)
    return Image.fromarray(out, "RGBA")
