"""Status bar: zoom, mpp, the cursor in level-0 px and µm, and the run's progress."""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QPainter
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QStatusBar,
    QStyle,
    QStyleOption,
    QWidget,
)

NARROWEST_PX = 320  # the status bar never makes the window wider than the screen needs


class ElidedLabel(QLabel):
    """A plain-text label that gives way instead of widening the window: short of room, its
    text ends in "…" (the whole text is in the tooltip)."""

    def __init__(self, least: int = 40, wants: int = 0, parent=None):
        super().__init__(parent)
        self._least, self._wants = least, wants  # px: the narrowest, the width it asks for

    def sizeHint(self) -> QSize:  # noqa: N802 (a steady width while the text changes)
        hint = super().sizeHint()
        return QSize(max(self._wants, hint.width()), hint.height())

    def setText(self, text: str) -> None:  # noqa: N802 (Qt's name)
        super().setText(text)
        self.setToolTip(text)

    def minimumSizeHint(self) -> QSize:  # noqa: N802
        hint = super().minimumSizeHint()
        return QSize(min(self._least, hint.width()), hint.height())

    def paintEvent(self, event) -> None:  # noqa: N802
        p = QPainter(self)
        opt = QStyleOption()
        opt.initFrom(self)
        self.style().drawPrimitive(QStyle.PrimitiveElement.PE_Widget, opt, p, self)
        r = self.contentsRect()
        text = self.fontMetrics().elidedText(self.text(), Qt.TextElideMode.ElideRight, r.width())
        self.style().drawItemText(p, r, int(self.alignment()), self.palette(), self.isEnabled(),
                                  text, self.foregroundRole())
        p.end()


def format_eta(seconds: float | None) -> str:
    if seconds is None:
        return "ETA …"
    s = int(round(seconds))
    if s >= 3600:
        return f"ETA {s // 3600} h {s % 3600 // 60:02d} min"
    if s >= 60:
        return f"ETA {s // 60} min {s % 60:02d} s"
    return f"ETA {s} s"


class RunProgress(QWidget):
    cancel_clicked = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.bar = QProgressBar()
        self.bar.setFixedWidth(140)
        self.bar.setTextVisible(True)
        self.label = ElidedLabel()
        self.cancel = QPushButton("Cancel")
        self.cancel.clicked.connect(self.cancel_clicked)
        layout.addWidget(self.label)
        layout.addWidget(self.bar)
        layout.addWidget(self.cancel)
        self.hide()

    def start(self, text: str) -> None:
        self.bar.setRange(0, 0)  # busy until the first progress report
        self.label.setText(text)
        self.cancel.setEnabled(True)
        self.show()

    def set_status(self, text: str) -> None:
        self.label.setText(text)

    def set_progress(self, p) -> None:
        """``p``: pvdesk.inference.Progress (done, total, tiles_per_s, eta_s)."""
        # QProgressBar.setValue repaints at once (and with it every dirty part of the
        # window); with updates off it only schedules the repaint with the others
        self.bar.setUpdatesEnabled(False)
        self.bar.setRange(0, max(1, p.total))
        self.bar.setValue(p.done)
        self.bar.setFormat(f"{p.done} / {p.total}")
        self.bar.setUpdatesEnabled(True)
        self.label.setText(f"{p.tiles_per_s:.1f} tiles/s, {format_eta(p.eta_s)}"
                           + (f", {p.unreadable} unreadable" if p.unreadable else ""))

    def finish(self) -> None:
        self.cancel.setEnabled(False)
        self.hide()


class StatusBar(QStatusBar):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.zoom = QLabel()
        self.mpp = QLabel()
        self.cursor = ElidedLabel(wants=300)  # gives way first: the rest says what is stored and by whom
        self.zoom.setMinimumWidth(90)
        self.mpp.setMinimumWidth(100)
        self.run = RunProgress()
        # Permanent widgets stay visible while a message shows on the left.
        for w in (self.run, self.cursor, self.zoom, self.mpp):
            self.addPermanentWidget(w)
        # An explicit minimum: the bar's layout then never sets the window's minimum width
        # from the sum of its labels (long texts once widened a 1366 px window to 1,410 px).
        self.setMinimumWidth(NARROWEST_PX)

    def show_view(self, zoom_text: str, mpp: float | None) -> None:
        self.zoom.setText(f"Zoom {zoom_text}" if zoom_text else "")
        self.mpp.setText(f"{mpp:.3f} µm/px" if mpp else "mpp unknown")

    def show_cursor(self, x: float, y: float, mpp: float | None, inside: bool) -> None:
        if not inside:
            self.cursor.setText("")
            return
        text = f"x {x:,.0f}  y {y:,.0f} px"
        if mpp:
            text += f"  ({x * mpp:,.1f}, {y * mpp:,.1f} µm)"
        self.cursor.setText(text)

    def clear_view(self) -> None:
        for w in (self.zoom, self.mpp, self.cursor):
            w.setText("")
