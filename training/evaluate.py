"""The ``evaluate`` verb: any bundle (zero-shot included) on any split of a dataset.

Which images: with ``--split test`` (the default) on a dataset that has splits, its test
images; on a folder without splits, the bundle's own split (its split.csv) restricted to
the images of this folder (after ``--magnification``, say), else every image, reported as
"all", never as "test". ``--split all`` takes every image. Labels outside the bundle's
classes are left out (counted); a binary bundle (benign/malignant) gets labels rolled up.

Held-out check: an evaluation never scores images the bundle was trained or tuned on and
calls it a test. The chosen images are checked against the bundle's own split.csv (the
same file, a BreakHis name, or a patient in its train or validation split): any overlap is
refused, unless ``--exclude-seen`` (those images are left out and counted) or
``--allow-contaminated`` (scored anyway; the report's title, metrics.json and the manifest
entry say "contaminated", and it never becomes the bundle's own metrics). Evaluating the
bundle's own train or validation split is allowed and titled as such. A trained bundle
without split.csv cannot be checked: the report says so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from pvdesk.models import pick_device, resolve_bundle
from pvdesk.slides import parse_breakhis_name
from pvdesk.taxonomy import GROUPS
from training.data import data_hash, load_dataset, read_manifest
from training.data.samples import label_indices
from training.embeddings import bundle_probs
from training.errors import DataError
from training.export import now_iso, record_evaluation
from training.metrics import compute_metrics, summary
from training.report import write_report
from training.train import SPLIT_NAME, report_title, train_precision


def identities(s) -> set[str]:
    """What makes two samples the same image: the file (and region), and for a BreakHis
    patch its file name (unique in BreakHis, wherever the tree was copied)."""
    ids = {f"key:{s.key}"}
    if s.region is None:
        stem = Path(s.path).stem
        if parse_breakhis_name(stem) is not None:
            ids.add(f"breakhis:{stem}")
    return ids


def own_split(bundle):
    """The bundle's split.csv as a Dataset (its files need not exist here), or None."""
    if bundle.path is None or not (bundle.path / SPLIT_NAME).is_file():
        return None
    try:
        return read_manifest(bundle.path / SPLIT_NAME, check_files=False)
    except DataError:
        return None


@dataclass
class Check:
    """The held-out check of the chosen images against the bundle's own split."""

    checked: bool  # False: the bundle has no split.csv (nothing to check against)
    seen: dict = field(default_factory=dict)  # own split -> chosen images found in it
    patients: int = 0  # chosen images of a patient in the bundle's train/val split
    bad: list = field(default_factory=list)  # the chosen samples that are not held out
    examples: list = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.bad

    def describe(self, total: int) -> str:
        parts = [f"{n} in its {'validation' if k == 'val' else 'training'} split"
                 for k, n in self.seen.items() if n]
        if self.patients:
            parts.append(f"{self.patients} more of a patient in those splits")
        return (f"{len(self.bad)} of {total} images are not held out from this bundle ("
                + ", ".join(parts) + (f"; e.g. {self.examples[0]}" if self.examples else "")
                + ")")


def check_held_out(samples, own) -> Check:
    """Which of ``samples`` the bundle was trained or tuned on (or whose patient it was)."""
    if own is None:
        return Check(False)
    seen_ids = {k: set() for k in ("train", "val")}
    seen_patients: set[str] = set()
    for s in own.samples:
        if s.split in seen_ids:
            seen_ids[s.split] |= identities(s)
            if s.patient:
                seen_patients.add(s.patient)
    chk = Check(True, {"train": 0, "val": 0})
    for s in samples:
        ids = identities(s)
        where = next((k for k in ("train", "val") if ids & seen_ids[k]), None)
        if where is not None:
            chk.seen[where] += 1
        elif s.patient and s.patient in seen_patients:
            chk.patients += 1
        else:
            continue
        chk.bad.append(s)
        if len(chk.examples) < 3:
            chk.examples.append(Path(s.path).name)
    return chk


def select(ds, split: str, bundle, reporter, own=None):
    """(samples, what the report may call them)."""
    if split == "all":
        return ds.samples, "all"
    if not ds.has_splits:
        if own is not None:
            present = {}
            for s in ds.samples:
                for i in identities(s):
                    present[i] = s
            listed = [s for s in own.samples if s.split == split]
            chosen = []
            for s in listed:  # the images of this folder, with this folder's labels
                here = next((present[i] for i in identities(s) if i in present), None)
                if here is not None and here.label == s.label:
                    chosen.append(here)
            reporter.note(f"using the bundle's own {split} split ({bundle.path / SPLIT_NAME}): "
                          f"{len(chosen)} of its {len(listed)} {split} images are in "
                          f"{ds.origin}")
            if not chosen:
                raise DataError(f"{ds.origin}: none of the bundle's {len(listed)} {split} "
                                f"images is here ({bundle.path / SPLIT_NAME})")
            return chosen, split
        reporter.note(f"{ds.origin} has no splits and the bundle has no split.csv: "
                      f"evaluating on all {len(ds)} images (reported as 'all', not '{split}')")
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
    own = own_split(bundle)
    samples, split = select(ds, args.split, bundle, reporter, own)
    chk = check_held_out(samples, own)
    contaminated = False
    held_out_note = "checked against the bundle's split.csv: every image is held out"
    if not chk.checked:
        trained_here = bool(bundle.provenance.get("data_hash"))
        held_out_note = ("not checked: the bundle has no split.csv"
                         + (", so its training images are unknown" if trained_here else
                            " (it was not trained by pvdesk-train)"))
        if trained_here:
            reporter.warning(f"{bundle.name} has no split.csv: whether these images were "
                             "among its training images cannot be checked")
    elif args.split in ("train", "val") and (not ds.has_splits or not chk.clean):
        # a train or validation split asked for by name: scored, and said to be what it is
        contaminated = True
        held_out_note = (chk.describe(len(samples)) if ds.has_splits else
                         f"these are the bundle's own {args.split} images: "
                         + ("it was trained on them" if args.split == "train" else
                            "they chose the model")) + "; not a held-out estimate"
    elif not chk.clean:
        what = chk.describe(len(samples))
        if getattr(args, "exclude_seen", False):
            bad = {id(s) for s in chk.bad}
            samples = [s for s in samples if id(s) not in bad]
            reporter.warning(f"{what}: left out (--exclude-seen); {len(samples)} remain")
            held_out_note = f"{what}: left out (--exclude-seen)"
            if not samples:
                raise DataError(f"{ds.origin}: no held-out images remain (--exclude-seen)")
        elif getattr(args, "allow_contaminated", False):
            contaminated = True
            reporter.warning(f"{what}: scored anyway (--allow-contaminated); the report is "
                             "marked CONTAMINATED")
            held_out_note = f"CONTAMINATED: {what}; scored anyway (--allow-contaminated)"
        else:
            raise DataError(f"{ds.origin}: {what}: they cannot be scored as {split} images. "
                            f"Use the bundle's own split (--data {bundle.path / SPLIT_NAME}), "
                            "leave them out (--exclude-seen), or score them anyway with "
                            "--allow-contaminated (the report will say so)")
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
    summ["contaminated"] = contaminated
    summ["held_out"] = held_out_note
    ctx = {"bundle": bundle.label, "model status": bundle.status, "kind": bundle.kind,
           "data": ds.origin, "split": f"{split} ({len(samples)} images)",
           "held-out check": held_out_note, "data hash": h[:16],
           "device": device, "precision": clf.effective_precision, "date": now_iso()}
    history = None
    if bundle.path is not None and (bundle.path / "history.json").is_file():
        import json

        try:  # the training curves of a bundle trained here go into its reports too
            history = json.loads((bundle.path / "history.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            history = None
    title = report_title(bundle.name, split, bundle.status) + f" of {Path(ds.origin).name}"
    if contaminated:
        title = "CONTAMINATED — " + title
    write_report(out, metrics, title, ctx, history, samples, probs)
    own = bundle.provenance.get("eval_hash") == h and not contaminated
    key = re.sub(r"[^A-Za-z0-9_.-]", "_", f"{Path(ds.origin).name}:{split}:{h[:8]}")
    if record_evaluation(bundle, key, summ, own):
        reporter.note(f"metrics written into {bundle.path / 'manifest.json'}")
    reporter.info(f"{out}: {'CONTAMINATED ' if contaminated else ''}{split} accuracy "
                  f"{summ['accuracy']:.4f} ({summ['correct']} of {len(samples)} images), "
                  f"balanced accuracy {summ['balanced_accuracy']:.4f}, macro-F1 "
                  f"{summ['macro_f1']:.4f}")
    reporter.done(str(out), summ)
    return 0


def _count(samples) -> dict:
    out: dict[str, int] = {}
    for s in samples:
        out[s.label] = out.get(s.label, 0) + 1
    return out
