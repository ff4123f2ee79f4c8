"""A review export (clip_predictions.csv, schema in README.md) as a dataset.

Each row is a tile of a slide (source + level-0 tile_x/y/w/h, re-read from the slide by
coordinates) or a patch image (source = the image, coordinates empty). The label is the
reviewer's: a corrected row wins over a confirmed one for the same tile (several runs can
list one tile), and a confirmed row without a review_label takes the prediction it
confirmed. Left out unless asked (``include_unreviewed``: then the prediction is the label,
a pseudo-label): unreviewed rows. A team export (consensus_source column) is labelled by
consensus by default: the adjudicator's label, or the readers' where they all agree, or the
single reader's; disputed tiles (readers disagree, no adjudication) are left out and counted.
Always left out, and counted: rows labelled uncertain or
non_tissue (they are not classes a bundle can have), and rows whose tile_status is not "ok"
(tiles that could not be read have no pixels to learn from). The patient is the row's
patient column (the slide's patient, set in the window or with ``pvdesk review patient``),
else the source slide: a split never puts two slides of one patient, or tiles of one
slide, in two splits.
"""

from __future__ import annotations

import os
from pathlib import Path

from pvdesk.export.csv import read_predictions_csv
from pvdesk.slides import parse_breakhis_name
from pvdesk.taxonomy import NON_TISSUE, UNCERTAIN, Taxonomy
from training.data.samples import Dataset, Sample
from training.errors import DataError

RANK = {"adjudicated": 4, "unanimous": 3, "corrected": 2, "confirmed": 1, "unreviewed": 0}
CONSENSUS_SOURCES = ("adjudicated", "unanimous", "single")


def _team_label(row) -> tuple[str, str] | None:
    """(status, label) of a team row: "adjudicated"/"unanimous" consensus, or a single
    reader's label as "confirmed" (the model's prediction) or "corrected"; ("disputed", "")
    where readers disagree; None without a consensus source (nobody reviewed the tile, or
    the row comes from a file without team columns): the review columns then decide."""
    source = (row.get("consensus_source") or "").strip().lower()
    label = (row.get("consensus_label") or "").strip()
    if source == "disputed":
        return "disputed", ""
    if not source:
        return None
    if source not in CONSENSUS_SOURCES or not label:
        raise ValueError(f"unknown consensus_source {source!r}" if source not in
                         CONSENSUS_SOURCES else "consensus_label is empty")
    if source == "single":
        return ("confirmed" if label == (row.get("predicted") or "").strip()
                else "corrected"), label
    return source, label


def models_text(rows) -> str:
    """The models a review CSV's rows came from, each with the weights sha256 prefix its
    rows give (model_sha256) and its row count: "m@1 [weights sha256 0123...] (40 rows)"."""
    from pvdesk.export.csv_import import model_text

    counts: dict[tuple[str, str], int] = {}
    for row in rows:
        key = (row.get("model") or "unnamed", row.get("model_sha256") or "")
        counts[key] = counts.get(key, 0) + 1
    return "; ".join(f"{model_text(m, sha)} ({n} rows)" for (m, sha), n in counts.items()
                     ) or "no model"


def is_review_csv(path: Path) -> bool:
    try:
        with open(path, encoding="utf-8-sig") as fh:
            head = fh.readline()
    except OSError:
        return False
    return head.startswith("source,tile_x,tile_y")


def _resolve(source: str, folder: Path) -> Path:
    p = Path(os.path.expanduser(source))
    if p.is_absolute():
        return p
    for base in (folder, Path.cwd()):
        if (base / p).exists():
            return (base / p).resolve()
    return (folder / p).resolve()


def load_review_csv(path: str | Path, include_unreviewed: bool = False,
                    consensus: bool = True) -> Dataset:
    """``consensus``: label a team export by its consensus columns (when present)."""
    path = Path(path).expanduser()
    table = read_predictions_csv(path)  # raises ExportError (a PvdeskError) naming the file
    team = consensus and bool(table.rows) and "consensus_source" in table.rows[0]
    folder = path.parent.resolve()
    # the classes are the file's p_<class> columns: BreakHis names (with their codes and
    # aliases) or a custom taxonomy's, kept in the file's order
    taxonomy = Taxonomy.for_classes(table.classes) if table.classes else Taxonomy.breakhis()
    best: dict[tuple, tuple[int, Sample]] = {}
    skipped = {"unreviewed": 0, UNCERTAIN: 0, NON_TISSUE: 0, "unreadable": 0, "disputed": 0}
    missing: set[str] = set()
    for i, row in enumerate(table.rows, start=2):
        if row.get("tile_status", "ok") != "ok":
            skipped["unreadable"] += 1
            continue
        status = (row.get("review_status") or "unreviewed").strip().lower()
        if status not in RANK:
            raise DataError(f"{path}: line {i}: unknown review_status {status!r}")
        decided = None
        if team:
            try:
                decided = _team_label(row)
            except ValueError as exc:
                raise DataError(f"{path}: line {i}: {exc}") from None
            if decided is not None and decided[0] == "disputed":
                skipped["disputed"] += 1
                continue
            if decided is not None:
                status = decided[0]
        if status == "unreviewed" and not include_unreviewed:
            skipped["unreviewed"] += 1
            continue
        raw = (row.get("review_label") or "").strip() if status != "unreviewed" else ""
        if decided is not None:
            raw = decided[1]
        raw = raw or (row.get("predicted") or "").strip()
        if raw.lower() in (UNCERTAIN, NON_TISSUE):
            skipped[raw.lower()] += 1
            continue
        try:
            label = taxonomy.normalise(raw)
        except KeyError:
            raise DataError(f"{path}: line {i}: unknown label {raw!r} (the file's classes: "
                            f"{', '.join(table.classes) or 'none'})") from None
        src = _resolve(row["source"] or "", folder)
        if not src.exists():
            missing.add(str(src))
            continue
        coords = [row.get(k) for k in ("tile_x", "tile_y", "tile_w", "tile_h")]
        if any(c is None for c in coords) and any(c is not None for c in coords):
            raise DataError(f"{path}: line {i}: partial tile coordinates")
        region = None if coords[0] is None else tuple(int(c) for c in coords)
        if region is not None and (region[2] <= 0 or region[3] <= 0):
            raise DataError(f"{path}: line {i}: tile_w and tile_h must be positive")
        bh = parse_breakhis_name(src.stem) if region is None else None
        patient = (f"patient:{row['patient']}" if row.get("patient")
                   else f"slide:{src}" if region is not None else (bh.patient if bh else None))
        source = "pseudo" if status == "unreviewed" else status
        s = Sample(str(src), label, patient, bh.magnification if bh else None, None, region,
                   row.get("mpp"), source)
        key = (s.path, region)
        rank = RANK[status]
        if key not in best or rank > best[key][0]:
            best[key] = (rank, s)
    samples = [s for _, s in best.values()]
    if missing:
        first = sorted(missing)[0]
        raise DataError(f"{path}: {len(missing)} source file(s) not found, e.g. {first} (move "
                        "the slides back or edit the source column)")
    if not samples:
        raise DataError(f"{path}: no usable rows ({skipped['unreviewed']} unreviewed, "
                        f"{skipped[UNCERTAIN]} uncertain, {skipped[NON_TISSUE]} non-tissue; "
                        "review some tiles, or pass --include-unreviewed)")
    ds = Dataset(samples, str(path.resolve()), "review-csv",
                 class_order=None if taxonomy.is_breakhis else list(taxonomy.names))
    ds.notes.append(f"{path.name}: predictions by {models_text(table.rows)}")
    left = ", ".join(f"{n} {k}" for k, n in skipped.items() if n)
    if left:
        ds.notes.append(f"{path.name}: left out {left} row(s)")
    if include_unreviewed:
        ds.warnings.append(f"{path.name}: unreviewed rows are labelled by the model's own "
                           "prediction (pseudo-labels)")
    return ds
