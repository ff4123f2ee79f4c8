"""Patient-disjoint, class-stratified train/val/test splits, and the split manifest CSV.

Splitting works on groups: the patient when it is known (BreakHis names, the slide of a
review tile), else each image on its own (and a warning says that patient-disjointness
cannot be checked). Each group goes wholly to one split, so no patient is in two splits.

Per class (a group's class is its most frequent label), groups are shuffled with the seed
and dealt in that shuffled order: the first ones give every split one group (with fewer
groups than splits, train is served first, then test, then val), then each group goes to
the split whose image count is furthest below its target fraction. The seed decides which
patients go where, whatever their size (sorting by size, as before, sent the smallest
patients to test whatever the seed). A class that ends up missing from a split gets a loud
warning naming it, or, with ``strict``, the split is refused.

:func:`fold_dataset` gives patient-level k-fold cross-validation: StratifiedGroupKFold
(scikit-learn) deals shuffled patients into K test folds, stratified by class; within the
rest, validation patients are dealt as above.

The manifest is a CSV, one row per image, no copies of the images::

    path, x, y, w, h, mpp, label, patient, magnification, split

``path`` is relative to the manifest's folder when the image lies under it, else absolute;
x/y/w/h (level-0 px) and mpp are empty for patch images.
"""

from __future__ import annotations

import csv
import os
import random
from collections import Counter, defaultdict
from dataclasses import replace
from pathlib import Path

from pvdesk.export.atomic import atomic_write
from training.data.samples import SPLITS, Dataset, Sample
from training.errors import DataError

COLUMNS = ("path", "x", "y", "w", "h", "mpp", "label", "patient", "magnification", "split")
DEFAULT_FRACTIONS = (0.7, 0.15, 0.15)


def _group_key(s: Sample, unit: str) -> str:
    if unit == "patient" and s.patient:
        return f"patient:{s.patient}"
    return f"image:{s.key}"


def _deal(groups: list[tuple[str, int]], fractions, rng: random.Random) -> dict[str, str]:
    """{group: split} for one class's groups (name, image count)."""
    rng.shuffle(groups)
    frac = dict(zip(SPLITS, fractions, strict=True))
    wanted = [s for s in ("train", "test", "val") if frac[s] > 0]  # priority when short
    out: dict[str, str] = {}
    if len(groups) < len(wanted):  # train first, then test, then val
        for (g, _), split in zip(groups, wanted, strict=False):
            out[g] = split
        return out
    total = sum(c for _, c in groups)
    have = dict.fromkeys(SPLITS, 0)
    # in the shuffled order: one group for each wanted split, then by deficit
    for (g, c), split in zip(groups, wanted, strict=False):
        out[g] = split
        have[split] += c
    for g, c in groups[len(wanted):]:
        split = max(SPLITS, key=lambda s: (frac[s] * total - have[s], s == "train"))
        out[g] = split
        have[split] += c
    return out


def split_dataset(ds: Dataset, fractions=DEFAULT_FRACTIONS, seed: int = 0,
                  strict: bool = False, unit: str = "patient") -> Dataset:
    """A copy of ``ds`` with every sample's split set (existing splits are replaced)."""
    if len(fractions) != 3 or any(f < 0 for f in fractions) or sum(fractions) <= 0:
        raise DataError(f"split fractions {fractions}: need three non-negative numbers")
    total = float(sum(fractions))
    fractions = tuple(f / total for f in fractions)
    groups: dict[str, list[Sample]] = defaultdict(list)
    for s in ds.samples:
        groups[_group_key(s, unit)].append(s)
    by_class: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for g, members in groups.items():
        label = Counter(m.label for m in members).most_common(1)[0][0]
        by_class[label].append((g, len(members)))
    out = ds.with_samples([])
    if unit == "patient" and not ds.patients_known:
        unknown = sum(1 for s in ds.samples if not s.patient)
        out.warnings.append(f"{ds.origin}: {unknown} image(s) have no known patient; each is "
                            "split on its own, so the same patient may be in train and test")
    elif unit == "image":
        out.warnings.append(f"{ds.origin}: splitting by image (--split-unit image): images of "
                            "one patient or slide can be in train and test, so test scores "
                            "are optimistic")
    rng = random.Random(seed)
    assign: dict[str, str] = {}
    for label in ds.classes:
        assign.update(_deal(sorted(by_class[label]), fractions, rng))
    out.samples = [replace(s, split=assign[_group_key(s, unit)]) for s in ds.samples]
    wanted = [s for s, f in zip(SPLITS, fractions, strict=True) if f > 0]
    short = []
    for label in ds.classes:
        where = {s.split for s in out.samples if s.label == label}
        missing = [s for s in wanted if s not in where]
        if missing:
            n = len({_group_key(s, unit) for s in ds.samples if s.label == label})
            short.append(f"{label} ({n}; not in {'/'.join(missing)})")
    if short:
        what = "patients" if unit == "patient" and ds.patients_known else "groups"
        msg = (f"{ds.origin}: too few {what} to put every class in "
               f"{', '.join(wanted)}: {', '.join(short)}")
        if strict:
            raise DataError(msg + "; refused (--strict)")
        out.warnings.append(msg)
    out.notes.append(f"split by {unit} (seed {seed}, fractions "
                     f"{'/'.join(f'{f:.2f}' for f in fractions)})")
    return out


def fold_dataset(ds: Dataset, folds: int, seed: int = 0, val_fraction: float = 0.15,
                 unit: str = "patient") -> list[Dataset]:
    """Patient-level k-fold cross-validation: ``folds`` copies of ``ds``; in copy i, fold i
    is the test split (each group is tested exactly once), validation groups are dealt
    from the rest (``val_fraction`` of the images, per class) and the others train. Folds
    come from scikit-learn's StratifiedGroupKFold on shuffled groups, stratified by class."""
    import warnings

    import numpy as np
    from sklearn.model_selection import StratifiedGroupKFold

    if folds < 2:
        raise DataError(f"--folds {folds}: at least 2 folds are needed")
    keys = [_group_key(s, unit) for s in ds.samples]
    n_groups = len(set(keys))
    if n_groups < folds:
        raise DataError(f"{ds.origin}: {n_groups} patients (or images) for {folds} folds; "
                        "use fewer folds")
    y = [s.label for s in ds.samples]
    sgkf = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a class with fewer groups than folds: said below
        tests = [set(np.asarray(keys)[b].tolist())
                 for _, b in sgkf.split(np.zeros(len(y)), y, keys)]
    out = []
    rng = random.Random(seed)
    for i, test_keys in enumerate(tests, start=1):
        rest = [s for s, k in zip(ds.samples, keys, strict=True) if k not in test_keys]
        by_class: dict[str, list[tuple[str, int]]] = defaultdict(list)
        sizes = Counter(_group_key(s, unit) for s in rest)
        first: dict[str, str] = {}
        for s in rest:
            first.setdefault(_group_key(s, unit), s.label)
        for g, label in first.items():
            by_class[label].append((g, sizes[g]))
        assign: dict[str, str] = {}
        for label in sorted(by_class):
            assign.update(_deal(sorted(by_class[label]), (1 - val_fraction, val_fraction, 0.0),
                                rng))
        fold = ds.with_samples([replace(s, split="test" if k in test_keys else assign[k])
                                for s, k in zip(ds.samples, keys, strict=True)])
        missing = sorted(set(ds.classes) - {s.label for s in fold.samples if s.split == "test"})
        if missing:
            fold.warnings.append(f"fold {i}: no test images of {', '.join(missing)} (too few "
                                 "patients for every fold)")
        fold.notes.append(f"fold {i} of {folds} (seed {seed}): {len(test_keys)} test groups")
        out.append(fold)
    return out


def check_disjoint(ds: Dataset) -> list[str]:
    """Patients found in more than one split (empty when the split is patient-disjoint)."""
    where: dict[str, set[str]] = defaultdict(set)
    for s in ds.samples:
        if s.patient and s.split:
            where[s.patient].add(s.split)
    return sorted(p for p, splits in where.items() if len(splits) > 1)


def _cell(v) -> str:
    return "" if v is None else str(v)


def write_manifest(path: str | Path, ds: Dataset) -> Path:
    """Write the split manifest CSV atomically; paths relative to its folder where possible."""
    path = Path(path).expanduser()
    folder = path.parent.resolve()
    if not folder.is_dir():
        raise DataError(f"{path}: the folder {path.parent} does not exist")
    sources = any(s.label_source for s in ds.samples)  # a review export: keep where labels came from
    indexed = any(s.index is not None for s in ds.samples)  # patches inside a file (PCam)
    with atomic_write(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(COLUMNS + (("label_source",) if sources else ())
                   + (("index",) if indexed else ()))
        for s in ds.samples:
            p = Path(s.path)
            try:
                shown = p.relative_to(folder).as_posix()
            except ValueError:
                shown = str(p)
            x, y, ww, hh = s.region if s.region else (None,) * 4
            w.writerow([shown, _cell(x), _cell(y), _cell(ww), _cell(hh), _cell(s.mpp), s.label,
                        _cell(s.patient), _cell(s.magnification), _cell(s.split)]
                       + ([_cell(s.label_source)] if sources else [])
                       + ([_cell(s.index)] if indexed else []))
    return path


def _int(path, line, col, v):
    if v == "":
        return None
    try:
        return int(v)
    except ValueError:
        raise DataError(f"{path}: line {line}: {col} is not an integer ({v[:30]!r})") from None


def read_manifest(path: str | Path, check_files: bool = True) -> Dataset:
    """Read a split manifest written by :func:`write_manifest` (or by hand). With
    ``check_files=False`` listed files need not exist (a bundle's record of what it was
    trained on, read to check an evaluation against it)."""
    from pvdesk.taxonomy import NAME_RE, normalise_name

    path = Path(path).expanduser()
    folder = path.parent.resolve()
    try:
        fh = open(path, encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror})") from None
    samples = []
    with fh:
        r = csv.DictReader(fh)
        if not r.fieldnames or not {"path", "label"} <= set(r.fieldnames):
            raise DataError(f"{path}: not a split manifest (needs columns {', '.join(COLUMNS)})")
        for row in r:
            line = r.line_num
            raw = (row.get("path") or "").strip()
            if not raw:
                raise DataError(f"{path}: line {line}: empty path")
            p = Path(os.path.expanduser(raw))
            p = p if p.is_absolute() else folder / p
            try:
                label = normalise_name(row.get("label") or "")
            except KeyError:
                label = (row.get("label") or "").strip()
                if not NAME_RE.fullmatch(label):  # nor a custom class name (tumor, stroma)
                    raise DataError(f"{path}: line {line}: unknown class "
                                    f"{row.get('label')!r}") from None
            split = (row.get("split") or "").strip() or None
            if split not in (None, *SPLITS):
                raise DataError(f"{path}: line {line}: split {split!r} is not train, val or test")
            region = tuple(_int(path, line, c, (row.get(c) or "").strip()) for c in "xywh")
            if any(v is None for v in region) and any(v is not None for v in region):
                raise DataError(f"{path}: line {line}: x, y, w, h must all be given or all empty")
            mpp = (row.get("mpp") or "").strip()
            try:
                mpp_v = float(mpp) if mpp else None
            except ValueError:
                raise DataError(f"{path}: line {line}: mpp is not a number ({mpp!r})") from None
            samples.append(Sample(str(p), label, (row.get("patient") or "").strip() or None,
                                  _int(path, line, "magnification",
                                       (row.get("magnification") or "").strip()),
                                  split, None if region[0] is None else region, mpp_v,
                                  (row.get("label_source") or "").strip() or None,
                                  _int(path, line, "index", (row.get("index") or "").strip())))
    if not samples:
        raise DataError(f"{path}: the manifest lists no images")
    missing = [s.path for s in samples if not Path(s.path).is_file()] if check_files else []
    if missing:
        raise DataError(f"{path}: {len(missing)} listed file(s) do not exist, e.g. {missing[0]}")
    return Dataset(samples, str(path.resolve()), "manifest")
