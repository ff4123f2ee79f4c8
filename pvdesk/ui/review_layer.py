"""What review mode draws on the slide view, and how tiles are picked with the mouse.

``ReviewLayer`` (a SlideView layer): reviewed tiles outlined in their label's colour (with
the label's key and code once tiles are large enough to read), the multi-selection tinted
cyan, the current tile ringed in yellow, and the rubber band while it is dragged.

``TilePicker`` (an event filter on the view, active in review mode): Shift- or Ctrl-click
toggles a tile in the selection; Shift- or Ctrl-drag draws a rubber band that adds the
tiles inside it. A plain drag still pans.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QFont, QPen

from pvdesk.taxonomy import Taxonomy

CURRENT = QColor("#ffffff")  # white dashes on a black ring mark the tile under review
SELECTED = QColor(0, 200, 255)
HALO = QColor(0, 0, 0, 190)
MIN_TEXT_PX = 44  # tiles at least this wide on screen carry their label's key and code


_SHOWN: list[Taxonomy] = [Taxonomy.breakhis()]


def show_taxonomy(taxonomy: Taxonomy | None) -> None:
    """The taxonomy of the run under review: its keys, names and colours are what the
    review views show (BreakHis when None)."""
    _SHOWN[0] = taxonomy or Taxonomy.breakhis()


def shown_taxonomy() -> Taxonomy:
    return _SHOWN[0]


def short_label(name: str) -> str:
    """"5 DC" for a subtype, "0 non-tissue" / "U uncertain" for the review-only labels
    ("STR" alone for a custom class past the ninth, which has no key)."""
    try:
        key, _, tag = shown_taxonomy().label_parts(name)
    except KeyError:
        return name
    return f"{key} {tag}" if key else tag


def swatch(name: str | None, size: int = 12):
    """A square of the label's colour with a grey border (white and black stay visible)."""
    from PySide6.QtGui import QPainter, QPixmap

    pm = QPixmap(size, size)
    pm.fill(label_colour(name))
    p = QPainter(pm)
    p.setPen(QColor("#808080"))
    p.drawRect(0, 0, size - 1, size - 1)
    p.end()
    return pm


def label_colour(name: str | None) -> QColor:
    try:
        return QColor(shown_taxonomy().colour_of(name)) if name else QColor("#cccccc")
    except KeyError:
        return QColor("#cccccc")


MAX_DETAILED = 1500  # more reviewed tiles than this in view: thin outlines, no tags


class ReviewLayer:
    def __init__(self):
        self.session = None  # the ReviewSession whose reviewed tiles are outlined
        self.current = None  # TileRecord
        self.selected: list = []  # TileRecords
        self.band: QRectF | None = None  # screen rect while a rubber band is dragged
        self.visible = True

    @property
    def reviewed(self) -> list:
        """Every reviewed tile with coordinates (the outlines)."""
        return self.session.reviewed() if self.session is not None else []

    def _rect(self, vp, r) -> QRectF:
        x, y = vp.to_screen(r.tile_x, r.tile_y)
        return QRectF(x, y, r.tile_w * vp.scale, r.tile_h * vp.scale)

    def paint(self, p, vp) -> None:
        if not self.visible:
            return
        view = QRectF(0, 0, vp.view_w, vp.view_h)
        font = QFont(p.font())
        font.setBold(True)
        p.setFont(font)
        s = self.session
        if s is not None:
            x0, y0 = vp.to_slide(0, 0)
            x1, y1 = vp.to_slide(vp.view_w, vp.view_h)
            shown = s.reviewed_in(x0, y0, x1, y1, limit=MAX_DETAILED + 1)
            if len(shown) > MAX_DETAILED:
                self._paint_many(p, vp, s.reviewed_in(x0, y0, x1, y1))
            else:
                self._paint_detailed(p, vp, view, shown)
        for r in self.selected:
            if r.tile_x is None:
                continue
            rect = self._rect(vp, r)
            p.fillRect(rect, QColor(SELECTED.red(), SELECTED.green(), SELECTED.blue(), 70))
            p.setPen(QPen(SELECTED, 2, Qt.PenStyle.DashLine))
            p.drawRect(rect)
        cur = self.current
        if cur is not None and cur.tile_x is not None:
            # black and white dashes: no label's outline looks like this (uncertain is white)
            rect = self._rect(vp, cur).adjusted(-4, -4, 4, 4)
            p.setPen(QPen(QColor(0, 0, 0), 7))
            p.drawRect(rect)
            p.setPen(QPen(CURRENT, 4, Qt.PenStyle.DashLine))
            p.drawRect(rect)
        if self.band is not None:
            p.fillRect(self.band, QColor(SELECTED.red(), SELECTED.green(), SELECTED.blue(), 40))
            p.setPen(QPen(SELECTED, 1.5, Qt.PenStyle.DashLine))
            p.drawRect(self.band)

    def _paint_detailed(self, p, vp, view: QRectF, records) -> None:
        """Outlines on a dark halo, with the label's key and code on tiles large enough."""
        for r in records:
            rect = self._rect(vp, r)
            if not rect.intersects(view):
                continue
            colour = label_colour(r.label)
            inner = rect.adjusted(2, 2, -2, -2) if rect.width() > 12 else rect
            p.setPen(QPen(HALO, 5 if rect.width() > 12 else 3))
            p.drawRect(inner)
            p.setPen(QPen(colour, 3 if rect.width() > 12 else 1.5))
            p.drawRect(inner)
            if rect.width() >= MIN_TEXT_PX:
                text = short_label(r.label or "")
                if p.fontMetrics().horizontalAdvance(text) + 12 > inner.width():
                    text = text.split(" ")[0]  # the key alone: tags never spill onto neighbours
                self._tag(p, inner, text, colour)

    def _paint_many(self, p, vp, records) -> None:
        """Thousands of outlines in view (zoomed out): one batched draw per label colour."""
        by_label: dict = {}
        for r in records:
            by_label.setdefault(r.label, []).append(self._rect(vp, r))
        for label, rects in by_label.items():
            p.setPen(QPen(label_colour(label), 1.5))
            p.drawRects(rects)

    @staticmethod
    def _tag(p, rect: QRectF, text: str, colour: QColor) -> None:
        """The label's tag at the tile's top left (callers pass text that fits the tile)."""
        fm = p.fontMetrics()
        w, h = fm.horizontalAdvance(text) + 8, fm.height() + 2
        box = QRectF(rect.left() + 2, rect.top() + 2, w, h)
        p.fillRect(box, QColor(0, 0, 0, 170))
        p.setPen(colour.lighter(130))
        p.drawText(box, Qt.AlignmentFlag.AlignCenter, text)


class TilePicker(QObject):
    """Modifier-click and rubber-band selection on the slide view."""

    toggled = Signal(float, float)  # level-0 point: toggle the tile there
    banded = Signal(float, float, float, float)  # level-0 corners: add the tiles inside

    MODS = Qt.KeyboardModifier.ShiftModifier | Qt.KeyboardModifier.ControlModifier

    def __init__(self, view, layer: ReviewLayer, parent=None):
        super().__init__(parent)
        self.view, self.layer = view, layer
        self.active = False
        self._start: QPointF | None = None
        view.installEventFilter(self)

    def eventFilter(self, obj, event) -> bool:
        if not self.active or obj is not self.view or self.view.vp is None:
            return False
        t = event.type()
        if t == QEvent.Type.MouseButtonPress and event.button() == Qt.MouseButton.LeftButton \
                and event.modifiers() & self.MODS:
            self._start = event.position()
            return True
        if self._start is None:
            return False
        if t == QEvent.Type.MouseMove:
            self.layer.band = QRectF(self._start, event.position()).normalized()
            self.view.update()
            return True
        if t == QEvent.Type.MouseButtonRelease and event.button() == Qt.MouseButton.LeftButton:
            start, end = self._start, event.position()
            self._start, self.layer.band = None, None
            vp = self.view.vp
            if (end - start).manhattanLength() < 4:
                self.toggled.emit(*vp.to_slide(end.x(), end.y()))
            else:
                self.banded.emit(*vp.to_slide(start.x(), start.y()),
                                 *vp.to_slide(end.x(), end.y()))
            self.view.update()
            return True
        return False
