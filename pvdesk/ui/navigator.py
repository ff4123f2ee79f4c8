"""The navigator: the slide's thumbnail with the view's rectangle; click or drag to move."""

from __future__ import annotations

from PySide6.QtCore import QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QImage, QPainter, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

from pvdesk.ui.scaled_images import ScaledImages
from pvdesk.ui.tile_loader import pil_to_qimage


class Navigator(QWidget):
    center_requested = Signal(float, float)  # level-0 px

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setMinimumSize(160, 120)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self._thumb: QImage | None = None
        self._slide = (1, 1)
        self._rect: tuple[float, float, float, float] | None = None
        self._scaled = ScaledImages(16 * 1024 * 1024)  # the thumbnail at the widget's size
        self.setCursor(Qt.CursorShape.PointingHandCursor)

    def sizeHint(self) -> QSize:
        return QSize(240, 200)

    def heightForWidth(self, w: int) -> int:
        sw, sh = self._slide
        return max(80, min(400, int(w * sh / sw)))

    def hasHeightForWidth(self) -> bool:
        return self._thumb is not None

    def set_thumbnail(self, thumbnail, slide_size: tuple[int, int]) -> None:
        self._thumb = pil_to_qimage(thumbnail) if thumbnail is not None else None
        self._slide = (max(1, slide_size[0]), max(1, slide_size[1]))
        self._rect = None
        self.updateGeometry()
        self.update()

    def clear(self) -> None:
        self.set_thumbnail(None, (1, 1))

    def set_view_rect(self, rect: tuple[float, float, float, float] | None) -> None:
        """The view's level-0 rectangle (x, y, w, h)."""
        self._rect = rect
        self.update()

    def _image_rect(self) -> QRectF:
        sw, sh = self._slide
        s = min(self.width() / sw, self.height() / sh)
        w, h = sw * s, sh * s
        return QRectF((self.width() - w) / 2, (self.height() - h) / 2, w, h)

    def paintEvent(self, event) -> None:
        p = QPainter(self)
        p.fillRect(self.rect(), QColor("#3a3d41"))
        if self._thumb is None:
            p.end()
            return
        r = self._image_rect()
        # scaled once per size, then blitted: the view's rectangle moves on every pan
        p.drawImage(r.topLeft(), self._scaled.at(self._thumb, round(r.width()),
                                                 round(r.height())))
        if self._rect is not None:
            sw, _ = self._slide
            s = r.width() / sw
            x, y, w, h = self._rect
            view = QRectF(r.x() + x * s, r.y() + y * s, w * s, h * s).intersected(r)
            p.setPen(QPen(QColor("#00b0ff"), 2))
            p.drawRect(view.adjusted(1, 1, -1, -1) if view.width() > 4 else view)
        p.end()

    def _emit_at(self, pos) -> None:
        r = self._image_rect()
        if self._thumb is None or r.width() <= 0:
            return
        s = r.width() / self._slide[0]
        x = min(max(pos.x(), r.left()), r.right())
        y = min(max(pos.y(), r.top()), r.bottom())
        self.center_requested.emit((x - r.x()) / s, (y - r.y()) / s)

    def mousePressEvent(self, event) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            self._emit_at(event.position())

    def mouseMoveEvent(self, event) -> None:
        if event.buttons() & Qt.MouseButton.LeftButton:
            self._emit_at(event.position())
