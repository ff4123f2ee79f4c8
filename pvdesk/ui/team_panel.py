"""The Team panel (View ▸ Team): who reviewed how many tiles, and how far they agree with
each other and with the model run, each figure with its n and, where there are enough
slides, its bootstrap interval. Widgets only; the figures come from
``pvdesk.app.team.team_figures`` on a background thread."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

HEADERS = ("Figure", "Value", "95% interval", "n")
EMPTY = "Open a review store with two or more reviewers, then press Compute."


class TeamPanel(QWidget):
    compute_clicked = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.summary = QLabel(EMPTY)
        self.summary.setWordWrap(True)
        self.summary.setTextFormat(Qt.TextFormat.RichText)
        self.compute = QPushButton("Compute agreement")
        self.compute.setToolTip("Cohen's and Fleiss' kappa, percent agreement and each "
                                "reviewer against the model run, from the store as it is now.")
        self.compute.clicked.connect(self.compute_clicked)
        self.table = QTableWidget(0, len(HEADERS))
        self.table.setHorizontalHeaderLabels(HEADERS)
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.table.setWordWrap(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for col in (1, 2, 3):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        self.table.setMinimumHeight(180)
        top = QHBoxLayout()
        top.addWidget(self.compute)
        top.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addLayout(top)
        layout.addWidget(self.summary)
        layout.addWidget(self.table, 1)

    def busy(self) -> None:
        self.compute.setEnabled(False)
        self.summary.setText("Computing agreement…")

    def show_error(self, message: str) -> None:
        self.compute.setEnabled(True)
        self.summary.setText(f"<b>Not computed:</b> {message}")
        self.table.setRowCount(0)

    def show_figures(self, summary: str, rows) -> None:
        """``rows``: (figure, value, interval, n) strings, as pvdesk.app.team builds them."""
        self.compute.setEnabled(True)
        self.summary.setText(summary)
        self.table.setRowCount(len(rows))
        for i, row in enumerate(rows):
            for j, text in enumerate(row):
                item = QTableWidgetItem(text)
                if j:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight
                                          | Qt.AlignmentFlag.AlignVCenter)
                if j == 0:
                    item.setToolTip(text)
                self.table.setItem(i, j, item)

    def rows(self) -> list[tuple[str, ...]]:
        """What the table shows (tests)."""
        return [tuple(self.table.item(i, j).text() for j in range(len(HEADERS)))
                for i in range(self.table.rowCount())]
