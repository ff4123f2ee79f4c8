"""`pvdesk review stats|export|import STORE`: a review store from the command line."""

from __future__ import annotations

import json

from pvdesk.errors import PvdeskError
from pvdesk.review.store import ReviewStore, default_reviewer


def register(sub) -> None:
    p = sub.add_parser("review", help="statistics, export and import of a review store",
                       description="Work with a review store (.pvdb) without the GUI.")
    verbs = p.add_subparsers(dest="review_verb", metavar="ACTION", required=True)

    def common(q):
        q.add_argument("store", help="review store file (.pvdb)")
        q.add_argument("--reviewer", default=None,
                       help="reviewer name recorded in the audit trail (default: login name)")

    s = verbs.add_parser("stats", help="slides, runs, tiles, reviewed / total, per class")
    common(s)
    s.add_argument("--run", type=int, default=None, help="one model run (default: all)")
    s.add_argument("--json", action="store_true", help="print JSON instead of text")
    s.set_defaults(func=run_stats)

    e = verbs.add_parser("export", help="write clip_predictions.csv and/or QuPath GeoJSON")
    common(e)
    e.add_argument("--csv", help="CSV file to write")
    e.add_argument("--geojson", help="GeoJSON file to write (one per slide when several)")
    e.add_argument("--run", type=int, default=None, help="one model run (default: all / latest)")
    e.add_argument("--slide", default=None, help="one slide id")
    e.add_argument("--object-type", choices=("annotation", "detection"), default="annotation",
                   help="QuPath object type of the tiles (default %(default)s)")
    e.set_defaults(func=run_export)

    i = verbs.add_parser("import", help="load a clip_predictions.csv (with its reviews)")
    common(i)
    i.add_argument("--csv", required=True, help="CSV file to read")
    i.set_defaults(func=run_import)


def _open(args, create: bool = False) -> ReviewStore:
    return ReviewStore(args.store, reviewer=args.reviewer or default_reviewer(), create=create)


def stats(store: ReviewStore, run_id: int | None = None) -> dict:
    runs = [store.run(run_id)] if run_id is not None else store.runs()
    out = {"store": str(store.path), "slides": len(store.slides()), "runs": [], "tiles": 0,
           "reviewed": 0, "corrected": 0}
    for r in runs:
        c = store.counts(run_id=r.run_id)
        out["runs"].append({"run_id": r.run_id, "model": r.model, "classes": len(r.classes),
                            "device": r.device, "created_at": r.created_at, "tiles": c.total,
                            "reviewed": c.reviewed, "corrected": c.corrected})
    n_tiles = store.tile_count()
    decisions = store.decisions()
    out["tiles"] = n_tiles
    out["reviewed"] = len(decisions)
    out["corrected"] = sum(d.status == "corrected" for d in decisions.values())
    out["per_class"] = {k: {"predicted": p, "reviewed": v}
                        for k, (p, v) in sorted(store.class_counts(run_id).items())}
    return out


def run_stats(args) -> int:
    with _open(args) as store:
        s = stats(store, args.run)
    if args.json:
        print(json.dumps(s, indent=2, ensure_ascii=False))
        return 0
    lines = [f"store:     {s['store']}", f"slides:    {s['slides']}",
             f"runs:      {len(s['runs'])}"]
    for r in s["runs"]:
        lines.append(f"  run {r['run_id']}: {r['model']} ({r['classes']} classes, {r['device']},"
                     f" {r['created_at']}): {r['reviewed']}/{r['tiles']} reviewed,"
                     f" {r['corrected']} corrected")
    lines += [f"tiles:     {s['tiles']}",
              f"reviewed:  {s['reviewed']}/{s['tiles']} ({s['corrected']} corrected)",
              "per class (predicted / reviewed):"]
    for name, c in s["per_class"].items():
        lines.append(f"  {name:<22} {c['predicted']:>7} {c['reviewed']:>7}")
    print("\n".join(lines))
    return 0


def run_export(args) -> int:
    from pvdesk.export.csv import write_predictions_csv
    from pvdesk.export.geojson import write_geojson, write_geojson_per_slide

    if not args.csv and not args.geojson:
        raise PvdeskError("review export: give --csv FILE and/or --geojson FILE")
    with _open(args) as store:
        if args.csv:
            n = write_predictions_csv(store, args.csv, run_id=args.run, slide_id=args.slide)
            print(f"wrote {args.csv}: {n} rows")
        if args.geojson:
            if args.slide:
                done = [(args.geojson, write_geojson(store, args.geojson, args.run, args.slide,
                                                     args.object_type))]
            else:
                done = write_geojson_per_slide(store, args.geojson, args.run, args.object_type)
            for path, n in done:
                print(f"wrote {path}: {n} tiles")
    return 0


def run_import(args) -> int:
    from pvdesk.export.csv import import_csv

    with _open(args, create=True) as store:
        r = import_csv(store, args.csv)
    print(f"imported {args.csv} into {args.store}: {r['rows']} rows, {r['decisions']} reviewed,"
          f" {r['runs_created']} new runs, {r['slides_created']} new slides")
    return 0
