"""The ``evaluate`` verb: any bundle (zero-shot included) on any split of a dataset.

Which images: with ``--split test`` (the default) on a dataset that has splits, its test
images; on a folder without splits, the split the bundle was trained with (its split.csv)
when that lists images of this folder, else every image (with a note). ``--split all``
takes every image. Labels outside the bundle's classes are left out (counted); a binary
bundle (benign/malignant) gets labels rolled up.
"""

from __future__ import annotations

import re
from pathlib import Path

from pvdesk.models import pick_device, resolve_bundle
from pvdesk.taxonomy import GROUPS
from training.data import data_hash, load_dataset, read_manifest
from training.data.samples import label_indices
from training.embeddings import bundle_probs
from training.errors import DataError
from training.export import now_iso, record_evaluation
from training.metrics import compute_metrics, summary
from training.report import write_report
from training.train import SPLIT_NAME, train_precision


def _own_split(bundle, ds):
    """The bundle's split.csv, when every image it lists is in ``ds``."""
    if bundle.path is None or not (bundle.path / SPLIT_NAME).is_file():
        return None
    try:
        own = read_manifest(bundle.path / SPLIT_NAME)
    except DataError:
        return None
    have = {s.key for s in ds.samples}
    mine = [s for s in own.samples if s.key in have]
    return own if mine and len(mine) == len(own.samples) else None


def select(ds, split: str, bundle, reporter):
    if split == "all":
        return ds.samples, "all"
    if not ds.has_splits:
        own = _own_split(bundle, ds)
        if own is not None:
            labels = {s.key: s.label for s in ds.samples}
            chosen = [s for s in own.samples if s.split == split]
            reporter.note(f"using the bundle's own {split} split ({bundle.path / SPLIT_NAME}): "
                          f"{len(chosen)} images")
            return [s for s in chosen if labels.get(s.key) == s.label], split
        reporter.note(f"{ds.origin} has no splits: evaluating on all {len(ds)} images")
        return ds.samples, "all"
    chosen = ds.split(split)
    if not chosen:
        have = ", ".join(sorted({s.split for s in ds.samples if s.split}))
        raise DataError(f"{ds.origin}: no {split} images (splits here: {have})")
    return chosen, split


def _default_out(bundle, split: str, h: str) -> Path:
    if bundle.path is not None and not bundle.builtin:
        return bundle.path / "evaluations" / f"{split}-{h[:8]}"
    return Path.cwd() / f"evaluation-{bundle.name}-{split}-{h[:8]}"


def run_evaluate(args, reporter) -> int:
    bundle = resolve_bundle(args.model)
    binary = set(bundle.classes) == set(GROUPS)
    ds = load_dataset(args.data, "binary" if binary else "subtype", args.magnification,
                      args.include_unreviewed)
    for w in ds.warnings:
        reporter.warning(w)
    samples, split = select(ds, args.split, bundle, reporter)
    outside = [s for s in samples if s.label not in bundle.classes]
    if outside:
        reporter.warning(f"{len(outside)} image(s) of class(es) "
                         f"{', '.join(sorted({s.label for s in outside}))} are not among the "
                         f"bundle's classes and are left out")
        samples = [s for s in samples if s.label in bundle.classes]
    if not samples:
        raise DataError(f"{ds.origin}: no images of the bundle's classes in the {split} split")
    h = data_hash(samples)
    out = Path(args.out).expanduser() if args.out else _default_out(bundle, split, h)
    device = pick_device(args.device)
    precision = train_precision(device, args.precision)
    reporter.start("evaluate", model=bundle.label, kind=bundle.kind, out=str(out),
                   classes=bundle.classes, counts={split: _count(samples)}, device=device)
    if not bundle.trained:
        reporter.warning(f"{bundle.name} is untrained (random weights): its scores are "
                         "meaningless")
    clf = bundle.load(device, precision)
    probs = bundle_probs(clf, samples, reporter, args.batch_size or 32, args.workers)
    reporter.stage("report", None)
    metrics = compute_metrics(label_indices(samples, bundle.classes), probs, bundle.classes,
                              [s.patient for s in samples], args.bootstrap, args.seed)
    summ = summary(metrics, split)
    ctx = {"bundle": bundle.label, "kind": bundle.kind, "data": ds.origin,
           "split": f"{split} ({len(samples)} images)", "data hash": h[:16],
           "device": device, "precision": clf.effective_precision, "date": now_iso()}
    history = None
    if bundle.path is not None and (bundle.path / "history.json").is_file():
        import json

        try:  # the training curves of a bundle trained here go into its reports too
            history = json.loads((bundle.path / "history.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            history = None
    write_report(out, metrics, f"{bundle.name}: {split} split of {Path(ds.origin).name}", ctx,
                 history)
    own = bundle.provenance.get("eval_hash") == h
    key = re.sub(r"[^A-Za-z0-9_.-]", "_", f"{Path(ds.origin).name}:{split}:{h[:8]}")
    if record_evaluation(bundle, key, summ, own):
        reporter.note(f"metrics written into {bundle.path / 'manifest.json'}")
    reporter.info(f"{out}: {split} accuracy {summ['accuracy']:.4f}, balanced accuracy "
                  f"{summ['balanced_accuracy']:.4f}, macro-F1 {summ['macro_f1']:.4f} "
                  f"({len(samples)} images)")
    reporter.done(str(out), summ)
    return 0


def _count(samples) -> dict:
    out: dict[str, int] = {}
    for s in samples:
        out[s.label] = out.get(s.label, 0) + 1
    return out
