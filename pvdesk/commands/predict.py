"""`pvdesk predict PATH... --model NAME --out DIR`: classify tiles, write CSV, heatmaps, summary."""

from __future__ import annotations

import os
from pathlib import Path

from pvdesk.commands.common import PREVIEW_RANGE, add_grid_arguments, integer
from pvdesk.errors import PvdeskError


def fraction_0_64(text: str) -> float:
    import argparse
    import math

    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text[:40]!r}") from None
    if not (math.isfinite(v) and 0 <= v <= 64):
        raise argparse.ArgumentTypeError(f"must be between 0 and 64, got {text[:40]}")
    return v


def register(sub) -> None:
    p = sub.add_parser(
        "predict", help="classify every tissue tile of slides or patch folders",
        description="For each slide or patch folder, write DIR/<name>/clip_predictions.csv "
        "(one row per tile per model), heatmap PNGs per class plus the benign/malignant "
        "roll-up and the class map (slides only), and summary.txt / summary.json.")
    p.add_argument("paths", nargs="*", metavar="PATH",
                   help="slide file, image, patch folder, folder of slides (searched "
                   "recursively) or glob; one output folder each, and cohort.csv")
    p.add_argument("--list", default=None, metavar="FILE",
                   help="a text file naming one slide or folder per line (relative to its "
                   "folder; # comments)")
    p.add_argument("--model", action="append", required=True, metavar="NAME_OR_FOLDER",
                   help="model bundle name or folder; repeat for several models in one pass")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (created)")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:N or mps (default: best)")
    p.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16", "fp16"),
                   help="auto: bf16/fp16 where the device runs it well (default %(default)s)")
    p.add_argument("--batch", type=integer(1, 4096), default=32,
                   help="tiles per batch, 1 to 4096 (default %(default)s)")
    p.add_argument("--workers", type=integer(1, 64), default=2,
                   help="tile reader threads, 1 to 64 (default %(default)s)")
    add_grid_arguments(p, tile_um_default=None, with_size=False)
    p.add_argument("--store", default=None, metavar="FILE.pvdb",
                   help="also record the runs and predictions in this review store")
    p.add_argument("--embeddings", action="store_true",
                   help="with --store: also store each tile's image embedding (float16; CLIP "
                   "models) for `pvdesk similar` and `pvdesk query`")
    p.add_argument("--ignore-regions", action="store_true",
                   help="classify the whole slide even when the store holds regions imported "
                   "from QuPath (review import-geojson --as-region)")
    p.add_argument("--heatmap-size", type=integer(64, PREVIEW_RANGE[1]), default=1200,
                   help=f"longest side of the heatmap PNGs in px, 64 to {PREVIEW_RANGE[1]} "
                   "(default %(default)s)")
    p.add_argument("--resume", action="store_true",
                   help="skip slides whose outputs in --out are complete for the same slide, "
                   "bundles (manifest and weights) and grid")
    p.add_argument("--backend", choices=("local", "ray"), default="local",
                   help="local: this process; ray: one task per slide on a Ray cluster "
                   "(pip install 'pvdesk[cluster]') (default %(default)s)")
    p.add_argument("--address", default=None, metavar="ADDR",
                   help="with --backend ray: the cluster to join (auto, ray://HEAD:10001); "
                   "default: start Ray on this machine")
    p.add_argument("--cpus-per-task", type=integer(1, 256), default=1,
                   help="with --backend ray: CPUs per slide task (default %(default)s)")
    p.add_argument("--gpus-per-task", type=fraction_0_64, default=0.0,
                   help="with --backend ray: GPUs per slide task, e.g. 1 or 0.5 (default 0: "
                   "CPU)")
    p.add_argument("--tiles-per-task", type=integer(1, 10_000_000), default=4096,
                   help="with --backend ray: a slide with more tiles is split into tasks of "
                   "this many tiles (default %(default)s)")
    p.add_argument("--json", action="store_true",
                   help="print the summaries as JSON ({\"results\": [summary.json, ...]})")
    p.set_defaults(func=run)


def _check(args) -> None:
    """Cheap checks of the arguments and output paths (nothing is opened or created)."""
    if not args.paths and not args.list:
        raise PvdeskError("name at least one slide, folder or glob, or --list FILE")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise PvdeskError(f"{out}: exists and is not a folder")
    if not out.exists() and not _existing_parent(out).is_dir():
        raise PvdeskError(f"{out}: cannot be created ({_existing_parent(out)} is not a folder)")


def _existing_parent(path: Path) -> Path:
    p = path.absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def _check_store(path: str) -> None:
    """An existing store must be a pvdesk store (checked read-only, nothing written); a new
    one needs its folder. The store itself is created only once there is work to record."""
    from pvdesk.review.store import ReviewStore

    p = Path(path)
    if os.path.lexists(p):
        with ReviewStore(p, readonly=True):
            pass
    elif not p.parent.is_dir():
        raise PvdeskError(f"{p}: the folder {p.parent} does not exist")


def _check_inputs(args, bundles, paths) -> None:
    """Open every input and check its tile grid's geometry (tile size in pixels, number of
    positions) before any model is loaded: a bad slide costs a second, not a model load."""
    from pvdesk.predict.compute import GridParams, grid_inputs
    from pvdesk.slides import PyramidSource, open_source
    from pvdesk.tiling import grid_geometry

    tile_um, out_size = grid_inputs(bundles, GridParams(tile_um=args.tile_um))
    for path in paths:
        with open_source(path, mpp=args.mpp) as src:
            if isinstance(src, PyramidSource):
                grid_geometry(src, tile_um, out_size, args.overlap)


def run(args) -> int:
    _check(args)
    from pvdesk.cohort.inputs import expand_inputs
    from pvdesk.models import resolve_bundle

    inputs = expand_inputs(args.paths, args.list)
    bundles = [resolve_bundle(m) for m in args.model]  # manifests and weight headers only
    if len({(b.name, b.version) for b in bundles}) != len(bundles):
        raise PvdeskError("the same model is named twice (--model)")
    if args.store:
        _check_store(args.store)
    if len(inputs.paths) == 1:  # one input: refused before any model is loaded
        _check_inputs(args, bundles, inputs.paths)
    if args.backend == "ray":
        from pvdesk.cohort.ray_backend import import_ray

        import_ray()  # says how to install it, before anything is loaded
    from pvdesk.commands.predict_cohort import run_cohort_command

    return run_cohort_command(args, bundles, inputs)
