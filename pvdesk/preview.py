"""The tile-grid preview: the thumbnail, the tissue mask tinted and the kept tiles outlined.

Also what the tissue detector did not count as tissue and why: fragments dropped as too
small (magenta) and parts of the slide that could not be read (grey-hatched: unknown), with
the tiles that overlap them outlined in orange.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from pvdesk.tiling import TileGrid

MASK_TINT = (0, 170, 90)
GRID_COLOUR = (20, 60, 220)
DROPPED_TINT = (220, 0, 200)
UNKNOWN_TINT = (90, 90, 90)
UNKNOWN_TILE_COLOUR = (240, 130, 0)


def _tint(img: Image.Image, where: np.ndarray, colour, alpha: float) -> Image.Image:
    tw, th = img.size
    mask = Image.fromarray(where.astype(np.uint8) * 255).resize((tw, th),
                                                               Image.Resampling.NEAREST)
    blended = Image.blend(img, Image.new("RGB", (tw, th), colour), alpha)
    return Image.composite(blended, img, mask)


def render_preview(thumbnail: Image.Image, grid: TileGrid, level0_size: tuple[int, int],
                   mask_alpha: float = 0.3) -> Image.Image:
    """Draw the tissue mask (tinted) and each kept tile's outline over the thumbnail."""
    img = thumbnail.convert("RGB")
    tw, th = img.size
    m = grid.mask
    if m is not None:
        img = _tint(img, m.mask, MASK_TINT, mask_alpha)
        if m.dropped is not None:
            img = _tint(img, m.dropped, DROPPED_TINT, 0.6)
        if m.unknown is not None:
            rows, cols = np.indices(m.unknown.shape)
            hatch = ((rows + cols) % 4 < 2) & m.unknown
            img = _tint(img, m.unknown, UNKNOWN_TINT, 0.35)
            img = _tint(img, hatch, UNKNOWN_TINT, 0.7)
    draw = ImageDraw.Draw(img)
    sx, sy = tw / level0_size[0], th / level0_size[1]
    for t in grid.tiles:
        draw.rectangle([t.x * sx, t.y * sy, (t.x + t.w) * sx - 1, (t.y + t.h) * sy - 1],
                       outline=UNKNOWN_TILE_COLOUR if t.unknown else GRID_COLOUR, width=1)
    return img
