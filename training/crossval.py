"""``train --folds K``: patient-level k-fold cross-validation before the bundle is trained.

Each fold's test patients are held out of that fold's training (training.data.fold_dataset:
StratifiedGroupKFold over shuffled patients, stratified by class); the head (or ResNet50)
is trained on the rest exactly as ``train`` does, and evaluated on the fold. Every patient
is tested exactly once, so the pooled test predictions give one honest figure on all the
data (with BreakHis's 3 phyllodes patients, a single test split holds one of them at most).

Files, under the bundle folder: ``cv/fold-<i>/`` (report.md, metrics.json,
predictions.csv, confusion.png) per fold and ``cv/pooled/`` for the pooled predictions;
the manifest's ``provenance.cross_validation`` holds their summaries.
"""

from __future__ import annotations

import statistics
from pathlib import Path

import numpy as np

from training.data import data_hash, fold_dataset
from training.data.samples import label_indices
from training.metrics import compute_metrics, summary
from training.report import write_report

CV_FOLDER = "cv"


def cross_validate(args, reporter, ds, classes: list[str], out: Path, device: str,
                   precision: str, name: str) -> dict:
    """Train and evaluate ``args.folds`` folds; write their reports; return the summaries."""
    k = int(args.folds)
    tr, va, _ = args.fractions
    val_fraction = va / (tr + va) if tr + va > 0 else 0.0
    folds = fold_dataset(ds, k, args.seed, val_fraction, args.split_unit)
    if ds.has_splits:
        reporter.warning(f"{ds.origin}: its own train/val/test splits are ignored for "
                         f"cross-validation (every patient is tested once in {k} folds)")
    all_samples, all_probs, per_fold = [], [], []
    for i, fold in enumerate(folds, start=1):
        for w in fold.warnings:
            reporter.warning(w)
        fold = fold.with_samples([s for s in fold.samples if s.label in classes])
        parts = {p: fold.split(p) for p in ("train", "val", "test")}
        reporter.stage(f"fold {i}/{k}", None)
        reporter.note(f"cross-validation fold {i} of {k}: {len(parts['train'])} train, "
                      f"{len(parts['val'])} validation, {len(parts['test'])} test images")
        where = out / CV_FOLDER / f"fold-{i}"
        if args.head == "resnet50":
            from training.train_resnet import train_resnet

            where.mkdir(parents=True, exist_ok=True)
            res = train_resnet(args, reporter, fold, classes, parts, where, device, precision,
                               data_hash(fold.samples))
        else:
            from training.train_heads import train_head

            res = train_head(args, reporter, classes, parts, device, precision)
        test = parts["test"]
        probs = np.asarray(res["probs"], dtype=np.float64)
        m = compute_metrics(label_indices(test, classes), probs, classes,
                            [s.patient for s in test], args.bootstrap, args.seed)
        write_report(where, m, f"{name}: cross-validation fold {i} of {k} (test patients "
                               "held out of this fold's training)",
                     {"bundle": name, "fold": f"{i} of {k}", "data": ds.origin,
                      "split": f"test ({len(test)} images)"}, res.get("history"), test, probs)
        per_fold.append(summary(m, f"fold {i}"))
        all_samples += test
        all_probs.append(probs)
    probs = np.concatenate(all_probs)
    pooled = compute_metrics(label_indices(all_samples, classes), probs, classes,
                             [s.patient for s in all_samples], args.bootstrap, args.seed)
    accs = [f["accuracy"] for f in per_fold]
    spread = (f"{statistics.mean(accs):.4f} ± {statistics.stdev(accs):.4f} (mean ± sd over "
              f"{k} folds)" if k > 1 else f"{accs[0]:.4f}")
    ctx = {"bundle": name, "data": ds.origin, "folds": k, "seed": args.seed,
           "split": f"pooled test predictions of {k} folds ({len(all_samples)} images, each "
                    "tested once)",
           "fold accuracies": ", ".join(f"{f['accuracy']:.4f} ({f['correct']} of {f['n']})"
                                        for f in per_fold),
           "fold accuracy": spread}
    write_report(out / CV_FOLDER / "pooled", pooled,
                 f"{name}: {k}-fold cross-validation, pooled over the folds", ctx, None,
                 all_samples, probs)
    reporter.info(f"cross-validation: pooled accuracy {pooled['accuracy']:.4f} "
                  f"({pooled['correct']} of {pooled['n']} images); per fold {spread}")
    return {"folds": k, "seed": args.seed, "pooled": summary(pooled, "cv-pooled"),
            "per_fold": per_fold, "reports": f"{CV_FOLDER}/"}
