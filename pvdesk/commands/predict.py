"""`pvdesk predict PATH... --model NAME --out DIR`: classify tiles, write CSV, heatmaps, summary."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from pvdesk.commands.common import add_grid_arguments
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
    p.add_argument("--batch", type=int, default=32, help="tiles per batch (default %(default)s)")
    p.add_argument("--workers", type=int, default=2,
                   help="tile reader threads (default %(default)s)")
    add_grid_arguments(p, tile_um_default=None, with_size=False)
    p.add_argument("--store", default=None, metavar="FILE.pvdb",
                   help="also record the runs and predictions in this review store")
    p.add_argument("--ignore-regions", action="store_true",
                   help="classify the whole slide even when the store holds regions imported "
                   "from QuPath (review import-geojson --as-region)")
    p.add_argument("--heatmap-size", type=int, default=1200,
                   help="longest side of the heatmap PNGs in px (default %(default)s)")
    p.add_argument("--json", action="store_true",
                   help="print the summaries as JSON ({\"results\": [summary.json, ...]})")
    p.set_defaults(func=run)


def _check(args) -> None:
    if args.batch < 1 or args.workers < 1 or args.heatmap_size < 64:
        raise PvdeskError("--batch and --workers must be at least 1, --heatmap-size at least 64")
    if not 0.0 <= args.overlap < 1.0:
        raise PvdeskError(f"--overlap must be in [0, 1), got {args.overlap}")
    if not 0.0 <= args.min_tissue <= 1.0:
        raise PvdeskError(f"--min-tissue must be in [0, 1], got {args.min_tissue}")
    for p in args.paths:
        if not Path(p).expanduser().exists():
            raise PvdeskError(f"{p}: no such file or folder")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise PvdeskError(f"{out}: exists and is not a folder")


def run(args) -> int:
    _check(args)
    from pvdesk.models import pick_device, resolve_bundle
    from pvdesk.predict import LoadedModel, output_folder, predict_source
    from pvdesk.progress import TerminalProgress
    from pvdesk.slides import open_source

    bundles = [resolve_bundle(m) for m in args.model]
    if len({(b.name, b.version) for b in bundles}) != len(bundles):
        raise PvdeskError("the same model is named twice (--model)")
    device = pick_device(args.device)
    models = [LoadedModel(b, b.load(device=device, precision=args.precision)) for b in bundles]
    for b in bundles:
        if not b.trained:
            print(f"WARNING: {b.name} is UNTRAINED (random weights): its predictions are "
                  "meaningless, for testing only", file=sys.stderr)
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
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
                        progress=lambda p, bar=bar: bar(p.done, p.total))
            info["out"] = str(out)
            results.append(info)
            if args.json:
                continue
            calls = ", ".join(f"{m['model']}: {m['slide_call'] or '-'}"
                              + ("" if m["trained"] else " (UNTRAINED)") for m in info["models"])
            print(f"{out}: {info['tiles']} tiles, {info['csv_rows']} rows, "
                  f"{info['tiles_per_s']:.1f} tiles/s; slide call {calls}")
            for w in info["grid_warnings"]:
                print(f"note: {w}")
            if info["tiles_unreadable"]:
                print(f"note: {info['tiles_unreadable']} unreadable tiles "
                      f"(e.g. {info['unreadable_examples'][0]})")
    finally:
        if store is not None:
            store.close()
    if args.json:
        print(json.dumps({"results": results}, indent=2, ensure_ascii=False))
    return 0
