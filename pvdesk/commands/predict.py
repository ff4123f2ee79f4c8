"""`pvdesk predict PATH... --model NAME --out DIR`: classify tiles, write CSV, heatmaps, summary."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from pvdesk.commands.common import PREVIEW_RANGE, add_grid_arguments, integer
from pvdesk.errors import PvdeskError


def register(sub) -> None:
    p = sub.add_parser(
        "predict", help="classify every tissue tile of slides or patch folders",
        description="For each slide or patch folder, write DIR/<name>/clip_predictions.csv "
        "(one row per tile per model), heatmap PNGs per class plus the benign/malignant "
        "roll-up and the class map (slides only), and summary.txt / summary.json.")
    p.add_argument("paths", nargs="+", metavar="PATH", help="slide file, image or patch folder")
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
    p.add_argument("--json", action="store_true",
                   help="print the summaries as JSON ({\"results\": [summary.json, ...]})")
    p.set_defaults(func=run)


def _check(args) -> None:
    """Cheap checks of the arguments and output paths (nothing is opened or created)."""
    for p in args.paths:
        if not Path(p).expanduser().exists():
            raise PvdeskError(f"{p}: no such file or folder")
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


def _check_inputs(args, bundles) -> None:
    """Open every input and check its tile grid's geometry (tile size in pixels, number of
    positions) before any model is loaded: a bad slide costs a second, not a model load."""
    from pvdesk.slides import PyramidSource, open_source
    from pvdesk.tiling import grid_geometry

    tile_um = args.tile_um or bundles[0].tile_um
    out_size = max(b.input_size for b in bundles)
    for path in args.paths:
        with open_source(path, mpp=args.mpp) as src:
            if isinstance(src, PyramidSource):
                grid_geometry(src, tile_um, out_size, args.overlap)


def run(args) -> int:
    _check(args)
    from pvdesk.export.atomic import make_folder
    from pvdesk.models import pick_device, resolve_bundle
    from pvdesk.predict import LoadedModel, output_folder, predict_source
    from pvdesk.progress import TerminalProgress
    from pvdesk.slides import open_source

    bundles = [resolve_bundle(m) for m in args.model]  # manifests and weight headers only
    if len({(b.name, b.version) for b in bundles}) != len(bundles):
        raise PvdeskError("the same model is named twice (--model)")
    if args.store:
        _check_store(args.store)
    _check_inputs(args, bundles)
    device = pick_device(args.device)
    models = [LoadedModel(b, b.load(device=device, precision=args.precision)) for b in bundles]
    for b in bundles:
        if not b.trained:
            why = "; ".join(getattr(b, "untrained_reasons", None) or ["random weights"])
            print(f"WARNING: {b.name} is UNTRAINED ({why}): its predictions are "
                  "meaningless, for testing only", file=sys.stderr)
    out_dir = make_folder(args.out)
    store = None
    if args.store:
        from pvdesk.review.store import ReviewStore

        store = ReviewStore(args.store)
    taken: set[str] = set()
    results: list[dict] = []
    try:
        for path in args.paths:
            with open_source(path, mpp=args.mpp) as src:
                regions = None
                if store is not None and not args.ignore_regions:
                    from pvdesk.regions import regions_for

                    regions = regions_for(store, src.slide_id)
                out = output_folder(out_dir, Path(path), taken)
                with TerminalProgress(f"{Path(path).name}", "tile") as bar:
                    info = predict_source(
                        src, models, out, tile_um=args.tile_um, overlap=args.overlap,
                        min_tissue=args.min_tissue, batch_size=args.batch,
                        workers=args.workers, store=store, device=device,
                        heatmap_size=args.heatmap_size, regions=regions,
                        embeddings=args.embeddings,
                        progress=lambda p, bar=bar: bar(p.done, p.total))
            info["out"] = str(out)
            results.append(info)
            if args.json:
                continue
            calls = ", ".join(f"{m['model']}: {_call_text(m)}"
                              + ("" if m["trained"] else " (UNTRAINED)") for m in info["models"])
            print(f"{out}: {info['tiles']} tiles, {info['csv_rows']} rows, "
                  f"{info['tiles_per_s']:.1f} tiles/s; slide call {calls}")
            for w in info["grid_warnings"]:
                print(f"note: {w}")
            if info.get("unreadable_area"):
                print(f"note: unreadable area: {info['unreadable_area']['note']}")
            if info["tiles_unreadable"]:
                print(f"note: {info['tiles_unreadable']} of {info['tiles']} tiles could not "
                      f"be read (tile_status 'unreadable' in the CSV; e.g. "
                      f"{info['unreadable_examples'][0]})")
    finally:
        if store is not None:
            store.close()
    if args.json:
        print(json.dumps({"results": results}, indent=2, ensure_ascii=False))
    return 0


def _call_text(m: dict) -> str:
    """A model's slide call for the one-line report; a taxonomy without benign/malignant
    groups has no rule, and its class shares are given instead."""
    from pvdesk.predict.summary import NO_RULE

    if m.get("slide_call_rule") != NO_RULE:
        return m["slide_call"] or "-"
    n = m["tiles_classified"] or 1
    shares = " ".join(f"{c} {k / n:.0%}" for c, k in m["tiles_per_class"].items())
    return f"no slide-level rule (class shares: {shares})"
