"""Fixtures made by the tests: pyramidal TIFFs with tissue painted in known places."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

BACKGROUND = (242, 240, 244)
TISSUE = (190, 110, 170)


def paint(width: int, height: int, rects, seed: int = 0) -> np.ndarray:
    """A white-ish slide with H&E-like pink/purple rectangles (x0, y0, x1, y1) and noise."""
    rng = np.random.default_rng(seed)
    img = np.empty((height, width, 3), np.uint8)
    img[:] = BACKGROUND
    for x0, y0, x1, y1 in rects:
        noise = rng.integers(-12, 13, size=(y1 - y0, x1 - x0, 3))
        img[y0:y1, x0:x1] = np.clip(np.array(TISSUE) + noise, 0, 255)
    return img


def write_pyramid(path: Path, level0: np.ndarray, levels: int = 3, mpp: float | None = 0.5,
                  compression: str | None = None) -> Path:
    """One top-level page per level, largest first, tiled 256, photometric rgb."""
    import tifffile

    extra = {}
    if mpp:
        extra = {"resolution": (1e4 / mpp, 1e4 / mpp), "resolutionunit": "CENTIMETER"}
    pages = [level0]
    for _ in range(1, levels):
        prev = Image.fromarray(pages[-1])
        pages.append(np.asarray(prev.resize((max(1, prev.width // 2), max(1, prev.height // 2)),
                                            Image.Resampling.BOX)))
    with tifffile.TiffWriter(path) as tif:
        for i, page in enumerate(pages):
            res = extra if not extra else {
                "resolution": (extra["resolution"][0] / 2**i, extra["resolution"][1] / 2**i),
                "resolutionunit": "CENTIMETER"}
            tif.write(page, tile=(256, 256), photometric="rgb", compression=compression,
                      subfiletype=1 if i else 0, **res)
    return path


def breakhis_tree(root: Path, per_class: int = 2, size=(70, 46)) -> Path:
    """A BreakHis-style `<class>/<image>` tree with real BreakHis-form file names."""
    from pvdesk.taxonomy import SUBTYPES

    rng = np.random.default_rng(1)
    for k, s in enumerate(SUBTYPES):
        d = root / s.name
        d.mkdir(parents=True, exist_ok=True)
        g = "B" if s.group == "benign" else "M"
        for i in range(per_class):
            arr = rng.integers(0, 255, size=(size[1], size[0], 3), dtype=np.uint8)
            name = f"SOB_{g}_{s.code}-14-{1000 + k * 10 + i}-{[40, 100][i % 2]}-{i + 1:03d}.png"
            Image.fromarray(arr).save(d / name)
    return root


def sparse_tiff(path: Path, width: int, height: int, tile: int = 256, every: int = 0) -> Path:
    """A single-level tiled TIFF whose tiles are empty except the first (and one in
    ``every``): huge in pixels, tiny on disk."""
    import tifffile

    yy, xx = np.mgrid[0:tile, 0:tile]
    block = np.repeat((((xx // 16 + yy // 16) % 2) * 90 + 90).astype(np.uint8)[..., None], 3,
                      axis=2)  # a checkerboard: tissue-like contrast, compresses to little
    count = -(-width // tile) * -(-height // tile)

    def tiles():
        for i in range(count):
            yield block if i == 0 or (every and i % every == 0) else None

    with tifffile.TiffWriter(path, bigtiff=True) as tif:
        tif.write(tiles(), shape=(height, width, 3), dtype=np.uint8, tile=(tile, tile),
                  photometric="rgb", compression="zlib", resolution=(2e4, 2e4),
                  resolutionunit="CENTIMETER")
    return path
