"""The confusion matrix drawn by Qt from the report's numbers, at a size that reads.

Rows are the true class, columns the model's call; every cell shows its count, shaded by
its share of the row (so each row reads as "of the true X, how many were called what"); the
last column is the row's total, the denominator. Class names are written in full: down the
side, and slanted over the columns. A cell's tooltip says it in words ("Of 40 true ductal
carcinoma, 6 (15%) were called lobular carcinoma"). The widget never shrinks below the size
where the counts stay readable (about 40 px a cell); the panel holding it scrolls instead.
"""

from __future__ import annotations

import math

from PySide6.QtCore import QEvent, QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QPainter
from PySide6.QtWidgets import QSizePolicy, QToolTip, QWidget

from pvdesk.taxonomy import label_parts
from pvdesk.ui.glossary import tip

CELL = 40  # px per cell: 8 classes give a 320 px square
SLANT = math.radians(40)  # column names rise at this angle
LOW, HIGH = QColor("#f7fbff"), QColor("#08306b")  # a blue scale, readable in colour blindness


def class_label(name: str) -> str:
    try:
        return label_parts(name)[1]
    except KeyError:
        return str(name).replace("_", " ")


def _mix(share: float) -> QColor:
    s = max(0.0, min(1.0, share))
    return QColor(round(LOW.red() + (HIGH.red() - LOW.red()) * s),
                  round(LOW.green() + (HIGH.green() - LOW.green()) * s),
                  round(LOW.blue() + (HIGH.blue() - LOW.blue()) * s))


class ConfusionView(QWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.classes: list[str] = []
        self.counts: list[list[int]] = []
        self.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
        self.setMouseTracking(True)
        tip(self, "confusion", before="Rows: the true class. Columns: the model's call. The "
            "last column is each row's total. Hover a cell for it in words.")
        self._base_tip = self.toolTip()

    # -- data -------------------------------------------------------------------------------
    def set_matrix(self, classes, counts) -> bool:
        """Show ``counts`` (rows: true, columns: predicted); False when they do not fit."""
        n = len(classes or [])
        ok = n > 0 and isinstance(counts, list) and len(counts) == n and all(
            isinstance(r, list) and len(r) == n for r in counts)
        self.classes = [class_label(c) for c in classes] if ok else []
        self.counts = [[int(v or 0) for v in r] for r in counts] if ok else []
        self.updateGeometry()
        self.adjustSize()
        self.update()
        return ok

    def cell_text(self, i: int, j: int) -> str:
        total = sum(self.counts[i])
        k = self.counts[i][j]
        share = f" ({100 * k / total:.0f}%)" if total else ""
        true, called = self.classes[i].lower(), self.classes[j].lower()
        if i == j:
            return f"Of {total} true {true}, {k}{share} were called correctly."
        return f"Of {total} true {true}, {k}{share} were called {called}."

    # -- geometry ---------------------------------------------------------------------------
    def _fonts(self) -> tuple[QFont, QFont]:
        label = QFont(self.font())
        count = QFont(self.font())
        count.setBold(True)
        return label, count

    def _layout(self) -> tuple[float, float, float, float, float]:
        """(left, top, cell, total column width, right overflow of the slanted names)."""
        fm = self.fontMetrics()
        widest = max((fm.horizontalAdvance(c) for c in self.classes), default=0)
        axis = fm.height() + 6  # "true class" written down the side
        left = axis + widest + 10
        rise = widest * math.sin(SLANT) + fm.height()
        top = fm.height() + 8 + rise  # "called as" line, then the slanted names
        cell = max(CELL, fm.height() * 2 + 4)
        total_w = max(fm.horizontalAdvance("0000"), fm.horizontalAdvance("total")) + 12
        over = max(0.0, widest * math.cos(SLANT) - 0.5 * cell - total_w)  # the last name
        return left, top, cell, total_w, over

    def sizeHint(self) -> QSize:
        if not self.classes:
            return QSize(0, 0)
        left, top, cell, total_w, over = self._layout()
        n = len(self.classes)
        return QSize(math.ceil(left + n * cell + total_w + over + 8), math.ceil(top + n * cell + 8))

    def minimumSizeHint(self) -> QSize:
        return self.sizeHint()

    def _cell_at(self, x: float, y: float) -> tuple[int, int] | None:
        if not self.classes:
            return None
        left, top, cell, _, _ = self._layout()
        j, i = math.floor((x - left) / cell), math.floor((y - top) / cell)
        n = len(self.classes)
        return (i, j) if 0 <= i < n and 0 <= j < n else None

    def event(self, ev) -> bool:
        if ev.type() == QEvent.Type.ToolTip:
            at = self._cell_at(ev.position().x(), ev.position().y()) \
                if hasattr(ev, "position") else self._cell_at(ev.pos().x(), ev.pos().y())
            QToolTip.showText(ev.globalPos(), self.cell_text(*at) if at else self._base_tip,
                              self)
            return True
        return super().event(ev)

    # -- drawing ----------------------------------------------------------------------------
    def paintEvent(self, event) -> None:
        if not self.classes:
            return
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.setRenderHint(QPainter.RenderHint.TextAntialiasing)
        label_font, count_font = self._fonts()
        fm = self.fontMetrics()
        left, top, cell, total_w, _ = self._layout()
        n = len(self.classes)
        ink = QColor("#1a1a1a")
        grey = QColor("#555555")
        p.setFont(label_font)
        p.setPen(grey)
        p.drawText(QRectF(left, 2, n * cell, fm.height() + 4),
                   Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                   "Model's call →")
        p.save()  # "True class" down the left side
        p.translate(2, top + n * cell / 2)
        p.rotate(-90)
        p.drawText(QRectF(-n * cell / 2, 0, n * cell, fm.height() + 4),
                   Qt.AlignmentFlag.AlignCenter, "True class")
        p.restore()
        p.setPen(ink)
        for j, name in enumerate(self.classes):  # slanted column names
            p.save()
            p.translate(left + (j + 0.5) * cell, top - 6)
            p.rotate(-math.degrees(SLANT))
            p.drawText(QPointF(0, -fm.descent()), name)
            p.restore()
        p.setPen(grey)
        p.drawText(QRectF(left + n * cell, top - fm.height() - 6, total_w, fm.height() + 4),
                   Qt.AlignmentFlag.AlignCenter, "total")
        for i, name in enumerate(self.classes):
            y = top + i * cell
            p.setPen(ink)
            p.drawText(QRectF(0, y, left - 8, cell),
                       Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, name)
            total = sum(self.counts[i])
            for j in range(n):
                k = self.counts[i][j]
                share = k / total if total else 0.0
                bg = _mix(share)
                r = QRectF(left + j * cell, y, cell, cell)
                p.fillRect(r, bg)
                p.setPen(QColor("#ffffff") if bg.lightness() < 140 else
                         (QColor("#8a8a8a") if k == 0 else ink))
                p.setFont(count_font if k else label_font)
                p.drawText(r, Qt.AlignmentFlag.AlignCenter, str(k))
            p.setFont(label_font)
            p.setPen(grey)
            p.drawText(QRectF(left + n * cell, y, total_w, cell),
                       Qt.AlignmentFlag.AlignCenter, str(total))
        p.setPen(QColor("#9a9a9a"))
        p.setBrush(Qt.BrushStyle.NoBrush)
        p.drawRect(QRectF(left, top, n * cell, n * cell))
        p.setPen(QColor("#303030"))
        for i in range(n):  # the diagonal: the correct calls
            p.drawRect(QRectF(left + i * cell + 1, top + i * cell + 1, cell - 2, cell - 2))
        p.end()
