"""The review queue as a table model over ``ReviewSession.entries`` (virtualised by the view)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QAbstractTableModel, QModelIndex, Qt
from PySide6.QtGui import QBrush, QColor, QFont

from pvdesk.review.types import CORRECTED, UNREVIEWED
from pvdesk.ui.glossary import GLOSSARY, explain
from pvdesk.ui.review_layer import short_label, shown_taxonomy

COLUMNS = ("#", "Predicted", "p", "Review", "Readers")
COLUMN_TIPS = ("The tile's place in the queue.", "The model's most probable class.",
               "The model's probability for its predicted class (0 to 1).\n\n"
               + explain("probability"),
               "Your decision: ✓ confirmed, ✎ corrected to another label, – not reviewed yet.",
               "Each reader's label on this tile (shown to the adjudicator).")
MODEL_COLUMNS = (1, 2)  # hidden, and empty, in blinded reading
READERS = 4


def class_text(name: str | None) -> str:
    """"5 Ductal carcinoma": the key first, as on the legend (the run's taxonomy; a class
    without a key shows its name alone)."""
    if not name:
        return ""
    try:
        key, label, _ = shown_taxonomy().label_parts(name)
    except KeyError:
        return name.capitalize()
    return f"{key} {label}" if key else label


def where_text(rec) -> str:
    if rec.tile_x is None:
        return Path(rec.source).name
    return f"x {rec.tile_x}, y {rec.tile_y}"


class QueueModel(QAbstractTableModel):
    """Reads the session's queue list in place; told of changes by deltas (rows changed,
    rows appended, reset), so a key press repaints one row, never the whole queue."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.entries: list = []
        self._n = 0
        self.blinded = False  # blinded reading: nothing of the model, labels without ✓/✎
        self.readers: dict[int, dict[str, str]] = {}  # tile id -> reader -> label

    def set_team(self, blinded: bool, readers: dict | None) -> None:
        self.beginResetModel()
        self.blinded = bool(blinded)
        self.readers = dict(readers or {})
        self.endResetModel()

    def set_entries(self, entries: list) -> None:
        self.beginResetModel()
        self.entries = entries
        self._n = len(entries)
        self.endResetModel()

    def append_rows(self, entries: list) -> None:
        """``entries`` grew at the end (a run streaming in): insert the new rows only."""
        n = len(entries)
        if entries is not self.entries or n < self._n:
            self.set_entries(entries)
            return
        if n > self._n:
            self.beginInsertRows(QModelIndex(), self._n, n - 1)
            self._n = n
            self.endInsertRows()

    def rows_changed(self, rows) -> None:
        rows = [r for r in rows if 0 <= r < self._n]
        if not rows:
            return
        last = len(COLUMNS) - 1
        if len(rows) <= 8:
            for r in rows:
                self.dataChanged.emit(self.index(r, 0), self.index(r, last))
        else:  # a bulk action: one signal over the span
            self.dataChanged.emit(self.index(min(rows), 0), self.index(max(rows), last))

    def rowCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else self._n

    def columnCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.ToolTipRole:
            return COLUMN_TIPS[section]
        return None

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        rec, col = self.entries[index.row()], index.column()
        if self.blinded:
            return self._blinded_data(rec, index.row(), col, role)
        if role == Qt.ItemDataRole.DisplayRole:
            if col == 0:
                return str(index.row() + 1)
            if col == 1:
                return short_label(rec.predicted)
            if col == 2:
                return f"{rec.confidence:.2f}"
            if col == 3:
                if rec.status == UNREVIEWED:
                    return "–"
                if rec.status != CORRECTED:
                    return "✓ confirmed"
                return f"✎ {short_label(rec.label)}"
            if col == READERS:
                return readers_text(self.readers.get(rec.tile_id))
            return None
        if role == Qt.ItemDataRole.DecorationRole and col in (1, 3):
            name = rec.predicted if col == 1 else (rec.label if rec.status == CORRECTED else None)
            return _swatch(name) if name else None
        if role == Qt.ItemDataRole.FontRole and col == 3 and rec.status == CORRECTED:
            f = QFont()
            f.setBold(True)
            return f
        if role == Qt.ItemDataRole.ForegroundRole and col == 3 and rec.status == UNREVIEWED:
            return QBrush(QColor("#888888"))
        if role == Qt.ItemDataRole.ToolTipRole and col == READERS:
            return readers_text(self.readers.get(rec.tile_id)) or "No reader labelled it."
        if role == Qt.ItemDataRole.ToolTipRole:
            probs = sorted(zip(rec.classes, rec.probs, strict=True), key=lambda kv: -kv[1])[:3]
            top = ", ".join(f"{class_text(c)} {p:.2f}" for c, p in probs)
            extra = f"\nfolder class: {class_text(rec.folder_class)}" if rec.folder_class else ""
            return (f"{where_text(rec)}\n{top}\nentropy {rec.entropy:.2f}: "
                    f"{GLOSSARY['entropy'].short}{extra}")
        return None

    def _blinded_data(self, rec, row: int, col: int, role):
        """Blinded reading: the reviewer's own label only. Whether it matches the model
        (✓ confirmed / ✎ corrected) would tell the prediction, so neither is shown."""
        if role == Qt.ItemDataRole.DisplayRole:
            if col == 0:
                return str(row + 1)
            if col == 3:
                return "–" if rec.status == UNREVIEWED else f"● {short_label(rec.label or '')}"
            return None
        if role == Qt.ItemDataRole.DecorationRole and col == 3 and rec.status != UNREVIEWED:
            return _swatch(rec.label) if rec.label else None
        if role == Qt.ItemDataRole.ForegroundRole and col == 3 and rec.status == UNREVIEWED:
            return QBrush(QColor("#888888"))
        if role == Qt.ItemDataRole.ToolTipRole:
            return f"{where_text(rec)}\nBlinded reading: the model's opinion is hidden."
        return None


def readers_text(labels: dict[str, str] | None) -> str:
    """"alice 5 DC · bob 3 LC": each reader's label, by name."""
    if not labels:
        return ""
    return " · ".join(f"{name} {short_label(label)}" for name, label in sorted(labels.items()))


_SWATCHES: dict[str, object] = {}  # label -> swatch, for the taxonomy in _SWATCHES_OF
_SWATCHES_OF: list = [None]


def _swatch(name: str):
    """A label's swatch in the shown taxonomy's colours (cached until it changes: checked
    by identity, as hashing a long taxonomy on every painted cell is not free)."""
    from pvdesk.ui.review_layer import swatch

    if _SWATCHES_OF[0] is not shown_taxonomy():
        _SWATCHES.clear()
        _SWATCHES_OF[0] = shown_taxonomy()
    if name not in _SWATCHES:
        _SWATCHES[name] = swatch(name, 12)
    return _SWATCHES[name]
