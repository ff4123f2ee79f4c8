"""PatchCamelyon (PCam): 96 x 96 px patches of lymph-node sections, tumour or normal.

``--data`` names the folder that holds PCam's HDF5 files as distributed::

    camelyonpatch_level_2_split_{train,valid,test}_x.h5   # "x": (N, 96, 96, 3) uint8 RGB
    camelyonpatch_level_2_split_{train,valid,test}_y.h5   # "y": (N, 1, 1, 1) 0/1

The official splits are kept (valid is pvdesk's val). Labels: 1 = ``tumor``, 0 = ``normal``.
When PCam's ``..._meta.csv`` files are beside them, their ``wsi`` column (the source slide)
becomes the sample's patient. Only the labels are read here; the patches are read lazily,
one at a time, by the sample reader (training.data.source), from an open HDF5 handle per
reader thread.
"""

from __future__ import annotations

import csv
from pathlib import Path

from pvdesk import heavy
from training.data.samples import Dataset, Sample
from training.errors import DataError

PREFIX = "camelyonpatch_level_2_split_"
SPLITS = {"train": "train", "valid": "val", "test": "test"}
LABELS = ("normal", "tumor")  # y = 0, y = 1
PATCH_PX = 96
# PCam's patches come from Camelyon16 slides (0.243 um/px) at level 2 (4x down): ~0.97 um/px
TILE_UM = round(PATCH_PX * 0.243 * 4, 1)


def x_file(folder: Path, split: str) -> Path:
    return folder / f"{PREFIX}{split}_x.h5"


def _gz(f: Path) -> Path:
    return f.with_name(f.name + ".gz")


def _present(folder: Path, split: str) -> bool:
    """The split's patches file is there (or its .gz archive)."""
    x = x_file(folder, split)
    return x.exists() or _gz(x).exists()


def is_pcam(folder: Path) -> bool:
    """True when the folder holds PCam's files (or their .gz archives)."""
    return any(_present(folder, s) for s in SPLITS)


def _dataset(h5, path: Path, name: str, shape_tail: tuple):
    ds = h5.get(name)
    if ds is None or not hasattr(ds, "shape"):
        raise DataError(f"{path}: no '{name}' dataset (not a PCam file)")
    if tuple(ds.shape[1:]) != shape_tail or len(ds.shape) != 1 + len(shape_tail):
        raise DataError(f"{path}: '{name}' has shape {tuple(ds.shape)}, expected "
                        f"(N, {', '.join(str(v) for v in shape_tail)})")
    return ds


def _open(path: Path):
    h5py = heavy.h5py()
    try:
        return h5py.File(path, "r")
    except OSError as exc:
        raise DataError(f"{path}: not a readable HDF5 file ({' '.join(str(exc).split())[:160]})"
                        ) from None


def _labels(folder: Path, split: str) -> tuple[Path, list[int]]:
    x, y = x_file(folder, split), folder / f"{PREFIX}{split}_y.h5"
    for f in (x, y):
        if not f.is_file():
            gz = _gz(f)
            hint = f" (decompress {gz.name} first: gunzip -k {gz})" if gz.exists() else ""
            raise DataError(f"{f}: missing{hint}")
    with _open(x) as hx:
        xs = _dataset(hx, x, "x", (PATCH_PX, PATCH_PX, 3))
        n = xs.shape[0]
        if xs.dtype != "uint8":
            raise DataError(f"{x}: 'x' holds {xs.dtype}, expected uint8 pixels")
    with _open(y) as hy:
        ys = _dataset(hy, y, "y", (1, 1, 1))
        if ys.shape[0] != n:
            raise DataError(f"{y}: {ys.shape[0]} labels for {n} patches in {x.name}")
        labels = ys[...].reshape(-1).tolist()
    bad = next((v for v in labels if v not in (0, 1)), None)
    if bad is not None:
        raise DataError(f"{y}: label {bad!r} is not 0 (normal) or 1 (tumor)")
    return x, labels


def _slides(folder: Path, split: str, n: int) -> list[str | None]:
    meta = folder / f"{PREFIX}{split}_meta.csv"
    if not meta.is_file():
        return [None] * n
    with open(meta, encoding="utf-8", newline="") as fh:
        rows = [r.get("wsi") or None for r in csv.DictReader(fh)]
    return rows if len(rows) == n else [None] * n


def load_pcam(folder: str | Path) -> Dataset:
    """PCam's official splits as a Dataset (labels read, patches left on disk)."""
    folder = Path(folder).expanduser()
    samples: list[Sample] = []
    found = []
    for name, split in SPLITS.items():
        if not _present(folder, name):
            continue
        x, labels = _labels(folder, name)
        slides = _slides(folder, name, len(labels))
        path = str(x.resolve())
        samples += [Sample(path, LABELS[v], slides[i], None, split, index=i)
                    for i, v in enumerate(labels)]
        found.append(split)
    if not samples:
        raise DataError(f"{folder}: no PCam patches ({PREFIX}{{train,valid,test}}_x.h5)")
    ds = Dataset(samples, str(folder.resolve()), "pcam", tile_um=TILE_UM)
    ds.notes.append(f"PatchCamelyon: official splits {', '.join(found)} kept; "
                    f"{PATCH_PX} px patches (~{TILE_UM:g} um), labels {', '.join(LABELS)}")
    if not all(s.patient for s in samples):
        ds.notes.append("no PCam meta CSV (wsi column) beside the files: patients unknown")
    return ds
