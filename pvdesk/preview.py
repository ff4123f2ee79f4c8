"""The tile-grid preview: the thumbnail, the tissue mask tinted and the kept tiles outlined."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from pvdesk.tiling import TileGrid

MASK_TINT = (0, 170, 90)
GRID_COLOUR = (20, 60, 220)


def render_preview(thumbnail: Image.Image, grid: TileGrid, level0_size: tuple[int, int],
                   mask_alpha: float = 0.3) -> Image.Image:
    """Draw the tissue mask (tinted) and each kept tile's outline over the thumbnail."""
    img = thumbnail.convert("RGB")
    tw, th = img.size
    if grid.mask is not None:
        mask = Image.fromarray(grid.mask.mask.astype(np.uint8) * 255).resize(
            (tw, th), Image.Resampling.NEAREST)
        tint = Image.new("RGB", (tw, th), MASK_TINT)
        blended = Image.blend(img, tint, mask_alpha)
        img = Image.composite(blended, img, mask)
    draw = ImageDraw.Draw(img)
    sx, sy = tw / level0_size[0], th / level0_size[1]
    for t in grid.tiles:
        draw.rectangle([t.x * sx, t.y * sy, (t.x + t.w) * sx - 1, (t.y + t.h) * sy - 1],
                       outline=GRID_COLOUR, width=1)
    return img
