"""Were a predictions CSV's rows made by exactly this bundle's weights?

    m = match_csv(bundle, "clip_predictions.csv")
    m.matching, m.different, m.unknown      # row counts; m.by_model: per model cell

A row matches when its ``model_sha256`` cell equals the first 16 hex characters of the
sha256 the bundle's manifest records for its own weights file; it is different when the cell
holds another sha; unknown when the cell is empty (a file written before the column, a run
stored before pvdesk recorded it, or a bundle without a weights file of its own). A bundle
without a recorded weights sha can match nothing: every row is then unknown. Qt-free.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pvdesk.review.types import MODEL_SHA_CHARS


@dataclass
class CsvMatch:
    sha: str  # the bundle's cell value ("" when its manifest records no weights sha)
    matching: int = 0
    different: int = 0
    unknown: int = 0
    by_model: dict = field(default_factory=dict)  # (model, cell) -> rows

    @property
    def rows(self) -> int:
        return self.matching + self.different + self.unknown

    @property
    def all_match(self) -> bool:
        return self.rows > 0 and self.matching == self.rows

    def verdict(self, cell: str) -> str:
        """"matching", "different" or "unknown": what a row's model_sha256 cell says."""
        if not cell:
            return "unknown"
        return "matching" if self.sha and cell == self.sha else "different"


def match_csv(bundle, path) -> CsvMatch:
    """Count the CSV's rows by whether ``bundle``'s weights made them (ExportError naming
    the file and line for a bad file)."""
    from pvdesk.export.csv import MODEL_SHA, read_predictions_csv

    sha = (bundle.weights_sha256 or "")[:MODEL_SHA_CHARS]
    out = CsvMatch(sha)
    for row in read_predictions_csv(path).rows:
        cell = row.get(MODEL_SHA) or ""
        verdict = out.verdict(cell)
        setattr(out, verdict, getattr(out, verdict) + 1)
        key = (row.get("model") or "", cell)
        out.by_model[key] = out.by_model.get(key, 0) + 1
    return out


def match_text(bundle, path, m: CsvMatch) -> list[str]:
    """The report ``pvdesk models check NAME --csv FILE`` prints."""
    from pvdesk.export.csv_import import model_text

    head = (f"{bundle.name} {bundle.version}: weights sha256 {m.sha} (its manifest)" if m.sha
            else f"{bundle.name} {bundle.version}: its manifest records no weights sha256 (no "
                 "weights file of its own), so no row can be shown to come from it")
    lines = [head,
             f"{path}: {m.rows} rows: {m.matching} made by these weights, {m.different} by "
             f"other weights, {m.unknown} unknown (no model_sha256)"]
    for (model, cell), n in sorted(m.by_model.items()):
        verdict = {"matching": "matches", "different": "different weights",
                   "unknown": "unknown"}[m.verdict(cell)]
        lines.append(f"    {model_text(model, cell)}: {n} rows, {verdict}")
    return lines
