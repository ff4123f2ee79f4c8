"""The slide view: pan (drag, arrow keys) and zoom (wheel, + and -, fit) over the pyramid.

Geometry lives in ``pvdesk.viewport``; pixels come from a ``TileLoader`` (thread pool, LRU
cache). Painting draws the navigator thumbnail first, then whatever coarser display tiles
are cached, then the tiles of the current zoom, so a coarser picture shows while the finer
one arrives. Extra layers (the heatmap, review outlines) paint on top through
``add_layer``: any object with ``paint(painter, viewport)``.
"""

from __future__ import annotations

import time

from PySide6.QtCore import QPointF, QRect, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QFont, QImage, QPainter, QPen
from PySide6.QtWidgets import QWidget

from pvdesk.ui.scaled_images import ScaledImages
from pvdesk.ui.tile_loader import TileLoader, pil_to_qimage
from pvdesk.viewport import Viewport, magnification, max_display_ds, scale_bar

WHEEL_STEP = 1.25  # zoom factor per wheel notch
KEY_ZOOM = 1.5
PAN_SPEED = 900.0  # screen px per second while an arrow key is held
PAN_TAP = 48.0  # screen px a single tap moves at once
ARROWS = {Qt.Key.Key_Left: (1, 0), Qt.Key.Key_Right: (-1, 0),
          Qt.Key.Key_Up: (0, 1), Qt.Key.Key_Down: (0, -1)}
BACKGROUND = QColor("#3a3d41")


class SlideView(QWidget):
    view_changed = Signal()
    cursor_moved = Signal(float, float)  # level-0 px
    cursor_left = Signal()
    clicked = Signal(float, float, object)  # level-0 px, Qt.KeyboardModifiers (click, not drag)

    def __init__(self, loader: TileLoader | None = None, parent=None):
        super().__init__(parent)
        self.setMouseTracking(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setMinimumSize(200, 150)
        self.loader = loader or TileLoader(parent=self)
        self.loader.tile_ready.connect(self._on_tile)
        self.vp: Viewport | None = None
        self.source = None
        self._thumb: QImage | None = None
        self._scaled = ScaledImages()  # display tiles at their on-screen size
        self._layers: list = []
        self._drag: QPointF | None = None
        self._press: QPointF | None = None
        self._held: set = set()
        self._pan_timer = QTimer(self, interval=16)
        self._pan_timer.timeout.connect(self._pan_tick)
        self._last_tick = 0.0
        self._repaint_pending = False

    # content ---------------------------------------------------------------
    def set_source(self, source, thumbnail) -> None:
        """Show a pyramid source; ``thumbnail`` (PIL) is the base layer while tiles load."""
        self.source = source
        self._thumb = pil_to_qimage(thumbnail) if thumbnail is not None else None
        self.loader.set_source(source)
        w, h = source.dimensions
        self.vp = Viewport(w, h, self.width(), self.height())
        self._changed()

    def set_thumbnail(self, thumbnail) -> None:
        """The overview arrived after the source (see pvdesk.ui.opener)."""
        self._thumb = pil_to_qimage(thumbnail) if thumbnail is not None else None
        self.update()

    def clear(self) -> None:
        self.source, self._thumb, self.vp = None, None, None
        self.loader.set_source(None)
        self._changed()

    def add_layer(self, layer) -> None:
        self._layers.append(layer)
        self.update()

    def remove_layer(self, layer) -> None:
        if layer in self._layers:
            self._layers.remove(layer)
            self.update()

    # navigation --------------------------------------------------------------
    def zoom_in(self) -> None:
        self._zoom(KEY_ZOOM)

    def zoom_out(self) -> None:
        self._zoom(1 / KEY_ZOOM)

    def _zoom(self, factor: float, at: QPointF | None = None) -> None:
        if self.vp:
            self.vp.zoom(factor, *((at.x(), at.y()) if at else (None, None)))
            self._changed()

    def fit(self) -> None:
        if self.vp:
            self.vp.fit()
            self._changed()

    def set_scale(self, scale: float) -> None:
        if self.vp:
            self.vp.set_scale(scale)
            self._changed()

    def center_on(self, x: float, y: float) -> None:
        if self.vp:
            self.vp.center_on(x, y)
            self._changed()

    def pan_by(self, dx: float, dy: float) -> None:
        if self.vp:
            self.vp.pan(dx, dy)
            self._changed()

    def zoom_text(self) -> str:
        if not self.vp:
            return ""
        return magnification(getattr(self.source, "objective_power", None), self.vp.scale)

    def _changed(self) -> None:
        if self.vp:
            self.loader.request(self.vp.tiles(margin=1))
        self.update()
        self.view_changed.emit()

    def _on_tile(self, key) -> None:
        if self.vp and not self._repaint_pending:
            self._repaint_pending = True
            QTimer.singleShot(0, self._flush)

    def _flush(self) -> None:
        self._repaint_pending = False
        self.update()

    # events ------------------------------------------------------------------
    def resizeEvent(self, event) -> None:
        if self.vp:
            self.vp.resize(self.width(), self.height())
            self._changed()
        super().resizeEvent(event)

    def wheelEvent(self, event) -> None:
        steps = event.angleDelta().y() / 120.0
        if steps:
            self._zoom(WHEEL_STEP ** steps, event.position())
        event.accept()

    def mousePressEvent(self, event) -> None:
        if event.button() == Qt.MouseButton.LeftButton and self.vp:
            self._drag = event.position()
            self._press = event.position()
            self.setCursor(Qt.CursorShape.ClosedHandCursor)
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event) -> None:
        pos = event.position()
        if self._drag is not None:
            d = pos - self._drag
            self._drag = pos
            self.pan_by(d.x(), d.y())
        if self.vp:
            self.cursor_moved.emit(*self.vp.to_slide(pos.x(), pos.y()))
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            press, self._press = self._press, None
            self._drag = None
            self.unsetCursor()
            pos = event.position()
            if press is not None and self.vp and (pos - press).manhattanLength() < 4:
                self.clicked.emit(*self.vp.to_slide(pos.x(), pos.y()), event.modifiers())
        super().mouseReleaseEvent(event)

    def mouseDoubleClickEvent(self, event) -> None:
        self._zoom(2.0, event.position())

    def leaveEvent(self, event) -> None:
        self.cursor_left.emit()
        super().leaveEvent(event)

    def keyPressEvent(self, event) -> None:
        key = event.key()
        if key in ARROWS and self.vp:
            if not event.isAutoRepeat() and key not in self._held:
                self._held.add(key)
                dx, dy = ARROWS[key]
                self.pan_by(dx * PAN_TAP, dy * PAN_TAP)
                self._last_tick = time.monotonic()
                self._pan_timer.start()
            event.accept()
            return
        if key in (Qt.Key.Key_Plus, Qt.Key.Key_Equal):
            self.zoom_in()
        elif key in (Qt.Key.Key_Minus, Qt.Key.Key_Underscore):
            self.zoom_out()
        else:
            super().keyPressEvent(event)

    def keyReleaseEvent(self, event) -> None:
        if event.key() in ARROWS and not event.isAutoRepeat():
            self._held.discard(event.key())
            if not self._held:
                self._pan_timer.stop()
            event.accept()
            return
        super().keyReleaseEvent(event)

    def focusOutEvent(self, event) -> None:
        self._held.clear()
        self._pan_timer.stop()
        super().focusOutEvent(event)

    def _pan_tick(self) -> None:
        now = time.monotonic()
        dt, self._last_tick = min(0.05, now - self._last_tick), now
        dx = sum(ARROWS[k][0] for k in self._held) * PAN_SPEED * dt
        dy = sum(ARROWS[k][1] for k in self._held) * PAN_SPEED * dt
        if dx or dy:
            self.pan_by(dx, dy)

    # painting ----------------------------------------------------------------
    def paintEvent(self, event) -> None:
        p = QPainter(self)
        p.fillRect(self.rect(), BACKGROUND)
        vp = self.vp
        if vp is None:
            p.setPen(QColor("#c8c8c8"))
            p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter,
                       "Open a slide (File ▸ Open slide…) or drop one here")
            p.end()
            return
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
        target = [(k, self.loader.cached(k)) for k in vp.tiles()]
        p.fillRect(self._screen_rect(0, 0, vp.slide_w, vp.slide_h), Qt.GlobalColor.white)
        if not all(img is not None for _, img in target):
            # Something is still loading (or was evicted): ask again, and meanwhile paint
            # the thumbnail, then coarser cached tiles, beneath.
            self.loader.request([k for k, _ in target])
            if self._thumb is not None:
                p.drawImage(self._screen_rect(0, 0, vp.slide_w, vp.slide_h), self._thumb)
            self._paint_coarser(p, vp)
        for key, img in target:
            if img is not None:
                self._draw_tile(p, key, img, vp)
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)
        for layer in self._layers:
            layer.paint(p, vp)
        self._paint_scale_bar(p, vp)
        p.end()

    def _screen_rect(self, x: float, y: float, w: float, h: float) -> QRectF:
        sx, sy = self.vp.to_screen(x, y)
        return QRectF(sx, sy, w * self.vp.scale, h * self.vp.scale)

    def _snapped_rect(self, x: float, y: float, w: float, h: float) -> QRect:
        """Screen rect with edges rounded from level-0 edges, so neighbours share them
        exactly (no hairline gaps between tiles)."""
        x0, y0 = self.vp.to_screen(x, y)
        x1, y1 = self.vp.to_screen(x + w, y + h)
        left, top = round(x0), round(y0)
        return QRect(left, top, max(1, round(x1) - left), max(1, round(y1) - top))

    def _draw_tile(self, p: QPainter, key, img: QImage, vp: Viewport) -> None:
        """One display tile. A tile of the current zoom (drawn at most twice its size) is
        scaled once (ScaledImages) and then blitted; a coarser one standing in while finer
        tiles load is drawn scaled, clipped to the view (scaling it whole could make an
        image many times the screen's size)."""
        r = self._snapped_rect(*key.rect(vp.slide_w, vp.slide_h))
        if r.width() <= 2 * img.width() and r.height() <= 2 * img.height():
            p.drawImage(r.topLeft(), self._scaled.at(img, r.width(), r.height()))
        else:
            p.drawImage(r, img)

    def _paint_coarser(self, p: QPainter, vp: Viewport) -> None:
        target = vp.ds
        ds = min(target * 8, max_display_ds(vp.slide_w, vp.slide_h))
        while ds > target:
            for key in vp.tiles(ds):
                img = self.loader.cached(key)
                if img is not None:
                    self._draw_tile(p, key, img, vp)
            ds //= 2

    def _paint_scale_bar(self, p: QPainter, vp: Viewport) -> None:
        bar = scale_bar(getattr(self.source, "mpp", None), vp.scale)
        if bar is None:
            return
        length, label = bar
        x0, y0 = 16.0, self.height() - 20.0
        font = QFont(self.font())
        font.setPointSizeF(max(8.0, font.pointSizeF()))
        p.setFont(font)
        tw = p.fontMetrics().horizontalAdvance(label)
        p.fillRect(QRectF(x0 - 8, y0 - 24, max(length, tw) + 16, 34), QColor(255, 255, 255, 200))
        p.setPen(QPen(QColor("#111111"), 3))
        p.drawLine(QPointF(x0, y0), QPointF(x0 + length, y0))
        p.drawLine(QPointF(x0, y0 - 5), QPointF(x0, y0 + 3))
        p.drawLine(QPointF(x0 + length, y0 - 5), QPointF(x0 + length, y0 + 3))
        p.drawText(QPointF(x0, y0 - 8), label)
