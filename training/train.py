"""The ``train`` verb: data -> split -> head or fine-tuning -> evaluation -> bundle."""

from __future__ import annotations

import hashlib
import json
import statistics
from pathlib import Path

from pvdesk.export.atomic import atomic_write
from pvdesk.models import pick_device
from training.data import (
    check_disjoint,
    data_hash,
    load_dataset,
    split_dataset,
    write_manifest,
)
from training.data.samples import label_indices
from training.errors import DataError, TrainingError
from training.export import (
    make_manifest,
    now_iso,
    prepare_out,
    save_bundle,
    software,
)
from training.metrics import compute_metrics, summary
from training.report import write_report

SPLIT_NAME = "split.csv"
HEADS = ("clip-linear", "clip-mlp", "resnet50")


def train_precision(device: str, precision: str) -> str:
    """Training's "auto": fp32 on the CPU (exact embeddings), autocast on a GPU."""
    return ("fp32" if device == "cpu" else "auto") if precision == "auto" else precision


def prepare_data(args, reporter, start_tax=None):
    """The dataset with splits, its classes (those in train, in the order of ``start_tax``,
    the starting bundle's custom taxonomy, when there is one) and the samples per split."""
    ds = load_dataset(args.data, args.task, args.magnification, args.include_unreviewed)
    if ds.has_splits:
        unsplit = [s for s in ds.samples if not s.split]
        if unsplit:
            reporter.warning(f"{ds.origin}: {len(unsplit)} image(s) have no split and are "
                             "left out")
            ds = ds.with_samples([s for s in ds.samples if s.split])
        leaked = check_disjoint(ds)
        if not ds.patients_known:
            ds.notes.append(f"{ds.origin}: patients are not known for every image, so the "
                            "given splits cannot be checked for a patient in two splits")
        if leaked:
            msg = (f"{ds.origin}: {len(leaked)} patient(s) are in more than one split "
                   f"(e.g. {leaked[0]}): test scores will be optimistic")
            if args.strict:
                raise DataError(msg + "; refused (--strict)")
            ds.warnings.append(msg)
    else:
        ds = split_dataset(ds, args.fractions, args.seed, args.strict, args.split_unit)
    sources = ds.label_sources("train")
    if sources:
        ds.notes.append(f"training labels: {label_sources_text(sources)}")
        if confirmation_share(sources) > 0.5:
            ds.warnings.append(CONFIRMATION_BIAS.format(share=confirmation_share(sources)))
    for w in ds.warnings:
        reporter.warning(w)
    for n in ds.notes:
        reporter.note(n)
    train = ds.split("train")
    from training.taxonomy_carry import ordered

    # a custom taxonomy keeps its starting bundle's class order (and so its review keys)
    classes = ordered([c for c in ds.classes if any(s.label == c for s in train)], start_tax)
    if len(classes) < 2:
        raise DataError(f"{ds.origin}: the training split has {len(classes)} class(es); at "
                        "least 2 are needed")
    dropped = [s for s in ds.samples if s.label not in classes]
    if dropped:
        gone = sorted({s.label for s in dropped})
        reporter.warning(f"class(es) {', '.join(gone)} have no training images: their "
                         f"{len(dropped)} val/test image(s) are left out")
        ds = ds.with_samples([s for s in ds.samples if s.label in classes])
    parts = {name: ds.split(name) for name in ("train", "val", "test")}
    return ds, classes, parts


CONFIRMATION_BIAS = ("{share:.0%} of the training labels are the old model's own predictions "
                     "(confirmed by a reviewer, or unreviewed pseudo-labels): a model trained "
                     "on them learns the old model's opinions (confirmation bias); "
                     "corrections are what teach it something new")


def label_sources_text(sources: dict) -> str:
    """Where the training labels come from; a team export adds its consensus labels
    (adjudicated, unanimous), and its confirmations and corrections are single readers'."""
    adjudicated, unanimous = sources.get("adjudicated", 0), sources.get("unanimous", 0)
    single = "single-reader " if adjudicated or unanimous else ""
    text = (f"{sources.get('confirmed', 0)} {single}confirmed model predictions, "
            f"{sources.get('corrected', 0)} {single}corrections, {sources.get('pseudo', 0)} "
            "unreviewed pseudo-labels")
    if adjudicated or unanimous:
        text = (f"{adjudicated + unanimous} consensus labels ({adjudicated} adjudicated, "
                f"{unanimous} unanimous), " + text)
    return text


def confirmation_share(sources: dict) -> float:
    total = sum(sources.values())
    return (sources.get("confirmed", 0) + sources.get("pseudo", 0)) / total if total else 0.0


def _tile_um(args, ds, default: float) -> float:
    if args.tile_um:
        return args.tile_um
    if ds.tile_um:
        return ds.tile_um
    sizes = [s.region[2] * s.mpp for s in ds.samples if s.region and s.mpp]
    return round(statistics.median(sizes), 2) if sizes else default


def config_of(args) -> dict:
    skip = {"func", "progress", "verb", "fresh", "overwrite", "stop_after", "threads"}
    return {k: v for k, v in sorted(vars(args).items()) if k not in skip}


def run_train(args, reporter) -> int:
    if args.head not in HEADS:
        raise TrainingError(f"--head {args.head}: expected one of {', '.join(HEADS)}")
    out = Path(args.out).expanduser().resolve()
    name = args.name or out.name
    if not name or name.startswith(".") or any(c in name for c in "/\\"):
        raise TrainingError(f"bundle name {name!r}: must not be empty, start with a dot or "
                            "hold a slash (--name)")
    device = pick_device(args.device)
    precision = train_precision(device, args.precision)
    from training.taxonomy_carry import start_taxonomy, write_taxonomy

    start_tax = start_taxonomy(getattr(args, "backbone", None))  # resolved once
    ds, classes, parts = prepare_data(args, reporter, start_tax)
    reporter.start("train", head=args.head, backbone=args.backbone, out=str(out),
                   classes=classes, counts=ds.counts(), epochs=args.epochs, seed=args.seed,
                   device=device)
    from training.checkpoint import Checkpoints

    prepare_out(out, args.overwrite)
    if args.fresh:
        Checkpoints(out).remove()
    write_manifest(out / SPLIT_NAME, ds)
    cv = None
    if getattr(args, "folds", None):
        from training.crossval import cross_validate

        cv = cross_validate(args, reporter, ds, classes, out, device, precision, name)
    held = "test" if parts["test"] else ("val" if parts["val"] else None)
    if held == "val":
        reporter.warning("no test images: the report is on the validation split, which also "
                         "chose the model (optimistic)")
    elif held is None:
        reporter.warning("no validation or test images: the bundle is exported without a "
                         "held-out evaluation")
    data_h = data_hash(ds.samples)
    config = config_of(args)
    config.update(device=device, precision=precision, classes=classes)
    if args.head == "resnet50":
        from training.train_resnet import train_resnet

        res = train_resnet(args, reporter, ds, classes, parts, out, device, precision, data_h)
    else:
        from training.train_heads import train_head

        res = train_head(args, reporter, classes, parts, device, precision)
    config.update(res["config"])
    from pvdesk.models.lineage import status_text

    lineage = {"parts": [res["lineage_part"], {
        "role": "network" if args.head == "resnet50" else "head", "kind": args.head,
        "trained": True, "data_hash": data_h, "train_images": len(parts["train"])}]}
    status = status_text({"kind": args.head, "backbone": res["backbone"], "lineage": lineage,
                          "trained": all(p["trained"] for p in lineage["parts"]
                                         if p.get("gates", True))})
    if status.startswith("UNTRAINED"):
        reporter.warning(f"the bundle is marked {status}")
    metrics, summ, history = None, None, res.get("history")
    if held:
        reporter.stage("report", None)
        test = parts[held]
        metrics = compute_metrics(label_indices(test, classes), res["probs"], classes,
                                  [s.patient for s in test], args.bootstrap, args.seed)
        summ = summary(metrics, held)
        sources = ds.label_sources("train")
        ctx = {"bundle": name, "model status": status, "kind": args.head,
               **({"training labels": label_sources_text(sources)
                   + (" — WARNING: " + CONFIRMATION_BIAS.format(
                       share=confirmation_share(sources))
                      if confirmation_share(sources) > 0.5 else "")} if sources else {}),
               **({"cross-validation": f"{cv['folds']} folds, pooled accuracy "
                                       f"{cv['pooled']['accuracy']:.4f} ({cv['pooled']['correct']}"
                                       f" of {cv['pooled']['n']} images; cv/pooled/report.md)"}
                  if cv else {}),
               "backbone": res["described"],
               "data": ds.origin, "split": f"{held} ({len(test)} images)",
               "data hash": data_h[:16], "date": now_iso()}
        write_report(out, metrics, report_title(name, held, status, no_test=held == "val"),
                     ctx, history, test, res["probs"])
    prov = {"data": ds.origin, "data_kind": ds.kind, "data_hash": data_h,
            "split_manifest": SPLIT_NAME, "counts": ds.counts(),
            "eval_split": held, "eval_hash": data_hash(parts[held]) if held else None,
            "metrics": summ or {}, "date": now_iso(), "config": config,
            **({"cross_validation": cv} if cv else {}),
            **({"label_sources": ds.label_sources("train")} if ds.label_sources() else {}),
            "backbone_start": res["described"], "best_epoch": res.get("best_epoch"),
            "software": software()}
    manifest = make_manifest(
        name, args.head, classes, res["backbone"], res["input_size"], res["mean"], res["std"],
        _tile_um(args, ds, res["tile_um"]), prov,
        f"{args.head} trained by pvdesk-train on {Path(ds.origin).name} ({len(ds)} images, "
        f"{len(classes)} classes) from {res['described']}", res.get("head"), lineage)
    if history:
        with atomic_write(out / "history.json") as fh:
            json.dump(history, fh, indent=1)
    tax_file = write_taxonomy(out, start_tax, classes)
    if tax_file:  # display names, colours, keys and groups of the starting bundle
        manifest["taxonomy"] = tax_file
    save_bundle(out, manifest, res["tensors"])
    Checkpoints(out).remove()
    reporter.info(f"{out}: bundle {name} ({args.head}, {len(classes)} classes)"
                  + (f"; {held} accuracy {summ['accuracy']:.4f}, macro-F1 "
                     f"{summ['macro_f1']:.4f}" if summ else ""))
    reporter.done(str(out), summ)
    return 0


def report_title(name: str, split: str, status: str = "trained",
                 no_test: bool = False) -> str:
    """A report's title says which split it reports (validation, and why it is optimistic
    when there is no test split: it also chose the model) and, first, that the model is
    untrained when it is."""
    what = {"test": "test split",
            "val": ("validation split (no test split; validation also chose the model, so "
                    "this is optimistic)" if no_test else "validation split"),
            "train": "training split (images it was trained on: not a performance estimate)",
            }.get(split, f"{split} split")
    return ("UNTRAINED — " if status.startswith("UNTRAINED") else "") + f"{name}: {what}"


def config_hash(args, classes, data_h, described) -> str:
    loose = ("epochs", "workers", "out", "name", "bootstrap", "tile_um", "no_cache")
    cfg = {k: v for k, v in config_of(args).items() if k not in loose}
    cfg.update(classes=classes, data=data_h, start=described)
    return hashlib.sha256(json.dumps(cfg, sort_keys=True, default=str).encode()).hexdigest()
