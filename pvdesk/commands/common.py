"""Arguments and helpers shared by the headless verbs.

Every number a verb takes is checked by argparse before anything is opened: finite, in a
range that makes sense, an integer where one is meant. A bad value is one line and exit
status 2 (argparse's own usage error), never a traceback, a hang or a huge allocation.
"""

from __future__ import annotations

import argparse
import math

from pvdesk.tile_size import DEFAULT_TILE_UM, TILE_UM_RANGE
from pvdesk.tiling import DEFAULT_OUT_SIZE

# Sane ranges. A tile side is also checked in pixels once the slide's mpp is known
# (pvdesk.tiling.MIN_TILE_PX).
MPP_RANGE = (0.01, 100.0)  # um per pixel: 0.01 (beyond any microscope) .. 100 (a macro photo)
SIZE_RANGE = (16, 4096)  # model input, px (as a manifest's input_size)
PREVIEW_RANGE = (16, 8192)  # preview / heatmap long side, px (8192: a 200 MB image)
MAX_INT64 = (1 << 63) - 1


def _number(text: str) -> float:
    try:
        v = float(text)
    except (ValueError, OverflowError):
        raise argparse.ArgumentTypeError(f"not a number: {text[:40]!r}") from None
    if not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text[:40]!r}")
    return v


def real(lo: float | None = None, hi: float | None = None, *, lo_open: bool = False,
         hi_open: bool = False, what: str = ""):
    """An argparse type: a finite float in [lo, hi] (open ends where asked)."""
    def parse(text: str) -> float:
        v = _number(text)
        low_bad = lo is not None and (v <= lo if lo_open else v < lo)
        high_bad = hi is not None and (v >= hi if hi_open else v > hi)
        if low_bad or high_bad:
            left = "(" if lo_open else "["
            right = ")" if hi_open else "]"
            span = f"{left}{'-inf' if lo is None else f'{lo:g}'}, " \
                   f"{'inf' if hi is None else f'{hi:g}'}{right}"
            raise argparse.ArgumentTypeError(f"must be in {span}{' ' + what if what else ''}, "
                                             f"got {text[:40]!r}")
        return v
    parse.__name__ = "number"
    return parse


def integer(lo: int = 1, hi: int = MAX_INT64, what: str = ""):
    """An argparse type: an integer in [lo, hi] (no 5000-digit numbers, no floats)."""
    def parse(text: str) -> int:
        t = text.strip()
        if len(t) > 20:
            raise argparse.ArgumentTypeError(f"not a sensible integer: {text[:40]!r}...")
        try:
            v = int(t)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not an integer: {text[:40]!r}") from None
        if not lo <= v <= hi:
            raise argparse.ArgumentTypeError(f"must be an integer from {lo} to {hi}"
                                             f"{' ' + what if what else ''}, got {text!r}")
        return v
    parse.__name__ = "integer"
    return parse


def positive_float(text: str) -> float:
    """A finite number > 0."""
    return real(0.0, None, lo_open=True)(text)


mpp_value = real(*MPP_RANGE, what="micrometres per pixel")
tile_um_value = real(*TILE_UM_RANGE, what="micrometres")
size_value = integer(*SIZE_RANGE, what="px")
preview_size_value = integer(*PREVIEW_RANGE, what="px")
overlap_value = real(0.0, 1.0, hi_open=True)
fraction_value = real(0.0, 1.0)
run_id_value = integer(1, MAX_INT64)


def add_grid_arguments(p: argparse.ArgumentParser, tile_um_default: float | None = DEFAULT_TILE_UM,
                       with_size: bool = True):
    """--tile-um, --overlap, --min-tissue, --mpp (and --size unless a model sets it)."""
    p.add_argument("--tile-um", type=tile_um_value, default=tile_um_default,
                   help="tile side in micrometres (default "
                   + (f"{tile_um_default:g}: 224 px at 0.5 um/px)" if tile_um_default
                      else "the first model's field of view)"))
    if with_size:
        p.add_argument("--size", type=size_value, default=DEFAULT_OUT_SIZE,
                       help=f"model input size in px, {SIZE_RANGE[0]} to {SIZE_RANGE[1]} "
                       "(default %(default)s)")
    p.add_argument("--overlap", type=overlap_value, default=0.0,
                   help="fraction shared by neighbouring tiles, in [0, 1), e.g. 0.5 for a "
                   "50%% stride")
    p.add_argument("--min-tissue", type=fraction_value, default=0.25,
                   help="tissue fraction a tile must reach to be kept, in [0, 1] (default "
                   "%(default)s)")
    p.add_argument("--mpp", type=mpp_value, default=None,
                   help="microns per pixel, when the file does not say (or says wrong); "
                   f"{MPP_RANGE[0]:g} to {MPP_RANGE[1]:g}")
