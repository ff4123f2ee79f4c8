"""`pvdesk predict`'s run over its inputs (a cohort of one or many): models, backend, the
cohort driver, and what is printed."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from pvdesk.errors import PvdeskError


def _print_done(info: dict) -> None:
    from pvdesk.predict.summary import call_text

    calls = ", ".join(f"{m['model']}: {call_text(m)}"
                      + ("" if m["trained"] else " (UNTRAINED)") for m in info["models"])
    print(f"{info['out']}: {info['tiles']} tiles, {info['csv_rows']} rows, "
          f"{info['tiles_per_s']:.1f} tiles/s; slide call {calls}")
    for w in info["grid_warnings"]:
        print(f"note: {w}")
    if info.get("unreadable_area"):
        print(f"note: unreadable area: {info['unreadable_area']['note']}")
    if info["tiles_unreadable"]:
        print(f"note: {info['tiles_unreadable']} of {info['tiles']} tiles could not "
              f"be read (tile_status 'unreadable' in the CSV; e.g. "
              f"{info['unreadable_examples'][0]})")


def _settings(args, bundles, device: str):
    from pvdesk.cohort.work import CohortSettings, ModelSpec
    from pvdesk.predict import GridParams

    for b in bundles:
        if b.path is None:
            raise PvdeskError(f"{b.name}: a bundle without a folder cannot be sent to workers")
    return CohortSettings(
        models=tuple(ModelSpec(str(Path(b.path).resolve()), b.name, b.manifest_hash)
                     for b in bundles),
        grid=GridParams(tile_um=args.tile_um, overlap=args.overlap, min_tissue=args.min_tissue,
                        mpp=args.mpp, heatmap_size=args.heatmap_size),
        batch_size=args.batch, workers=args.workers, precision=args.precision, device=device,
        embeddings=bool(args.embeddings and args.store), tiles_per_task=args.tiles_per_task)


def run_cohort_command(args, bundles, inputs) -> int:
    from pvdesk.cohort.driver import run_cohort, store_regions
    from pvdesk.cohort.work import SlideJob
    from pvdesk.export.atomic import make_folder
    from pvdesk.predict import LoadedModel, output_folder

    ray = args.backend == "ray"
    if ray:
        device = args.device or ("cuda" if args.gpus_per_task > 0 else "cpu")
        models = [LoadedModel(b, None) for b in bundles]  # loaded by the workers
    else:
        from pvdesk.models import pick_device

        device = pick_device(args.device)
        models = [LoadedModel(b, b.load(device=device, precision=args.precision))
                  for b in bundles]
    settings = _settings(args, bundles, device)
    for b in bundles:
        if not b.trained:
            why = "; ".join(getattr(b, "untrained_reasons", None) or ["random weights"])
            print(f"WARNING: {b.name} is UNTRAINED ({why}): its predictions are "
                  "meaningless, for testing only", file=sys.stderr)
    for note in inputs.notes:
        print(f"note: {note}", file=sys.stderr)
    out_dir = make_folder(args.out)
    taken: set[str] = set()
    jobs = [SlideJob(i, str(p), output_folder(out_dir, p, taken).name)
            for i, p in enumerate(inputs.paths)]
    store = backend = None

    def report(kind, payload):
        if kind == "done" and not args.json:
            _print_done(payload)
        elif kind == "failed":
            print(f"pvdesk: failed: {payload}", file=sys.stderr)
        elif kind == "resumed" and not args.json:
            print(f"{out_dir / payload.name}: complete from an earlier run (--resume)")

    try:
        if args.store:
            from pvdesk.review.store import ReviewStore

            store = ReviewStore(args.store)
        regions = store_regions(store) if store is not None and not args.ignore_regions else {}
        if ray:
            from pvdesk.cohort.ray_backend import RayBackend

            backend = RayBackend(settings, address=args.address,
                                 cpus_per_task=args.cpus_per_task,
                                 gpus_per_task=args.gpus_per_task)
        else:
            from pvdesk.cohort.backends import LocalBackend

            backend = LocalBackend(settings, models)
        res = run_cohort(jobs, models, settings, backend, out_dir, bundles=bundles,
                         store=store, regions=regions, resume=args.resume, report=report)
    except KeyboardInterrupt:
        print(f"pvdesk: interrupted; finished slides are kept, `--resume` continues "
              f"({out_dir / 'cohort.csv'})", file=sys.stderr)
        return 130
    finally:
        if backend is not None:
            backend.close()
        if store is not None:
            store.close()
    if args.json:
        print(json.dumps({"results": res.infos, "cohort": res.summary}, indent=2,
                         ensure_ascii=False))
    elif len(jobs) > 1 or res.failed:
        from pvdesk.cohort.cohort_csv import summary_text

        print(f"{out_dir / 'cohort.csv'}:")
        print(summary_text(res.summary), end="")
    return 1 if res.failed else 0
