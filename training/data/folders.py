"""Folder datasets: the seed layout ``train|val|test/<class>/<image>``, BreakHis's own tree,
or any ``<class>/<image>`` tree.

Labels come from the nearest folder named after a class (``ductal_carcinoma``, ``DC``,
``Ductal carcinoma`` ...), else from a BreakHis file name
(``SOB_<B|M>_<code>-<year>-<patient>-<mag>-<seq>``), which also gives the patient and the
magnification. BreakHis's own tree (``.../benign/SOB/adenosis/SOB_B_A_14-22549AB/40X/...``)
is read through the file names. Images with no label are left out and counted in a warning.
"""

from __future__ import annotations

from pathlib import Path

from pvdesk.slides import scan_patches
from training.data.samples import SPLITS, Dataset, Sample
from training.errors import DataError

SPLIT_ALIASES = {"train": "train", "training": "train", "val": "val", "valid": "val",
                 "validation": "val", "test": "test", "testing": "test"}


def split_folders(root: Path) -> dict[str, Path]:
    """{split: folder} for the seed layout (sub-folders named train / val / test)."""
    found: dict[str, Path] = {}
    for p in sorted(root.iterdir()):
        name = SPLIT_ALIASES.get(p.name.lower())
        if p.is_dir() and name and name not in found:
            found[name] = p
    return found


def _samples(root: Path, split: str | None) -> tuple[list[Sample], int, set[str]]:
    out, unlabelled, kinds = [], 0, set()
    for patch in scan_patches(root):
        label = patch.label
        if label is None:
            unlabelled += 1
            continue
        bh = patch.breakhis
        kinds.add("breakhis" if bh else "folder")
        out.append(Sample(str(patch.path.resolve()), label, bh.patient if bh else None,
                          bh.magnification if bh else None, split))
    return out, unlabelled, kinds


def load_folder(root: str | Path) -> Dataset:
    """Every labelled image under ``root``, with splits when the folder has them."""
    root = Path(root).expanduser()
    if not root.exists():
        raise DataError(f"{root}: no such folder")
    if not root.is_dir():
        raise DataError(f"{root}: not a folder, a split manifest (.csv) or a review export")
    splits = split_folders(root)
    samples: list[Sample] = []
    unlabelled = 0
    kinds: set[str] = set()
    if splits:
        for name in SPLITS:
            if name in splits:
                got, bad, k = _samples(splits[name], name)
                samples += got
                unlabelled += bad
                kinds |= k
    else:
        samples, unlabelled, kinds = _samples(root, None)
    if not samples:
        raise DataError(f"{root}: no labelled images found (expected <class>/<image> folders, "
                        "train|val|test/<class>/<image>, or BreakHis file names)")
    kind = "seed" if splits else ("breakhis" if kinds == {"breakhis"} else "folder")
    ds = Dataset(samples, str(root.resolve()), kind)
    if unlabelled:
        ds.warnings.append(f"{root}: {unlabelled} image(s) have no class (no class folder, no "
                           "BreakHis name) and were left out")
    if splits and set(splits) != set(SPLITS):
        missing = ", ".join(s for s in SPLITS if s not in splits)
        ds.notes.append(f"{root}: no {missing} folder")
    return ds


def filter_magnification(ds: Dataset, mags: list[int] | None) -> Dataset:
    """Only images at the given magnifications (from BreakHis names)."""
    if not mags:
        return ds
    keep = [s for s in ds.samples if s.magnification in mags]
    unknown = sum(1 for s in ds.samples if s.magnification is None)
    out = ds.with_samples(keep)
    shown = ", ".join(f"{m}X" for m in mags)
    out.notes.append(f"magnification filter {shown}: kept {len(keep)} of {len(ds)} images")
    if unknown:
        out.warnings.append(f"{unknown} image(s) have no magnification in their name and were "
                            f"left out by the {shown} filter")
    if not keep:
        raise DataError(f"{ds.origin}: no images at {shown}")
    return out
