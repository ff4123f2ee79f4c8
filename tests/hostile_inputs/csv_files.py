"""Hostile predictions CSV files: bad cells (huge numbers, NaN, sums not 1, formulas) and
bad files (empty, binary, no line breaks, FIFOs, folders)."""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

import numpy as np

from .common import HAS_FIFO, make_fifo

CSV_CLASSES = ["benign", "malignant"]


def csv_row(**over) -> dict:
    row = {"source": "/slides/a.svs", "tile_x": 0, "tile_y": 0, "tile_w": 224, "tile_h": 224,
           "mpp": 0.5, "model": "m@1", "predicted": "malignant", "predicted_group": "malignant",
           "confidence": 0.75, "p_benign": 0.25, "p_malignant": 0.75,
           "review_status": "unreviewed", "review_label": "", "reviewer": "",
           "reviewed_at": ""}
    row.update(over)
    return row


def write_csv(path: Path, rows: list[dict]) -> Path:
    from pvdesk.export.csv import columns

    cols = columns(CSV_CLASSES)
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(cols)
    for r in rows:
        w.writerow([r.get(c, "") for c in cols])
    path.write_text(buf.getvalue())
    return path


BAD_CSV_CELLS = {
    "30-digit tile_x": {"tile_x": "9" * 30},
    "5000-digit tile_y": {"tile_y": "1" * 5000},
    "tile_x 2^60": {"tile_x": str(1 << 60)},
    "p inf": {"p_benign": "inf", "p_malignant": "0"},
    "p -inf": {"p_benign": "-inf"},
    "p nan": {"p_benign": "nan"},
    "p 1e999": {"p_malignant": "1e999"},
    "p -5": {"p_benign": "-5", "p_malignant": "6"},
    "p 1.5": {"p_benign": "1.5", "p_malignant": "-0.5"},
    "sum 0.5": {"p_benign": "0.25", "p_malignant": "0.25"},
    "sum 2": {"p_benign": "1", "p_malignant": "1"},
    "tile_w 0": {"tile_w": "0"},
    "tile_h -3": {"tile_h": "-3"},
    "partial coordinates": {"tile_y": ""},
    "missing probability": {"p_benign": ""},
    "mpp 0": {"mpp": "0"},
    "mpp nan": {"mpp": "nan"},
    "confidence 7": {"confidence": "7"},
    "unknown status": {"review_status": "maybe"},
    "formula label": {"review_status": "corrected", "review_label": "=cmd|' /C calc'!A0"},
    "text in tile_x": {"tile_x": "twelve"},
    "empty source": {"source": ""},
    "float tile_x": {"tile_x": "1.5"},
    "formula model_sha256": {"model_sha256": "=cmd|' /C calc'!A0"},
    "non-hex model_sha256": {"model_sha256": "not-a-sha-at-all"},
}


def csv_inputs(root: Path) -> dict[str, Path]:
    """name -> a predictions CSV that ``review import`` must refuse (nothing imported)."""
    from pvdesk.export.csv import columns

    root.mkdir(parents=True, exist_ok=True)
    out: dict[str, Path] = {}
    good = [csv_row(tile_x=224 * i) for i in range(5)]
    for name, over in BAD_CSV_CELLS.items():
        rows = [dict(r) for r in good]
        rows[3].update(over)
        out[name] = write_csv(root / f"{name.replace(' ', '_')}.csv", rows)
    header = ",".join(columns(CSV_CLASSES))

    def file(name: str, data: bytes) -> None:
        p = root / name
        p.write_bytes(data)
        out[name] = p

    file("empty.csv", b"")
    file("not-utf8.csv", b"\xff\xfe\x00\x01" * 100)
    file("nul.csv", (header + "\n" + "a\x00b," * 21 + "x\n").encode())
    file("no-line-breaks.csv", (header + "\n").encode() + b"a" * (3 << 20))
    file("huge-field.csv", (header + '\n"' + "x" * 400_000 + '"' + ",1" * 20 + "\n").encode())
    file("wrong-header.csv", b"source,x,y\n1,2,3\n")
    file("short-row.csv", (header + "\n1,2,3\n").encode())
    file("duplicate-column.csv", (header + ",p_benign\n").encode())
    file("binary.csv", np.random.default_rng(10).bytes(20000))
    if HAS_FIFO:
        out["FIFO"] = make_fifo(root / "fifo.csv")
    if os.path.exists("/dev/zero"):
        out["/dev/zero"] = Path("/dev/zero")
    d = root / "folder.csv"
    d.mkdir()
    out["folder"] = d
    return out


def good_csv(path: Path) -> Path:
    return write_csv(path, [csv_row(tile_x=224 * i) for i in range(5)])
