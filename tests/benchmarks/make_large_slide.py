"""A large synthetic slide for benchmarks: a mosaic of the CMU sample's tissue.

    python tests/benchmarks/make_large_slide.py OUT.tiff [--size 40960] [--levels 5|auto]
                                                [--pattern-scale 1]

A JPEG-tiled (256 px) pyramidal TIFF with one top-level page per level, largest first,
at 0.499 um/px, written tile by tile so memory stays small (about 80 s and 2.4 GB for
100,000 x 100,000 px on 2 cores). Needs imagecodecs (`pip install -e '.[bench]'`).

``levels``: 5 halvings by default (what earlier figures were measured on); "auto" (None)
halves until the coarsest level is at most 2048 px, like a scanner's pyramid.
``pattern_scale`` enlarges the CMU pattern: at 100k px its 1 mm tissue pieces are
smaller than the tissue detector's minimum object (0.05% of the slide) and vanish;
scale 2 keeps them.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

TILE = 256
MPP = 0.499


def _level_tiles(pattern: np.ndarray, width: int, height: int):
    """Tiles (row-major) of an image that repeats ``pattern`` periodically."""
    ph, pw = pattern.shape[:2]
    # pad the pattern so any 256 px window can be sliced without wrapping logic
    big = np.tile(pattern, (2 + TILE // ph, 2 + TILE // pw, 1))
    for y in range(0, height, TILE):
        for x in range(0, width, TILE):
            oy, ox = y % ph, x % pw
            yield np.ascontiguousarray(big[oy:oy + TILE, ox:ox + TILE])


def auto_levels(size: int, coarsest: int = 2048) -> int:
    levels = 1
    while size // 2 ** (levels - 1) > coarsest:
        levels += 1
    return levels


def make_large_slide(path, size: int = 40960, levels: int | None = 5, quality: int = 85,
                     pattern_scale: int = 1) -> Path:
    import tifffile

    from pvdesk.paths import sample_slide
    from pvdesk.slides import open_source

    path = Path(path)
    with open_source(sample_slide()) as src:
        w0, h0 = src.dimensions
        base = src.read_region((0, 0), 0, (w0, h0))
    if pattern_scale > 1:
        w0, h0 = w0 * pattern_scale, h0 * pattern_scale
        base = base.resize((w0, h0), Image.Resampling.BILINEAR)
    if levels is None:
        levels = auto_levels(size)
    with tifffile.TiffWriter(path, bigtiff=True) as tif:
        for level in range(levels):
            ds = 2 ** level
            pattern = np.asarray(base.resize((max(1, w0 // ds), max(1, h0 // ds)),
                                             Image.Resampling.BOX))
            side = size // ds
            res = 1e4 / (MPP * ds)
            tif.write(_level_tiles(pattern, side, side), shape=(side, side, 3), dtype=np.uint8,
                      tile=(TILE, TILE), photometric="rgb", compression="jpeg", compressionargs={"level": quality},
                      subfiletype=1 if level else 0, resolution=(res, res),
                      resolutionunit="CENTIMETER")
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--size", type=int, default=40960)
    ap.add_argument("--levels", default="5", help="number of levels, or 'auto'")
    ap.add_argument("--pattern-scale", type=int, default=1)
    args = ap.parse_args()
    t = time.perf_counter()
    levels = None if args.levels == "auto" else int(args.levels)
    make_large_slide(args.out, args.size, levels=levels, pattern_scale=args.pattern_scale)
    print(f"{args.out}: {args.size} x {args.size} px in {time.perf_counter() - t:.1f} s")


if __name__ == "__main__":
    main()
