"""The Team panel (View ▸ Team): who reviewed how many tiles, and how far they agree with
each other and with the model run, each figure with its n and, where there are enough
slides, its bootstrap interval. Widgets only; the figures come from
``pvdesk.app.team.team_figures`` on a background thread."""

from __future__ import annotations

import html

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QTextBrowser, QVBoxLayout, QWidget

EMPTY = "Open a review store with two or more reviewers, then press Compute."


class TeamPanel(QWidget):
    """A summary line, then one block per figure: its name, its value, its interval (or
    why there is none) and its n, so a narrow dock wraps text instead of cutting columns."""

    compute_clicked = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self._rows: list[tuple[str, str, str, str]] = []
        self.summary = QLabel(EMPTY)
        self.summary.setWordWrap(True)
        self.summary.setTextFormat(Qt.TextFormat.RichText)
        # a wrapped label in a dock gets too little height: room for its three lines
        self.summary.setMinimumHeight(3 * self.fontMetrics().lineSpacing() + 4)
        self.compute = QPushButton("Compute agreement")
        self.compute.setToolTip("Cohen's and Fleiss' kappa, percent agreement and each "
                                "reviewer against the model run, from the store as it is now.")
        self.compute.clicked.connect(self.compute_clicked)
        self.figures = QTextBrowser()
        self.figures.setOpenLinks(False)
        self.figures.setMinimumHeight(160)
        top = QHBoxLayout()
        top.addWidget(self.compute)
        top.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addLayout(top)
        layout.addWidget(self.summary)
        layout.addWidget(self.figures, 1)

    def busy(self) -> None:
        self.compute.setEnabled(False)
        self.summary.setText("Computing agreement…")

    def show_error(self, message: str) -> None:
        self.compute.setEnabled(True)
        self.summary.setText(f"<b>Not computed:</b> {html.escape(message)}")
        self._rows = []
        self.figures.clear()

    def show_figures(self, summary: str, rows, confusions=()) -> None:
        """``rows``: (figure, value, interval, n) strings; ``confusions``: (title, labels,
        matrix) of each pair of readers (pvdesk.app.team.TeamFigures)."""
        self.compute.setEnabled(True)
        self.summary.setText(summary)
        self._rows = [tuple(r) for r in rows]
        blocks = []
        for figure, value, interval, n in self._rows:
            detail = " · ".join(html.escape(x) for x in (interval, n) if x)
            blocks.append(f"<p style='margin: 0 0 6px 0'>{html.escape(figure)}: "
                          f"<b>{html.escape(value)}</b><br>"
                          f"<span style='color: #555555'>{detail}</span></p>")
        for title, labels, matrix in confusions:
            blocks.append(confusion_html(title, labels, matrix))
        self.figures.setHtml("".join(blocks))

    def rows(self) -> list[tuple[str, ...]]:
        """What the panel shows, as (figure, value, interval, n) (tests)."""
        return list(self._rows)


def confusion_html(title: str, labels, matrix) -> str:
    """A small confusion table: label keys and codes as headers, agreements in bold."""
    from pvdesk.ui.review_layer import short_label

    head = "".join(f"<th>{html.escape(short_label(x))}</th>" for x in labels)
    body = []
    for i, (lab, row) in enumerate(zip(labels, matrix, strict=True)):
        cells = "".join(f"<td align='right'>{f'<b>{v}</b>' if i == j else v}</td>"
                        for j, v in enumerate(row))
        body.append(f"<tr><th align='left'>{html.escape(short_label(lab))}</th>{cells}</tr>")
    return (f"<p style='margin: 8px 0 2px 0'>Confusion: {html.escape(title)}</p>"
            f"<table border='1' cellspacing='0' cellpadding='2'><tr><th></th>{head}</tr>"
            f"{''.join(body)}</table>")
