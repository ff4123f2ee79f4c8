"""`pvdesk models [--dir DIR]`: every model bundle found, its classes, weights and training."""

from __future__ import annotations

import json

from pvdesk.taxonomy import CLASS_NAMES


def register(sub) -> None:
    p = sub.add_parser("models", help="list the model bundles found (built-in and user folders)",
                       description="List every model bundle: built-ins, the user's models folder "
                       "and --dir folders, with kind, classes, whether its weights are "
                       "available here, whether it is trained (an untrained backbone "
                       "makes a bundle untrained), what it stands on and its recorded "
                       "evaluation.")
    p.add_argument("--dir", action="append", default=[], metavar="DIR",
                   help="also look in this folder (a bundle, or a folder of bundles); repeatable")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(func=run)
    from pvdesk.commands.models_manage import register_verbs

    register_verbs(p)


def classes_text(classes: list[str], width: int = 60) -> str:
    if list(classes) == list(CLASS_NAMES):
        return "8: all subtypes (adenosis ... papillary_carcinoma)"
    text = f"{len(classes)}: " + ", ".join(classes)
    return text if len(text) <= width else text[: width - 3] + "..."


def run(args) -> int:
    from pvdesk.models import find_bundles
    from pvdesk.models.lineage import part_text, recorded_evaluation
    from pvdesk.models.registry import builtin_models_dir
    from pvdesk.paths import user_models_dir

    errors: list[str] = []
    bundles = find_bundles(args.dir, errors=errors)
    rows = []
    for b in bundles:
        ok, why = b.weights_status()
        rows.append({"name": b.name, "version": b.version, "kind": b.kind, "classes": b.classes,
                     "weights_available": ok, "weights": why, "trained": b.trained,
                     "status": b.status, "untrained_because": b.untrained_reasons,
                     "stands_on": [part_text(p) for p in b.lineage.get("parts", [])],
                     "weights_sha256": {f.get("file"): f["sha256"]
                                        for f in b.lineage.get("files", [])},
                     "own_weights_sha256": b.weights_sha256,
                     "model_sha256": b.weights_sha256[:16],  # its CSV rows' cell
                     "evaluation": b.evaluation,
                     "backbone_spec": b.backbone.get("spec") or b.provenance.get(
                         "backbone_spec"),
                     "backbone_weights": backbone_weights(b),
                     "evaluation_metrics": recorded_evaluation(b.manifest),
                     "builtin": b.builtin, "tile_um": b.tile_um, "input_size": b.input_size,
                     "path": str(b.path) if b.path else None})
    if args.json:
        print(json.dumps({"bundles": rows, "errors": errors}, indent=2))
        return 0
    if not rows:
        print("no model bundles found")
    for r in rows:
        print(f"{r['name']} {r['version']}  [{r['kind']}]  {r['status']}"
              f"{'  (built-in)' if r['builtin'] else ''}")
        print(f"    evaluation: {r['evaluation']}")
        if r["backbone_spec"]:
            print(f"    backbone: {r['backbone_spec']}" + "".join(
                f" [sha256 {w['sha256'][:12]}, {w.get('size', 0) / 1e6:.1f} MB]"
                for w in r["backbone_weights"]))
        for part in r["stands_on"]:
            print(f"    stands on: {part}")
        if r["model_sha256"]:  # what its prediction CSV rows carry in model_sha256
            print(f"    own weights: sha256 {r['own_weights_sha256']} (CSV model_sha256 "
                  f"{r['model_sha256']})")
        print(f"    classes: {classes_text(r['classes'])}")
        print(f"    weights here: {'yes' if r['weights_available'] else 'no'} - {r['weights']}")
        print(f"    tile: {r['tile_um']:g} um at {r['input_size']} px; folder: {r['path']}")
    print(f"\nsearched: {builtin_models_dir()}, {user_models_dir()}"
          + "".join(f", {d}" for d in args.dir))
    for e in errors:
        print(f"broken bundle, skipped: {e}")
    return 0


def backbone_weights(bundle) -> list[dict]:
    """The backbone weights files its lineage records ({file, sha256, size})."""
    for part in bundle.lineage.get("parts") or []:
        if part.get("role") == "backbone":
            return [w for w in part.get("weights") or [] if isinstance(w, dict)
                    and isinstance(w.get("sha256"), str)]
    return []
