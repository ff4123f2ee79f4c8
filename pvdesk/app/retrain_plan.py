"""Retraining from the GUI, the Qt-free part: the command line for ``python -m training``.

The GUI never imports ``training``; it runs ``<python> -m training train ... --progress json``
as a child process. :class:`RetrainPlan` holds the user's choices and builds that command;
the defaults shown to the user mirror the training package's (``training/heads.py``
MlpConfig, ``training/train_resnet.py`` DEFAULTS: a test checks they agree).

Data: a folder dataset is passed as is; review exports (several CSVs, or this project's
store exported by :func:`pvdesk.export.csv.write_predictions_csv`) become one
``clip_predictions.csv`` under ``user_data_dir()/training-data`` (kept, so the bundle's
provenance names a file that still exists).
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from pvdesk.paths import user_data_dir, user_models_dir

HEADS = {  # kind -> (label, default epochs, default learning rate); None: not a setting
    "clip-linear": ("CLIP linear probe (logistic regression, C chosen on validation)",
                    None, None),
    "clip-mlp": ("CLIP MLP head (Linear, ReLU, Dropout, Linear)", 60, 1e-3),
    "resnet50": ("ResNet50 fine-tune (all layers)", 35, 1e-4),
}
DEFAULT_BACKBONE = {"clip-linear": "CLIP RN50, OpenAI weights", "clip-mlp":
                    "CLIP RN50, OpenAI weights", "resnet50": "ImageNet ResNet50"}
DEMO_BACKBONE = {"clip-linear": "demo-clip-rn50", "clip-mlp": "demo-clip-rn50",
                 "resnet50": "demo-resnet50"}
DATA_KINDS = ("store", "csv", "folder")


def training_data_dir() -> Path:
    return user_data_dir() / "training-data"


def stamp() -> str:
    return time.strftime("%Y%m%d-%H%M%S")


def default_out(head: str) -> Path:
    """A new bundle folder under the user's models folder (found by Run model)."""
    return user_models_dir() / f"retrained-{head}-{stamp()}"


def source_root() -> Path | None:
    """The folder holding the ``training`` package next to ``pvdesk`` (a source checkout),
    or None when it is installed (then ``python -m training`` finds it anyway)."""
    root = Path(__file__).resolve().parents[2]  # pvdesk/app/retrain_plan.py -> the checkout
    return root if (root / "training" / "__main__.py").is_file() else None


def child_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for the child: unbuffered, with the source tree on PYTHONPATH."""
    env = dict(os.environ if base is None else base)
    env["PYTHONUNBUFFERED"] = "1"
    root = source_root()
    if root is not None:
        parts = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
        if str(root) not in parts:
            env["PYTHONPATH"] = os.pathsep.join([str(root), *parts])
    return env


@dataclass
class RetrainPlan:
    data_kind: str  # "store", "csv" or "folder"
    data: str  # the folder, or the one CSV training reads (after merging/exporting)
    head: str = "clip-linear"
    backbone: str | None = None  # None: the training package's default for the head
    epochs: int | None = None  # None: the head's default
    lr: float | None = None
    out: str = ""
    device: str = "auto"
    include_unreviewed: bool = False
    split_by_image: bool = False  # tiles of one slide may land in train and test
    extra: list[str] = field(default_factory=list)  # e.g. ["--bootstrap", "100"]

    def __post_init__(self):
        if self.data_kind not in DATA_KINDS:
            raise ValueError(f"data kind {self.data_kind!r}: expected one of {DATA_KINDS}")
        if self.head not in HEADS:
            raise ValueError(f"head {self.head!r}: expected one of {', '.join(HEADS)}")
        if not self.out:
            self.out = str(default_out(self.head))

    def arguments(self) -> list[str]:
        """The arguments after ``python``: ``-m training train ...``."""
        args = ["-m", "training", "train", "--data", str(self.data), "--head", self.head,
                "--out", str(self.out), "--progress", "json", "--device", self.device]
        if self.backbone:
            args += ["--backbone", self.backbone]
        _, epochs, lr = HEADS[self.head]
        if self.epochs is not None and epochs is not None:
            args += ["--epochs", str(int(self.epochs))]
        if self.lr is not None and lr is not None:
            args += ["--lr", repr(float(self.lr))]
        if self.include_unreviewed and self.data_kind != "folder":
            args.append("--include-unreviewed")
        if self.split_by_image:
            args += ["--split-unit", "image"]
        # --watch-stdin: the child stops when our pipe closes, even if this process dies
        return args + ["--watch-stdin"] + list(self.extra)

    def command(self, python: str | None = None) -> list[str]:
        return [python or sys.executable, *self.arguments()]


def merge_csvs(paths, out: str | Path) -> int:
    """Several review exports as one CSV (union of classes; relative sources made absolute,
    as the training reader resolves them against each file's folder). Returns rows."""
    from pvdesk.export.csv import LABEL_BY, read_predictions_csv, team_columns, write_rows_csv

    classes: list[str] = []
    rows: list[dict] = []
    readers: set[str] = set()
    team = False
    for p in paths:
        p = Path(p).expanduser()
        table = read_predictions_csv(p)  # ExportError (a PvdeskError) names a bad file
        classes += [c for c in table.classes if c not in classes]
        for row in table.rows:
            src = row.get("source") or ""
            if src and not Path(src).expanduser().is_absolute():
                row["source"] = str((p.parent / src).resolve())
            team = team or "consensus_source" in row
            readers.update(k[len(LABEL_BY):] for k in row if k.startswith(LABEL_BY))
            rows.append(row)
    # team exports keep their consensus and per-reviewer columns (empty in other files' rows)
    return write_rows_csv(out, classes, rows, team_columns(sorted(readers)) if team else ())


def export_store(store, out: str | Path) -> int:
    """This project's tiles (reviewed or not: training picks the reviewed ones) as a CSV.

    ``store`` is a ReviewStore or its file; a store with a file is read through a
    connection of its own (WAL readers never wait on the app's writer thread)."""
    from pvdesk.export.csv import write_predictions_csv
    from pvdesk.review.store import ReviewStore

    path = Path(store) if isinstance(store, (str, Path)) else getattr(store, "path", None)
    if path is None:
        return write_predictions_csv(store, out)
    with ReviewStore(path, create=False) as own:
        return write_predictions_csv(own, out)


def prepare_data(kind: str, paths, store=None) -> str:
    """The one ``--data`` path for a data choice, writing the CSV when one is needed."""
    if kind == "folder":
        return str(Path(paths[0]).expanduser())
    if kind == "csv" and len(paths) == 1:
        return str(Path(paths[0]).expanduser())
    folder = training_data_dir()
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / f"{'reviewed' if kind == 'store' else 'merged'}-{stamp()}.csv"
    if kind == "store":
        if store is None:
            raise ValueError("no review store is open")
        export_store(store, out)
    else:
        merge_csvs(paths, out)
    return str(out)
