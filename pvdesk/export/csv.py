"""clip_predictions.csv: one row per tile or patch image (schema in README.md, "The CSV").

Columns, in order::

    source, tile_x, tile_y, tile_w, tile_h, mpp, model, predicted, predicted_group,
    confidence, p_<class> for every class (the run's order), review_status, review_label,
    reviewer, reviewed_at, tile_status, patient, model_sha256

tile_* are level-0 pixels (empty for a patch image); reviewed_at is ISO 8601 UTC.
tile_status is "ok", or "unreadable" for a tile whose pixels could not be read (damaged
image data): such a row has no prediction, so a reader of the file sees every tile of the
grid, not only those that could be classified. Files written before the column existed
read as all "ok"; readers that learn from rows (training, import) skip non-ok ones.
patient is the slide's patient (a study code set with ``pvdesk review patient`` or in the
window), so training splits keep one patient's slides together; older files lack it.
model_sha256 is which weights made the row: the first 16 hex characters of the sha256 the
bundle's manifest records for its own weights file (the ``lineage.files`` entry that
``pvdesk models`` prints). Empty when the bundle has no weights file of its own (zero-shot
CLIP on library weights, the random-weight demo bundles: their manifest, name and version
identify them) or its manifest records no sha, and for runs stored before pvdesk recorded it
(unknown, never guessed).
Files without the column read with it empty; a cell that is not 16 hex characters is refused
with its line.

Team columns (after model_sha256, or after patient in older files; only in exports of a
store where two or more reviewers decided tiles, or with ``pvdesk review export --team``):
consensus_label, consensus_source
("adjudicated", "unanimous" when two or more readers agree, "single" when one reader
labelled the tile, "disputed" when readers disagree and no adjudicator decided; empty when
nobody reviewed the tile), then one ``label_by:<reviewer>`` column per reviewer with that
reviewer's current label. Files without them still read.

Spreadsheet safety: a *text* cell (source, model, predicted, predicted_group, review_*,
reviewer, reviewed_at) that starts with ``= + - @``, a tab, a carriage return or a line
feed, or that reaches one of ``= + - @`` (or a full-width or small form such as ``＝``)
after leading spaces, line breaks or invisible characters, is written with a single quote
``'`` in front, so no spreadsheet evaluates it as a formula; a text cell that already starts
with ``'`` gets one more, so the rule is reversible. Reading is bounded (see
:mod:`pvdesk.export.csv_checks`): regular files only, bounded lines and rows, finite numbers
in range, the line number in every error. Numeric cells
(coordinates, mpp, confidence, probabilities) are formatted from numbers by the writer and
never prefixed (a negative number is not text). :func:`read_predictions_csv` removes one
leading quote from every text cell, so a file reads back exactly; the file is plain RFC 4180
CSV in UTF-8 that Python's csv module and pandas read (pandas shows the quote).

Writers:
- :func:`write_rows_csv(path, classes, rows)` writes row dicts, keyed by column name, without
  a store (``pvdesk predict --out``). A row may give ``probs`` (a sequence in ``classes``
  order) instead of the p_ columns; ``predicted``, ``predicted_group`` and ``confidence``
  are filled from it when missing, and ``review_status`` defaults to "unreviewed".
  :func:`prediction_row(tile_prediction, model)` makes such a dict from a TilePrediction.
- :func:`write_predictions_csv(store, path, run_id=None)` writes a review store's tiles with
  the reviewer columns filled (all runs when ``run_id`` is None; the p_ columns are then the
  union of the runs' classes, empty where a run lacks a class).
- :func:`import_csv(store, path)` reads such a file into a store (see csv_import).
All writes are atomic.
"""

from __future__ import annotations

import csv
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from typing import NamedTuple

from pvdesk.export import ExportError
from pvdesk.export import csv_checks as checks
from pvdesk.export.atomic import atomic_write
from pvdesk.taxonomy import group_of

HEAD = ("source", "tile_x", "tile_y", "tile_w", "tile_h", "mpp", "model", "predicted",
        "predicted_group", "confidence")
TAIL = ("review_status", "review_label", "reviewer", "reviewed_at")
STATUS = "tile_status"
PATIENT = "patient"  # the slide's patient (a study code), empty when not set
MODEL_SHA = "model_sha256"  # 16 hex characters of the weights' sha256; empty when unknown
OPTIONAL_TAIL = (STATUS, PATIENT, MODEL_SHA)  # later additions: files without them read
CONSENSUS_LABEL, CONSENSUS_SOURCE, LABEL_BY = "consensus_label", "consensus_source", "label_by:"
TEAM_HEAD = (CONSENSUS_LABEL, CONSENSUS_SOURCE)  # then label_by:<reviewer> columns
TILE_OK, TILE_UNREADABLE = "ok", "unreadable"
TEXT_COLUMNS = frozenset({"source", "model", "predicted", "predicted_group", *TAIL,
                          *OPTIONAL_TAIL})
INT_COLUMNS = frozenset({"tile_x", "tile_y", "tile_w", "tile_h"})
DANGEROUS = ("=", "+", "-", "@", "\t", "\r")
QUOTE = "'"


def columns(classes: Sequence[str], team: Sequence[str] = ()) -> list[str]:
    """The header; ``team``: the team columns (consensus and label_by:<reviewer>), if any."""
    return [*HEAD, *(f"p_{c}" for c in classes), *TAIL, *OPTIONAL_TAIL, *team]


def team_columns(reviewers: Sequence[str]) -> list[str]:
    return [*TEAM_HEAD, *(f"{LABEL_BY}{r}" for r in reviewers)]


def is_text(col: str) -> bool:
    return col in TEXT_COLUMNS or col in TEAM_HEAD or col.startswith(LABEL_BY)


def _formula_like(text: str) -> bool:
    """True when a spreadsheet could read ``text`` as a formula: it starts with = + - @, a
    tab, CR or LF, or reaches one of = + - @ (or a full-width or small form such as ＝)
    after leading spaces, line breaks or invisible characters."""
    if text.startswith(DANGEROUS) or text[:1] == "\n":
        return True
    for ch in text[:64]:
        if ch.isspace() or unicodedata.category(ch) in ("Cc", "Cf", "Zs", "Zl", "Zp"):
            continue
        return unicodedata.normalize("NFKC", ch)[:1] in ("=", "+", "-", "@")
    return False


def neutralise(text: str) -> str:
    """The cell written for a text value (quote-prefixed when a spreadsheet could run it)."""
    return QUOTE + text if text.startswith(QUOTE) or _formula_like(text) else text


def restore(cell: str) -> str:
    """The text value of a written text cell (inverse of :func:`neutralise`)."""
    return cell[1:] if cell.startswith(QUOTE) else cell


def _group(name, taxonomy=None) -> str:
    """The group of a predicted class (BreakHis unless ``taxonomy`` is given); "" when the
    taxonomy has no groups or does not know the class."""
    try:
        return ((taxonomy.group_of(name) if taxonomy is not None else group_of(name)) or ""
                ) if name else ""
    except KeyError:
        return ""


def _number(col: str, value) -> str:
    if value is None or value == "":
        return ""
    if isinstance(value, bool) or isinstance(value, (str, bytes)):
        raise ValueError(f"CSV column {col} needs a number, not {value!r}")
    return str(int(value)) if col in INT_COLUMNS else repr(float(value))


def _cells(cols: list[str], classes: Sequence[str], row: Mapping) -> list[str]:
    row = dict(row)
    probs = row.pop("probs", None)
    unknown = set(row) - set(cols)
    if unknown:
        raise ValueError(f"unknown CSV columns {sorted(unknown)}")
    if probs is not None:
        probs = [float(p) for p in probs]
        if len(probs) != len(classes):
            raise ValueError(f"{len(probs)} probabilities for {len(classes)} classes")
        for c, p in zip(classes, probs, strict=True):
            row.setdefault(f"p_{c}", p)
        if probs:
            row.setdefault("predicted", classes[max(range(len(probs)), key=probs.__getitem__)])
            row.setdefault("confidence", max(probs))
    row.setdefault("predicted_group", _group(row.get("predicted")))
    row.setdefault("review_status", "unreviewed")
    row.setdefault(STATUS, TILE_OK)
    out = []
    for col in cols:
        v = row.get(col)
        if is_text(col):
            out.append("" if v is None else neutralise(str(v)))
        else:
            out.append(_number(col, v))
    return out


def write_rows_csv(path, classes: Sequence[str], rows: Iterable[Mapping],
                   team: Sequence[str] = ()) -> int:
    """Write row dicts (see the module docstring) atomically; returns the row count.
    ``team``: team columns to add (:func:`team_columns`)."""
    cols = columns(classes, team)
    n = 0
    with atomic_write(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(cols)
        for row in rows:
            w.writerow(_cells(cols, classes, row))
            n += 1
    return n


def record_row(rec) -> dict:
    """A CSV row dict for a TileRecord of the review store (review_status as seen from the
    record's run: confirmed only where that run predicted the reviewer's label)."""
    from pvdesk.review.types import status_for_run

    row = {"source": rec.source, "tile_x": rec.tile_x, "tile_y": rec.tile_y,
           "tile_w": rec.tile_w, "tile_h": rec.tile_h, "mpp": rec.mpp, "model": rec.model,
           "predicted": rec.predicted, "predicted_group": _group(rec.predicted),
           "confidence": rec.confidence, "review_status": status_for_run(rec),
           "review_label": rec.label, "reviewer": rec.reviewer, "reviewed_at": rec.reviewed_at}
    row.update({f"p_{c}": p for c, p in zip(rec.classes, rec.probs, strict=True)})
    return row


def prediction_row(pred, model: str) -> dict:
    """A CSV row dict for a TilePrediction without a store (review columns empty)."""
    return {"source": pred.source, "tile_x": pred.tile_x, "tile_y": pred.tile_y,
            "tile_w": pred.tile_w, "tile_h": pred.tile_h, "mpp": pred.mpp, "model": model,
            "probs": list(pred.probs)}


def store_classes(store, run_id=None) -> list[str]:
    runs = [store.run(run_id)] if run_id is not None else store.runs()
    return list(dict.fromkeys(c for r in runs for c in r.classes))


def team_cells(store, run_id: int | None, team: bool | None):
    """(team columns, {tile_id: {column: value}}) of a store's export; no columns when
    ``team`` is False, or None and fewer than two reviewers decided tiles."""
    from pvdesk.review.team import consensus_of

    if team is False:
        return [], {}
    by = store.decisions_by_reviewer(run_id)
    if team is None and len(by) < 2:
        return [], {}
    roles = store.roles()
    names = sorted(set(by) | set(roles))
    cons, disputed = consensus_of(by, roles)
    cells: dict[int, dict] = {}
    for name in names:
        for tile, d in by.get(name, {}).items():
            cells.setdefault(tile, {})[LABEL_BY + name] = d.label
    for tile, (label, source) in cons.items():
        cells.setdefault(tile, {}).update({CONSENSUS_LABEL: label, CONSENSUS_SOURCE: source})
    for tile in disputed:
        cells.setdefault(tile, {})[CONSENSUS_SOURCE] = "disputed"
    return team_columns(names), cells


def write_predictions_csv(store, path, run_id: int | None = None,
                          slide_id: str | None = None, counts: dict | None = None,
                          team: bool | None = None, view: str = "latest") -> int:
    """Write a store's tiles (one run, or all) with their review columns (each tile's
    latest decision of any reviewer); returns rows.
    ``counts`` (a dict) receives where the labels come from: review_status per row
    (confirmed model predictions, corrections, unreviewed), and in a team export
    "consensus <source>" per row (adjudicated, unanimous, single, disputed, none). ``team``:
    add the consensus
    and per-reviewer columns (None: when two or more reviewers decided tiles). ``view``:
    "latest" (each tile's latest decision of anyone: the store's record, whoever exports)
    or "own" (the store's acting reviewer's decisions) in the review columns."""
    from pvdesk.review.types import UNTRAINED_TAG
    from pvdesk.taxonomy import Taxonomy

    classes = store_classes(store, run_id)
    untrained = {r.run_id for r in store.runs() if not r.trained}
    shas = {r.run_id: r.model_sha for r in store.runs()}
    taxonomies = {r.run_id: Taxonomy.of_run(r) for r in store.runs()}
    recs = store.tiles(slide_id=slide_id, run_id=run_id, view=view)
    patients = store.patients()
    team_cols, team_by_tile = team_cells(store, run_id, team)

    def rows():
        for r in recs:
            row = record_row(r)
            row[PATIENT] = patients.get(r.slide_id)
            row[MODEL_SHA] = shas.get(r.run_id, "")
            tax = taxonomies.get(r.run_id)
            if tax is not None and not tax.is_breakhis:  # the run's own groups, if any
                row["predicted_group"] = _group(r.predicted, tax)
            if counts is not None:
                counts[row["review_status"]] = counts.get(row["review_status"], 0) + 1
            if r.run_id in untrained:  # the model column says so (import strips the tag)
                row["model"] = f"{row['model']}{UNTRAINED_TAG}"
            team_row = team_by_tile.get(r.tile_id, {})
            row.update(team_row)
            if counts is not None and team_cols:
                key = "consensus " + (team_row.get(CONSENSUS_SOURCE) or "none")
                counts[key] = counts.get(key, 0) + 1
            yield row

    return write_rows_csv(path, classes, rows(), team_cols)


class CsvTable(NamedTuple):
    classes: list[str]
    rows: list[dict]
    lines: list[int] = []  # the line each row ends on, for error messages


def _parse(path, line: int, col: str, cell: str):
    if col == MODEL_SHA:
        return checks.check_sha(path, line, col, restore(cell))
    if is_text(col):
        return restore(cell)
    if cell == "":
        return None
    try:
        if col in INT_COLUMNS:
            if len(cell) > 24:
                raise ValueError(cell)
            return checks.check_int(path, line, col, int(cell))
        return checks.check_float(path, line, col, float(cell))
    except (ValueError, OverflowError):
        raise ExportError(f"{path}: line {line}: {col} is not a number ({cell[:40]!r})") from None


def _without_team(path, header: list[str]) -> list[str]:
    """The header without its team columns (consensus_label, consensus_source, then
    label_by:<reviewer> columns)."""
    if CONSENSUS_LABEL not in header:
        return header
    i = header.index(CONSENSUS_LABEL)
    before = header[:i]
    tail_ok = any(before[-k:] == list(OPTIONAL_TAIL[:k]) for k in (2, len(OPTIONAL_TAIL)))
    if (header[i:i + 2] != list(TEAM_HEAD) or not tail_ok
            or not all(c.startswith(LABEL_BY) and len(c) > len(LABEL_BY)
                       for c in header[i + 2:])):
        raise ExportError(f"{path}: line 1: the team columns must follow tile_status, "
                          "patient (and model_sha256): consensus_label, consensus_source, "
                          "label_by:<reviewer>...")
    return header[:i]


def _without_optional_tail(header: list[str]) -> list[str]:
    """The header without its optional trailing columns (tile_status, then patient; a file
    has a prefix of them)."""
    for k in range(len(OPTIONAL_TAIL), 0, -1):
        if len(header) > k and header[-k:] == list(OPTIONAL_TAIL[:k]):
            return header[:-k]
    return header


def read_predictions_csv(path) -> CsvTable:
    """Read a clip_predictions.csv back: (classes, rows), each row a dict keyed by column
    with ints/floats (None when empty) and the original text (quote prefixes removed).
    Every row has ``tile_status`` ("ok" when the file has no such column) and
    ``model_sha256`` ("" when the file has no such column)."""
    fh = checks.open_text(path)  # regular files only (no FIFO, no /dev/zero), bounded size
    with fh:
        reader = csv.reader(checks.bounded_lines(fh, path))
        try:
            header = next(reader)
        except StopIteration:
            raise ExportError(f"{path}: empty file, not a predictions CSV") from None
        except (csv.Error, UnicodeDecodeError) as exc:
            raise ExportError(f"{path}: not a readable CSV ({exc})") from None
        core = _without_optional_tail(_without_team(path, header))
        mid = core[len(HEAD):len(core) - len(TAIL)]
        if (tuple(core[:len(HEAD)]) != HEAD or tuple(core[len(core) - len(TAIL):]) != TAIL
                or not mid or not all(c.startswith("p_") for c in mid)):
            raise ExportError(f"{path}: not a predictions CSV (columns {header[:4]}...)")
        if len(set(header)) != len(header):
            raise ExportError(f"{path}: line 1: a column is named twice")
        classes = [c[2:] for c in mid]
        rows = []
        lines = []
        try:
            for cells in reader:
                line = reader.line_num
                if not cells:
                    continue
                if len(rows) >= checks.MAX_ROWS:
                    raise ExportError(f"{path}: line {line}: more than {checks.MAX_ROWS} rows")
                if len(cells) != len(header):
                    raise ExportError(f"{path}: line {line}: {len(cells)} cells, "
                                      f"expected {len(header)}")
                row = {c: _parse(path, line, c, v) for c, v in zip(header, cells, strict=True)}
                row[STATUS] = (row.get(STATUS) or TILE_OK).strip().lower()
                row.setdefault(MODEL_SHA, "")
                rows.append(row)
                lines.append(line)
        except (csv.Error, UnicodeDecodeError) as exc:
            raise ExportError(f"{path}: line {reader.line_num + 1}: not a readable CSV "
                              f"({exc})") from None
    return CsvTable(classes, rows, lines)


def import_csv(store, path) -> dict:
    """Load a predictions CSV into a store (see :mod:`pvdesk.export.csv_import`)."""
    from pvdesk.export.csv_import import import_csv as _import

    return _import(store, path)
