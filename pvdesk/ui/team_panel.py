"""The Team panel (View ▸ Team): who reviewed how many tiles, and how far they agree with
each other and with the model run, each figure with its n and, where there are enough
slides, its bootstrap interval. Widgets only; the figures come from
``pvdesk.app.team.panel_figures`` on a background thread."""

from __future__ import annotations

import html

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QTextDocumentFragment
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QTextBrowser, QVBoxLayout, QWidget

EMPTY = ("Open a review store with two or more reviewers: the figures follow it as it "
         "changes (Compute recomputes now).")
UPDATING = " · <i>updating…</i>"


class TeamPanel(QWidget):
    """A summary line, then one block per figure: its name, its value, its interval (or
    why there is none) and its n, so a narrow dock wraps text instead of cutting columns."""

    compute_clicked = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self._rows: list[tuple[str, str, str, str]] = []
        self._computed = ""  # "HH:MM:SS from N decisions in FILE" of the figures shown
        self.summary = QLabel(EMPTY)
        self.summary.setWordWrap(True)
        self.summary.setTextFormat(Qt.TextFormat.RichText)
        # a wrapped label in a dock gets too little height: room for its three lines
        self.summary.setMinimumHeight(3 * self.fontMetrics().lineSpacing() + 4)
        self.when = QLabel("Not computed yet")  # how current the figures are
        self.when.setWordWrap(True)
        self.when.setTextFormat(Qt.TextFormat.RichText)
        self._when = "Not computed yet"
        self._pending = False
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
        layout.addWidget(self.when)
        layout.addWidget(self.summary)
        layout.addWidget(self.figures, 1)

    def busy(self) -> None:
        self.compute.setEnabled(False)
        if not self._rows:
            self.summary.setText("Computing agreement…")
        self.set_pending(True)

    def set_pending(self, pending: bool) -> None:
        """A newer computation is waiting or running: "updating…" after how current."""
        self._pending = pending
        self.when.setText(self._when + (UPDATING if pending else ""))

    def status(self) -> str:
        """The line that says how current the figures are, as plain text (tests)."""
        return QTextDocumentFragment.fromHtml(self.when.text()).toPlainText()

    def show_error(self, message: str, at: str = "") -> None:
        """The last figures stay; the line above them says what went wrong."""
        self.compute.setEnabled(True)
        kept = f". Shown: computed at {self._computed}" if self._rows else ""
        self._when = (f"<b>Not computed{f' at {at}' if at else ''}:</b> "
                      f"{html.escape(message)}{html.escape(kept)}")
        if not self._rows:
            self.summary.setText(EMPTY)
        self.set_pending(self._pending)

    def show_figures(self, summary: str, rows, confusions=(), at: str = "",
                     decisions: int | None = None, source: str = "") -> None:
        """``rows``: (figure, value, interval, n) strings; ``confusions``: (title, labels,
        matrix) of each pair of readers (pvdesk.app.team.TeamFigures); ``at``: when the
        store was read (HH:MM:SS), ``decisions``: how many readers' decisions the figures
        come from, ``source``: the store's file name."""
        self.compute.setEnabled(True)
        n = f" from {decisions} decision{'s' if decisions != 1 else ''}" \
            if decisions is not None else ""
        self._computed = (f"{at}{n}" if at else "") + (f" in {source}" if source else "")
        self._when = html.escape(f"Computed at {self._computed}") if at else ""
        self.set_pending(self._pending)
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
