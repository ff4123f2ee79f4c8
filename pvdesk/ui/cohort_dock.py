"""The Cohort dock: a review project's slides in a table, most in need of a human first.

Columns: slide, call (with the malignant share it rests on), tiles, flagged tiles (the
model's top class under 50%), reviewed of total. The rows come from
:func:`pvdesk.cohort.table.cohort_table` (Qt-free, read on a background thread); a double
click or Enter opens the slide with that run (``open_requested(entry)``).
"""

from __future__ import annotations

from PySide6.QtCore import QAbstractTableModel, QModelIndex, Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from pvdesk.taxonomy import colour_of

COLUMNS = ("Slide", "Call", "Tiles", "Flagged", "Reviewed")
TIPS = ("The slide's file (its full path in the tooltip)",
        "Slide-level call of the newest run: malignant when at least 10% of its tiles' "
        "top classes are malignant; the share in brackets. *: an untrained model (random "
        "weights): its call is meaningless",
        "Tiles the newest run classified",
        "Tiles whose top class has under 50% probability: the model hesitates",
        "Tiles with a review decision, of all the run's tiles")


class CohortModel(QAbstractTableModel):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.entries: list = []

    def set_entries(self, entries) -> None:
        self.beginResetModel()
        self.entries = list(entries)
        self.endResetModel()

    def rowCount(self, parent=QModelIndex()) -> int:  # noqa: B008 (Qt's signature)
        return 0 if parent.isValid() else len(self.entries)

    def columnCount(self, parent=QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):
        if orientation == Qt.Orientation.Horizontal:
            if role == Qt.ItemDataRole.DisplayRole:
                return COLUMNS[section]
            if role == Qt.ItemDataRole.ToolTipRole:
                return TIPS[section]
        return None

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        e, col = self.entries[index.row()], index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            if col == 0:
                return e.name
            if col == 1:
                text = "no call" if e.call is None else f"{e.call} ({e.malignant_share:.0%})"
                return text + (" *" if e.untrained else "")
            if col == 2:
                return str(e.tiles)
            if col == 3:
                return f"{e.flagged} ({e.flagged_share:.0%})"
            return f"{e.reviewed} of {e.tiles}"
        if role == Qt.ItemDataRole.ToolTipRole:
            return (f"{e.path}\nrun {e.run_id}: {e.model}\n{e.reviewed} of {e.tiles} tiles "
                    f"reviewed; {e.flagged} of {e.tiles} flagged")
        if role == Qt.ItemDataRole.DecorationRole and col == 1 and e.call:
            return QColor(colour_of(e.call))  # a swatch: coloured text is hard to read
        if role == Qt.ItemDataRole.TextAlignmentRole and col >= 2:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None


class CohortDock(QWidget):
    open_requested = Signal(object)  # a CohortEntry
    refresh_requested = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.title = QLabel("No review project is open (File ▸ Open or new review project…).")
        self.title.setWordWrap(True)
        self.model = CohortModel(self)
        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        head = self.table.horizontalHeader()
        head.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.table.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        for c in range(1, len(COLUMNS)):
            head.setSectionResizeMode(c, QHeaderView.ResizeMode.ResizeToContents)
        self.table.doubleClicked.connect(self._open_index)
        self.table.activated.connect(self._open_index)  # Enter on a row
        self.open_button = QPushButton("Open slide")
        self.open_button.clicked.connect(lambda: self._open_index(self.table.currentIndex()))
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.clicked.connect(self.refresh_requested)
        buttons = QHBoxLayout()
        buttons.addWidget(self.open_button)
        buttons.addWidget(self.refresh_button)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addWidget(self.title)
        layout.addWidget(self.table, 1)
        layout.addLayout(buttons)

    def set_entries(self, project_name: str, entries) -> None:
        self.model.set_entries(entries)
        done = sum(e.done for e in entries)
        untrained = sum(e.untrained for e in entries)
        self.title.setText(
            f"{project_name}: {len(entries)} slides, {done} of {len(entries)} fully reviewed. "
            "Not yet reviewed first; among them malignant calls, then the most flagged tiles. "
            "Double-click to open."
            + (f"\n* {untrained} of {len(entries)} calls are by an UNTRAINED model: "
               "meaningless." if untrained else ""))
        if entries:
            self.table.selectRow(0)

    def _open_index(self, index) -> None:
        if index.isValid():
            self.open_requested.emit(self.model.entries[index.row()])
