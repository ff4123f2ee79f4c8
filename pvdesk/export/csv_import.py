"""Import a clip_predictions.csv into a review store, to continue a review elsewhere.

All in one transaction: a bad row leaves the store as it was.
- Runs: rows are grouped by their ``model`` cell ("name@version") and ``model_sha256`` cell
  (which weights made them); an existing run with the same model, weights sha (both unknown
  counts as the same) and classes is reused, otherwise a run is created (device "imported")
  that records the file's sha prefix, so a later export writes the same cell.
- Tiles: a tile already in the store (same source and coordinates, or same patch path) is
  reused; otherwise it joins a slide named by its source (tiles) or its folder (patches).
- Decisions: confirmed/corrected rows become decisions with their original reviewer and
  time, audited as action "import" (not undoable); unreviewed rows leave a tile's decision
  alone. A decision already equal to the row's is skipped, so importing twice is harmless.
- Patients: a row's patient is set on its slide unless the slide already has one.
- Team columns (``label_by:<reviewer>``, consensus): each reviewer's label becomes that
  reviewer's decision, and new reviewers get the role the consensus implies (see
  :mod:`pvdesk.export.team_import`, shared with the GeoJSON import).
"""

from __future__ import annotations

from pathlib import PurePath

from pvdesk.errors import StoreError
from pvdesk.export import ExportError
from pvdesk.export.csv import LABEL_BY, read_predictions_csv
from pvdesk.export.team_import import TeamImport, check_cells, label_check, reviewer_of, team_part
from pvdesk.review.actions import check_patient
from pvdesk.review.types import (
    CONFIRMED,
    CORRECTED,
    REVIEW_LABELS,
    STATUSES,
    TilePrediction,
    split_untrained,
)
from pvdesk.taxonomy import GROUPS


def _split_model(model: str) -> tuple[str, str]:
    name, sep, version = model.rpartition("@")
    return (name, version) if sep and name else (model, "")


def find_or_add_run(store, model: str, classes: list[str], fname: str, created: list,
                    sha: str | None = None) -> int:
    """The run of ``model`` ("name@version", maybe tagged " (UNTRAINED)") with these
    classes, or a new imported one (its id appended to ``created``). ``sha``: the rows'
    model_sha256 cell ("" unknown); a run matches only with the same cell (None: the
    source has no such column, e.g. GeoJSON, and any sha matches)."""
    model, trained = split_untrained(model)
    for run in store.runs():
        if (run.model == model and list(run.classes) == classes
                and (sha is None or run.model_sha == sha)):
            return run.run_id
    name, version = _split_model(model or "imported")
    run_id = store.add_run(name, version, "", classes, "imported", {"imported_from": fname},
                           trained=trained, weights_sha256=sha or "")
    created.append(run_id)
    return run_id


def read_checked(path):
    """The CSV's table and its rows grouped by model, every row checked (ExportError naming
    the line of the first bad one): nothing needs to be written to know a file is bad."""
    table = read_predictions_csv(path)
    for col in table.rows[0] if table.rows else ():
        if col.startswith(LABEL_BY):
            reviewer_of(col, f"{path}: line 1")
    groups: dict[tuple[str, str], list[dict]] = {}  # (model, model_sha256) -> rows
    for row in table.rows:
        if row.get("tile_status", "ok") != "ok":  # unreadable tiles have no prediction
            continue
        groups.setdefault((row["model"], row.get("model_sha256") or ""), []).append(row)
    line_of = dict(zip(map(id, table.rows), table.lines, strict=False))
    for (model, _sha), rows in groups.items():
        _check_rows(path, model, table.classes, rows, line_of)
    return table, groups


def model_text(model: str, sha: str) -> str:
    """"name@version [weights sha256 0123456789abcdef]", or "... [weights unknown]"."""
    return f"{model} [weights sha256 {sha}]" if sha else f"{model} [weights unknown]"


def import_csv(store, path, checked=None) -> dict:
    """Returns counts: rows, runs_created, slides_created, decisions, team_decisions (other
    reviewers' label_by cells), roles ({reviewer: role} of reviewers new to the store),
    notes, models ([{model, sha, rows, run_id, new}]: each model the rows came from, with
    the weights sha the file gives, "" when unknown). ``checked`` is what :func:`read_checked` returned for ``path`` (read here when
    None)."""
    table, groups = checked or read_checked(path)
    line_of = dict(zip(map(id, table.rows), table.lines, strict=False))
    team = TeamImport()
    fname = PurePath(str(path)).name
    runs_created: list[int] = []
    slides = {s["slide_id"] for s in store.slides()}
    known_patients = store.patients()
    patients: dict[str, str] = {}
    n_slides = 0
    decisions = []
    models = []
    with store.transaction():
        for (model, sha), rows in groups.items():
            classes = [c for c in table.classes if any(r[f"p_{c}"] is not None for r in rows)]
            if not classes:
                raise ExportError(f"{path}: model {model!r} has no probability columns")
            run_id = find_or_add_run(store, model, classes, fname, runs_created, sha)
            models.append({"model": model, "sha": sha, "rows": len(rows), "run_id": run_id,
                           "new": run_id in runs_created})
            by_slide: dict[str, list[TilePrediction]] = {}
            placed = []
            for row in rows:
                coords = [row[k] for k in ("tile_x", "tile_y", "tile_w", "tile_h")]
                if (None in coords) != (coords[0] is None):
                    raise ExportError(f"{path}: {row['source']}: partial tile coordinates")
                probs = [row[f"p_{c}"] for c in classes]
                if None in probs:
                    raise ExportError(f"{path}: {row['source']}: missing probabilities")
                existing = store.find_tile(source=row["source"], tile_x=coords[0],
                                           tile_y=coords[1], tile_w=coords[2], tile_h=coords[3])
                if existing is not None:
                    slide_id = _slide_of(store, existing)
                elif coords[0] is None:
                    slide_id = str(PurePath(row["source"]).parent)
                else:
                    slide_id = row["source"]
                if slide_id not in slides:
                    store.add_slide(slide_id, slide_id, {})
                    slides.add(slide_id)
                    n_slides += 1
                by_slide.setdefault(slide_id, []).append(
                    TilePrediction(row["source"], *coords, row["mpp"], probs))
                placed.append((slide_id, row, coords))
                if row.get("patient") and slide_id not in known_patients:
                    patients.setdefault(slide_id, row["patient"])
            for slide_id, preds in by_slide.items():
                store.add_predictions(run_id, slide_id, preds)
            for slide_id, row, coords in placed:
                status = row["review_status"] or "unreviewed"
                label = row["review_label"] or None
                if status not in STATUSES:
                    raise ExportError(f"{path}: {row['source']}: unknown review_status "
                                      f"{status!r}")
                reviewed = status in (CONFIRMED, CORRECTED)
                if reviewed and (label not in REVIEW_LABELS and label not in GROUPS
                                 and label not in classes):
                    raise ExportError(f"{path}: {row['source']}: unknown review_label {label!r}")
                tid = store.find_tile(slide_id, row["source"], *coords)
                cells = team_part(row)
                if cells:
                    team.add(tid, run_id, row["predicted"], cells,
                             (row["reviewer"] or None) if reviewed else None,
                             label if reviewed else None, row["reviewed_at"] or None,
                             f"{path}: line {line_of.get(id(row), '?')}")
                if not reviewed:
                    continue
                decisions.append((tid, run_id, status, label, row["reviewer"] or None,
                                  row["reviewed_at"] or None))
        written = team.apply(store, fname, decisions)
        for slide_id, patient in patients.items():  # a patient already set is kept
            store.set_patient(slide_id, patient)
    return {"rows": len(table.rows), "runs_created": len(runs_created),
            "slides_created": n_slides, "decisions": len(decisions),
            "team_decisions": written["team_decisions"], "roles": written["roles"],
            "notes": written["notes"], "models": models}


PROB_SUM_TOLERANCE = 0.01  # written probabilities sum to 1 (float32); allows rounding


def _check_rows(path, model: str, all_classes: list[str], rows: list[dict],
                line_of: dict[int, int]) -> None:
    """One model's rows: a source, all four coordinates or none, a probability for each of
    the model's classes summing to about 1, a known review status and label. ExportError
    naming the line of the first bad row."""
    classes = [c for c in all_classes if any(r[f"p_{c}"] is not None for r in rows)]
    for row in rows:
        at = f"{path}: line {line_of.get(id(row), '?')}"
        if not row["source"]:
            raise ExportError(f"{at}: the source cell is empty")
        try:
            check_patient(row.get("patient"), at)
        except StoreError as exc:
            raise ExportError(str(exc)) from None
        coords = [row[k] for k in ("tile_x", "tile_y", "tile_w", "tile_h")]
        if None in coords and any(c is not None for c in coords):
            raise ExportError(f"{at}: partial tile coordinates (give all four or none)")
        probs = [row[f"p_{c}"] for c in classes]
        if None in probs:
            missing = classes[probs.index(None)]
            raise ExportError(f"{at}: model {model[:80]!r}: p_{missing} is missing")
        total = sum(probs)
        if abs(total - 1.0) > PROB_SUM_TOLERANCE:
            raise ExportError(f"{at}: the probabilities of model {model[:80]!r} sum to "
                              f"{total:.4g}, not 1")
        status = row["review_status"] or "unreviewed"
        if status not in STATUSES:
            raise ExportError(f"{at}: unknown review_status {status[:40]!r}")
        label = row["review_label"] or None
        if status in (CONFIRMED, CORRECTED) and (
                label not in REVIEW_LABELS and label not in GROUPS and label not in classes):
            raise ExportError(f"{at}: unknown review_label {str(label)[:40]!r}")
        cells = team_part(row)
        if cells:
            check_cells(cells, label_check(classes), at)


def _slide_of(store, tile_id: int) -> str:
    return store.con.execute("SELECT slide_id FROM tiles WHERE tile_id=?",
                             (tile_id,)).fetchone()[0]
