"""Samples and datasets: what every data source (folders, manifests, review CSVs) becomes.

A Sample is one image to learn from: a patch image file, or a level-0 region of a slide
(``region`` = x, y, w, h) re-read from the slide by coordinates. Labels are taxonomy names
(a subtype, or benign/malignant for binary tasks). ``patient`` groups samples that must not
be split apart (the BreakHis patient, or the slide a review tile came from).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from pathlib import Path

from pvdesk.taxonomy import CLASS_NAMES, GROUPS, group_of

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class Sample:
    path: str  # absolute path of the image, or of the slide for a region
    label: str
    patient: str | None = None
    magnification: int | None = None
    split: str | None = None
    region: tuple[int, int, int, int] | None = None  # level-0 x, y, w, h
    mpp: float | None = None
    # where a review export's label came from: "confirmed" (a model prediction the reviewer
    # confirmed), "corrected" (the reviewer's own) or "pseudo" (an unreviewed prediction)
    label_source: str | None = None
    # the patch's position in a file that holds many (PatchCamelyon's HDF5 files)
    index: int | None = None

    @property
    def key(self) -> str:
        """Unique within a dataset: the path, plus the region for slide tiles (or the index
        for a patch inside a file of many)."""
        if self.index is not None:
            return f"{self.path}#{self.index}"
        if self.region is None:
            return self.path
        return f"{self.path}@{','.join(str(v) for v in self.region)}"

    @property
    def name(self) -> str:
        """Short display name (file name, plus region)."""
        n = Path(self.path).name
        if self.index is not None:
            return f"{n}#{self.index}"
        return n if self.region is None else f"{n}@{self.region[0]},{self.region[1]}"


@dataclass
class Dataset:
    samples: list[Sample]
    origin: str  # the folder or file it came from
    kind: str  # seed | folder | breakhis | manifest | review-csv
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    tile_um: float | None = None  # the field of view of its patches, when the source says
    # a custom taxonomy's class order, when the source gives one (a review export's p_
    # columns); otherwise BreakHis order, or sorted names
    class_order: list[str] | None = None

    def __len__(self) -> int:
        return len(self.samples)

    @property
    def classes(self) -> list[str]:
        """Labels present, in taxonomy order (subtypes, or the two groups)."""
        present = {s.label for s in self.samples}
        if self.class_order:
            known = [c for c in self.class_order if c in present]
            return known + sorted(present - set(known))
        if not present <= set(GROUPS) and not present <= set(CLASS_NAMES):
            return sorted(present)  # a custom taxonomy (PCam: normal, tumor)
        order = GROUPS if present <= set(GROUPS) else CLASS_NAMES
        return [c for c in order if c in present]

    @property
    def has_splits(self) -> bool:
        return any(s.split for s in self.samples)

    @property
    def patients_known(self) -> bool:
        return bool(self.samples) and all(s.patient for s in self.samples)

    def split(self, name: str) -> list[Sample]:
        return [s for s in self.samples if s.split == name]

    def counts(self) -> dict[str, dict[str, int]]:
        """{split or "all": {class: images}}."""
        out: dict[str, dict[str, int]] = {}
        for s in self.samples:
            d = out.setdefault(s.split or "all", {})
            d[s.label] = d.get(s.label, 0) + 1
        return out

    def label_sources(self, split: str | None = None) -> dict[str, int]:
        """{confirmed|corrected|pseudo: images} of the samples (of ``split``) whose label
        source is known (review exports); empty otherwise."""
        out: dict[str, int] = {}
        for s in self.samples:
            if s.label_source and (split is None or s.split == split):
                out[s.label_source] = out.get(s.label_source, 0) + 1
        return out

    def with_samples(self, samples: list[Sample]) -> Dataset:
        return Dataset(samples, self.origin, self.kind, list(self.warnings), list(self.notes),
                       self.tile_um, self.class_order)


def label_indices(samples: list[Sample], classes: list[str]):
    """Class indices (int64 array) of ``samples`` in ``classes`` order."""
    import numpy as np

    return np.array([classes.index(s.label) for s in samples], dtype=np.int64)


def to_binary(ds: Dataset) -> Dataset:
    """Every label rolled up to benign/malignant."""
    return ds.with_samples([replace(s, label=group_of(s.label)) for s in ds.samples])


def check_labels(ds: Dataset, where: str) -> None:
    from training.errors import DataError

    labels = {s.label for s in ds.samples}
    if labels & set(GROUPS) and labels - set(GROUPS):
        raise DataError(f"{where}: mixes subtype labels with benign/malignant labels "
                        "(train a binary model with --task binary)")


def data_hash(samples: list[Sample]) -> str:
    """sha256 of the data manifest: every sample's key, label, patient, split and file size."""
    import os

    h = hashlib.sha256()
    root = os.path.commonpath([os.path.dirname(s.path) for s in samples]) if samples else ""
    rows = []
    for s in samples:
        try:
            size = Path(s.path).stat().st_size
        except OSError:
            size = -1
        rel = Path(os.path.relpath(s.path, root)).as_posix()
        region = ",".join(str(v) for v in s.region) if s.region else (
            f"#{s.index}" if s.index is not None else "")
        rows.append("\t".join([rel, region, s.label, s.patient or "", s.split or "", str(size)]))
    for row in sorted(rows):
        h.update(row.encode() + b"\n")
    return h.hexdigest()
