"""`pvdesk review stats|export|import|import-geojson|patient STORE`: a review store from the command
line (team verbs merge|agreement|reviewers|settings: pvdesk.commands.review_team)."""

from __future__ import annotations

import argparse
import json

from pvdesk.commands.common import MAX_INT64, run_id_value
from pvdesk.errors import PvdeskError
from pvdesk.export.qupath import OBJECT_TYPES
from pvdesk.review.actions import check_patient
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
    s.add_argument("--run", type=run_id_value, default=None, help="one model run (default: all)")
    s.add_argument("--json", action="store_true", help="print JSON instead of text")
    s.set_defaults(func=run_stats)

    e = verbs.add_parser("export", help="write clip_predictions.csv and/or QuPath GeoJSON")
    common(e)
    e.add_argument("--csv", help="CSV file to write")
    e.add_argument("--geojson", help="GeoJSON file to write (one per slide when several)")
    e.add_argument("--run", type=run_id_value, default=None, help="one model run (default: all / latest)")
    e.add_argument("--slide", default=None, help="one slide id")
    e.add_argument("--object-type", choices=OBJECT_TYPES, default="tile",
                   help="QuPath object type of the tiles (default %(default)s: light objects, "
                   "as QuPath's tile classifiers make; annotations keep pvdesk's metadata "
                   "inside QuPath)")
    e.add_argument("--offset", type=_offset, default=None, metavar="X,Y",
                   help="subtract this from level-0 coordinates instead of the slide's "
                   "OpenSlide bounds (QuPath's default crop); 0,0 for none")
    e.add_argument("--team", action="store_true",
                   help="add consensus_label, consensus_source and one label_by:<reviewer> "
                   "column per reviewer to the CSV, and the same keys to each GeoJSON tile's "
                   "metadata (added anyway when two or more reviewers decided tiles)")
    e.set_defaults(func=run_export)

    i = verbs.add_parser("import", help="load a clip_predictions.csv (with its reviews)")
    common(i)
    i.add_argument("--csv", required=True, help="CSV file to read")
    i.set_defaults(func=run_import)

    t = verbs.add_parser(
        "patient", help="show or set each slide's patient (a study code, not a name)",
        description="A slide's patient is a study code (e.g. a pseudonymised case number; "
        "never a name). Exports carry it in the CSV's patient column, and training splits "
        "keep every slide of one patient on one side. Without --set or --clear, list the "
        "slides and their patients.")
    common(t)
    t.add_argument("--set", dest="patient", default=None, metavar="PATIENT",
                   help="the code to set (without --set or --clear: list)")
    t.add_argument("--slide", default=None,
                   help="slide id (needed when the store holds several slides)")
    t.add_argument("--clear", action="store_true", help="remove the slide's patient")
    t.set_defaults(func=run_patient)

    g = verbs.add_parser(
        "import-geojson", help="read a GeoJSON back: a pvdesk export, or QuPath annotations "
        "that label tiles (or, with --as-region, limit the next run)",
        description="Import GeoJSON into a review store. Features of a pvdesk export bring "
        "back their tiles, probabilities and review decisions. Other polygons with a "
        "classification that names a review label (e.g. QuPath annotations classed "
        "'Ductal carcinoma') label every tile of the slide's run they cover by at least "
        "--min-coverage, recorded as corrections by --reviewer in the audit trail. With "
        "--as-region the polygons become the slide's regions of interest instead: "
        "`pvdesk predict --store` then classifies only the tiles inside them.")
    g.add_argument("store", help="review store file (.pvdb)")
    g.add_argument("file", help="GeoJSON file (FeatureCollection, Feature or list of features)")
    g.add_argument("--reviewer", default=None,
                   help="reviewer name recorded in the audit trail (default: login name)")
    g.add_argument("--slide", default=None, help="slide id (when the store holds several)")
    g.add_argument("--run", type=run_id_value, default=None,
                   help="model run whose tiles are labelled (default: the slide's latest)")
    g.add_argument("--min-coverage", type=_fraction, default=0.5, metavar="F",
                   help="share of a tile a polygon must cover to label it (default "
                   "%(default)s)")
    g.add_argument("--as-region", action="store_true",
                   help="store the polygons as regions of interest that limit the next run")
    g.add_argument("--offset", type=_offset, default=None, metavar="X,Y",
                   help="add this to QuPath's coordinates instead of the slide's OpenSlide "
                   "bounds; 0,0 for none")
    g.add_argument("--json", action="store_true", help="print the summary as JSON")
    g.set_defaults(func=run_import_geojson)

    from pvdesk.commands.review_team import register_team

    register_team(verbs)


def _offset(text: str) -> tuple[int, int]:
    try:
        if len(text) > 45:
            raise ValueError(text)
        x, y = (int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected X,Y in pixels, got {text[:45]!r}") from None
    if max(abs(x), abs(y)) > MAX_INT64:
        raise argparse.ArgumentTypeError(f"offset out of range: {text!r}")
    return (x, y)


def _fraction(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        v = -1.0
    if not 0.0 < v <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a fraction in (0, 1], got {text!r}")
    return v


def _open(args, create: bool = False, readonly: bool = False) -> ReviewStore:
    """The store; read-only uses (stats, export) show each tile's latest decision of any
    reviewer unless --reviewer names whose decisions to show."""
    view = "latest" if readonly and not args.reviewer else "own"
    return ReviewStore(args.store, reviewer=args.reviewer or default_reviewer(), create=create,
                       readonly=readonly, view=view)


def stats(store: ReviewStore, run_id: int | None = None) -> dict:
    runs = [store.run(run_id)] if run_id is not None else store.runs()
    out = {"store": str(store.path), "slides": len(store.slides()), "runs": [], "tiles": 0,
           "reviewed": 0, "corrected": 0}
    for r in runs:
        c = store.counts(run_id=r.run_id)
        out["runs"].append({"run_id": r.run_id, "model": r.model, "model_sha256": r.model_sha,
                            "classes": len(r.classes),
                            "device": r.device, "created_at": r.created_at, "tiles": c.total,
                            "reviewed": c.reviewed, "corrected": c.corrected})
    n_tiles = store.tile_count()
    decisions = store.decisions()
    out["tiles"] = n_tiles
    out["reviewed"] = len(decisions)
    out["corrected"] = sum(d.status == "corrected" for d in decisions.values())
    out["per_class"] = {k: {"predicted": p, "reviewed": v}
                        for k, (p, v) in sorted(store.class_counts(run_id).items())}
    from pvdesk.regions import region_count

    out["regions"] = region_count(store)
    by = store.decisions_by_reviewer(run_id)
    out["reviewers"] = [{"name": n, "role": role, "tiles": len(by.get(n, {}))}
                        for n, role in store.reviewers()]
    if len(by) > 1:  # from the decisions already read, not a second and third read
        from pvdesk.review.team import consensus_counts

        out["consensus"] = consensus_counts(by, store.roles())
    return out


def run_stats(args) -> int:
    from pvdesk.export.csv_import import model_text

    with _open(args, readonly=True) as store:
        s = stats(store, args.run)
    if args.json:
        print(json.dumps(s, indent=2, ensure_ascii=False))
        return 0
    lines = [f"store:     {s['store']}", f"slides:    {s['slides']}",
             f"runs:      {len(s['runs'])}"]
    for r in s["runs"]:
        lines.append(f"  run {r['run_id']}: {model_text(r['model'], r['model_sha256'])} "
                     f"({r['classes']} classes, {r['device']},"
                     f" {r['created_at']}): {r['reviewed']}/{r['tiles']} reviewed,"
                     f" {r['corrected']} corrected")
    lines += [f"tiles:     {s['tiles']}",
              f"reviewed:  {s['reviewed']}/{s['tiles']} ({s['corrected']} corrected)",
              "per class (predicted / reviewed):"]
    for name, c in s["per_class"].items():
        lines.append(f"  {name:<22} {c['predicted']:>7} {c['reviewed']:>7}")
    if s["regions"]:
        lines.append(f"regions:   {s['regions']} imported from QuPath (they limit "
                     "`pvdesk predict --store`)")
    if len(s["reviewers"]) > 1:
        lines.append("reviewers: " + ", ".join(f"{r['name']} ({r['role']}, {r['tiles']} tiles)"
                                               for r in s["reviewers"]))
    if "consensus" in s:
        c = s["consensus"]
        lines.append(f"consensus: {c['adjudicated']} adjudicated, {c['unanimous']} unanimous, "
                     f"{c['single']} single reader; {c['disputed']} disputed")
    print("\n".join(lines))
    return 0


def run_patient(args) -> int:
    if args.patient is None and not args.clear:
        with _open(args, readonly=True) as store:
            slides = store.slides()
        for sl in slides:
            if args.slide in (None, sl["slide_id"]):
                print(f"{sl['slide_id']}\t{sl['patient'] or '-'}\t{sl['path']}")
        return 0
    if args.patient is not None and args.clear:
        raise PvdeskError("give --set PATIENT or --clear, not both")
    check_patient(args.patient, "--set")  # before the store is opened for writing
    with _open(args) as store:
        ids = [sl["slide_id"] for sl in store.slides()]
        slide = args.slide
        if slide is None:
            if len(ids) != 1:
                raise PvdeskError(f"{store.path}: holds {len(ids)} slides; name one with "
                                  "--slide (see `pvdesk review patient STORE`)")
            slide = ids[0]
        elif slide not in ids:
            raise PvdeskError(f"{store.path}: no slide {slide!r} (see `pvdesk review patient "
                              "STORE`)")
        store.set_patient(slide, None if args.clear else args.patient)
    print(f"{slide}: patient {'cleared' if args.clear else args.patient}")
    return 0


def label_sources_text(counts: dict) -> str:
    """"3 confirmed model predictions, 2 corrections, 8 unreviewed (pseudo-labels if used)"."""
    return (f"{counts.get('confirmed', 0)} confirmed model predictions, "
            f"{counts.get('corrected', 0)} corrections, {counts.get('unreviewed', 0)} unreviewed "
            "(pseudo-labels if trained on)")


def run_export(args) -> int:
    from pvdesk.export.csv import write_predictions_csv
    from pvdesk.export.geojson import write_geojson, write_geojson_per_slide

    if not args.csv and not args.geojson:
        raise PvdeskError("review export: give --csv FILE and/or --geojson FILE")
    from pvdesk.export.atomic import check_output_file

    for target in (args.csv, args.geojson):  # before the store is opened
        if target:
            check_output_file(target)
    with _open(args, readonly=True) as store:
        if args.csv:
            counts: dict = {}
            n = write_predictions_csv(store, args.csv, run_id=args.run, slide_id=args.slide,
                                      counts=counts, team=True if args.team else None,
                                      view=store.view)
            print(f"wrote {args.csv}: {n} rows; labels: {label_sources_text(counts)}")
            if any(k.startswith("consensus ") for k in counts):
                print("consensus (rows): " + ", ".join(
                    f"{counts.get('consensus ' + k, 0)} {k}" for k in
                    ("adjudicated", "unanimous", "single", "disputed", "none")))
        if args.geojson:
            notes: list[str] = []
            team = True if args.team else None
            if args.slide:
                done = [(args.geojson, write_geojson(store, args.geojson, args.run, args.slide,
                                                     args.object_type, args.offset, notes, team))]
            elif args.offset is not None:
                done = [(args.geojson, write_geojson(store, args.geojson, args.run, None,
                                                     args.object_type, args.offset, notes, team))]
            else:
                done = write_geojson_per_slide(store, args.geojson, args.run, args.object_type,
                                               notes, team)
            for path, n in done:
                print(f"wrote {path}: {n} tiles")
            for note in notes:
                print(f"note: {note}")
    return 0


def run_import(args) -> int:
    from pvdesk.export.csv_import import import_csv, model_text, read_checked
    from pvdesk.export.team_import import team_summary

    checked = read_checked(args.csv)  # a bad file is refused before the store is touched
    with _open(args, create=True) as store:
        r = import_csv(store, args.csv, checked)
    print(f"imported {args.csv} into {args.store}: {r['rows']} rows, {r['decisions']} reviewed,"
          f" {r['runs_created']} new runs, {r['slides_created']} new slides")
    for m in r["models"]:
        print(f"    model {model_text(m['model'], m['sha'])}: {m['rows']} rows -> run "
              f"{m['run_id']}{' (new)' if m['new'] else ''}")
    for line in team_summary(r) + [f"note: {n}" for n in r["notes"]]:
        print(line)
    return 0


def run_import_geojson(args) -> int:
    from pvdesk.export.geojson_import import import_geojson, summary_text

    with _open(args, create=True) as store:
        s = import_geojson(store, args.file, slide_id=args.slide, run_id=args.run,
                           min_coverage=args.min_coverage, as_region=args.as_region,
                           offset=args.offset)
    print(json.dumps(s, indent=2, ensure_ascii=False) if args.json else summary_text(s))
    return 0
