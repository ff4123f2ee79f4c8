"""Arguments and helpers shared by the headless verbs."""

from __future__ import annotations

import argparse

from pvdesk.tiling import DEFAULT_OUT_SIZE, DEFAULT_TILE_UM


def positive_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not v > 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text!r}")
    return v


def add_grid_arguments(p: argparse.ArgumentParser, tile_um_default: float | None = DEFAULT_TILE_UM,
                       with_size: bool = True):
    """--tile-um, --overlap, --min-tissue, --mpp (and --size unless a model sets it)."""
    p.add_argument("--tile-um", type=positive_float, default=tile_um_default,
                   help="tile side in micrometres (default "
                   + (f"{tile_um_default:g}: 224 px at 0.5 um/px)" if tile_um_default
                      else "the first model's field of view)"))
    if with_size:
        p.add_argument("--size", type=int, default=DEFAULT_OUT_SIZE,
                       help="model input size in px (default %(default)s)")
    p.add_argument("--overlap", type=float, default=0.0,
                   help="fraction shared by neighbouring tiles, e.g. 0.5 for a 50%% stride")
    p.add_argument("--min-tissue", type=float, default=0.25,
                   help="tissue fraction a tile must reach to be kept (default %(default)s)")
    p.add_argument("--mpp", type=positive_float, default=None,
                   help="microns per pixel, when the file does not say (or says wrong)")
