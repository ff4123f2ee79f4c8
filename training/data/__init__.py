"""Datasets for training and evaluation: folders, split manifests and review exports.

``load_dataset(spec)`` takes what ``--data`` names:

- a folder: the seed layout ``train|val|test/<class>/<image>``, BreakHis's own tree, or any
  ``<class>/<image>`` tree (then ``split`` or ``train`` splits it by patient); or a folder of
  PatchCamelyon's HDF5 files (official splits kept, training.data.pcam);
- a split manifest CSV written by ``python -m training split``;
- a review export ``clip_predictions.csv`` (tiles re-read from their slides).
"""

from __future__ import annotations

from pathlib import Path

from training.data.folders import filter_magnification, load_folder
from training.data.review_csv import is_review_csv, load_review_csv
from training.data.samples import SPLITS, Dataset, Sample, check_labels, data_hash, to_binary
from training.data.split import (
    check_disjoint,
    fold_dataset,
    read_manifest,
    split_dataset,
    write_manifest,
)
from training.errors import DataError

__all__ = [
    "SPLITS", "Dataset", "Sample", "check_disjoint", "data_hash", "filter_magnification",
    "fold_dataset",
    "load_dataset", "read_manifest", "split_dataset", "write_manifest",
]


def load_dataset(spec: str | Path, task: str = "subtype", magnification=None,
                 include_unreviewed: bool = False) -> Dataset:
    """The dataset ``spec`` names, labels rolled up for ``task="binary"``, filtered by
    magnification (BreakHis names)."""
    p = Path(spec).expanduser()
    if not p.exists():
        raise DataError(f"{p}: no such file or folder")
    if p.is_dir():
        from training.data.pcam import is_pcam, load_pcam

        ds = load_pcam(p) if is_pcam(p) else load_folder(p)
    elif p.suffix.lower() == ".csv":
        ds = load_review_csv(p, include_unreviewed) if is_review_csv(p) else read_manifest(p)
    else:
        raise DataError(f"{p}: not a dataset (expected a folder, a split manifest .csv or a "
                        "clip_predictions.csv review export)")
    if task == "binary":
        ds = to_binary(ds)
    elif task != "subtype":
        raise DataError(f"task {task!r}: expected subtype or binary")
    check_labels(ds, str(p))
    ds = filter_magnification(ds, magnification)
    return ds
