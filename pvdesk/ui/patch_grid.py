"""Patch-folder mode: a virtualised thumbnail grid (QListView in icon mode).

Thumbnails load lazily on a small thread pool, newest request first, into a bounded LRU
cache; only the items the view paints are ever requested, so a folder of thousands of
images scrolls at once. Each item shows its predicted label and confidence (after a run),
its folder class (red when the two disagree) and, once reviewed, an outline in the label's
colour with the reviewer's label.
"""

from __future__ import annotations

import sys
import threading
from collections import OrderedDict, deque
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import (
    QAbstractListModel,
    QModelIndex,
    QObject,
    QRect,
    QRunnable,
    QSize,
    Qt,
    QThreadPool,
    Signal,
)
from PySide6.QtGui import QColor, QFont, QImage, QPen
from PySide6.QtWidgets import QAbstractItemView, QListView, QStyle, QStyledItemDelegate

from pvdesk.review.types import CORRECTED, UNREVIEWED
from pvdesk.ui.review_layer import HALO, label_colour, short_label

THUMB = 148
CELL = QSize(THUMB + 12, THUMB + 46)
MAX_PENDING = 256  # requests beyond this (scrolled far past) are dropped, oldest first
SHUTDOWN_TIMEOUT_MS = 30_000  # closing waits this long for running thumbnail reads
_ABANDONED: list = []  # pools whose reads outlived a shutdown (never destroyed, never waited)
RecordRole = Qt.ItemDataRole.UserRole + 1
FOCUS = QColor("#0d47a1")  # the current image: dark blue, a colour no class uses


@dataclass(frozen=True)
class GridItem:
    path: str
    folder_class: str | None = None
    rec: object = None  # TileRecord once a run has predicted it


def load_thumbnail(path: str, size: int = THUMB) -> QImage:
    """A QImage thumbnail (safe off the GUI thread); a null image when unreadable."""
    from PIL import Image

    from pvdesk.ui.tile_loader import pil_to_qimage

    try:
        with Image.open(path) as im:
            im.draft("RGB", (size, size))
            im = im.convert("RGB")
            im.thumbnail((size, size))
            return pil_to_qimage(im)
    except Exception:
        return QImage()


def tooltip(it: GridItem, blinded: bool = False) -> str:
    from pvdesk.ui.review_queue import class_text

    lines = [it.path]
    if it.folder_class:
        lines.append(f"folder class: {class_text(it.folder_class)}")
    rec = it.rec
    if rec is not None and blinded:  # blinded reading: the reader's own label only
        if rec.status != UNREVIEWED:
            lines.append(f"your label: {class_text(rec.label)}")
    elif rec is not None:
        top = sorted(zip(rec.classes, rec.probs, strict=True), key=lambda kv: -kv[1])[:3]
        lines.append("predicted: " + ", ".join(f"{class_text(c)} {p:.2f}" for c, p in top))
        if rec.status != UNREVIEWED:
            lines.append(f"{rec.status}: {class_text(rec.label)} ({rec.reviewer})")
    return "\n".join(lines)


class _Signals(QObject):
    done = Signal(str, QImage)


class _Job(QRunnable):
    def __init__(self, loader: ThumbLoader):
        super().__init__()
        self.loader = loader

    def run(self) -> None:
        while True:
            path = self.loader._take()
            if path is None:
                return
            self.loader._signals.done.emit(path, load_thumbnail(path, self.loader.size))


class ThumbLoader(QObject):
    ready = Signal(str)

    def __init__(self, size: int = THUMB, cache_items: int = 800, threads: int = 2, parent=None):
        super().__init__(parent)
        self.size, self.cache_items, self.threads = size, cache_items, threads
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(threads)
        self._lock = threading.Lock()
        self._pending: deque[str] = deque()
        self._queued: set[str] = set()
        self._running = 0
        self._cache: OrderedDict[str, QImage] = OrderedDict()
        self._signals = _Signals(self)
        self._signals.done.connect(self._on_done)
        self.loaded = 0

    def get(self, path: str) -> QImage | None:
        img = self._cache.get(path)
        if img is not None:
            self._cache.move_to_end(path)
            return img
        with self._lock:
            if path not in self._queued:
                self._queued.add(path)
                self._pending.append(path)
                while len(self._pending) > MAX_PENDING:
                    self._queued.discard(self._pending.popleft())
            start = self._running < self.threads
            if start:
                self._running += 1
        if start:
            self.pool.start(_Job(self))
        return None

    def _take(self) -> str | None:
        with self._lock:
            if not self._pending:
                self._running -= 1
                return None
            return self._pending.pop()  # newest first: what the user looks at now

    def _on_done(self, path: str, img: QImage) -> None:
        with self._lock:
            self._queued.discard(path)
        self._cache[path] = img
        self.loaded += 1
        while len(self._cache) > self.cache_items:
            self._cache.popitem(last=False)
        self.ready.emit(path)

    def shutdown(self) -> None:
        with self._lock:
            self._pending.clear()
            self._queued.clear()
        if not self.pool.waitForDone(SHUTDOWN_TIMEOUT_MS):  # a stuck read is left alone
            print(f"pvdesk: thumbnail reads did not finish within "
                  f"{SHUTDOWN_TIMEOUT_MS // 1000} s; closing anyway", file=sys.stderr)
            self.pool.setParent(None)
            _ABANDONED.append(self.pool)


class PatchModel(QAbstractListModel):
    def __init__(self, loader: ThumbLoader, parent=None):
        super().__init__(parent)
        self.loader = loader
        self.blinded = False
        self.items: list[GridItem] = []
        self._rows: dict[str, list[int]] = {}
        loader.ready.connect(self._on_ready)

    def set_items(self, items: list[GridItem]) -> None:
        self.beginResetModel()
        self.items = list(items)
        self._rows = {}
        for i, it in enumerate(self.items):
            self._rows.setdefault(it.path, []).append(i)
        self.endResetModel()

    def update_items(self, items: list[GridItem]) -> None:
        if [i.path for i in items] != [i.path for i in self.items]:
            self.set_items(items)
            return
        self.items = list(items)
        if items:
            self.dataChanged.emit(self.index(0), self.index(len(items) - 1))

    def row_of(self, path: str) -> int:
        rows = self._rows.get(path)
        return rows[0] if rows else -1

    def rowCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.items)

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        it = self.items[index.row()]
        if role == Qt.ItemDataRole.DecorationRole:
            return self.loader.get(it.path)
        if role == Qt.ItemDataRole.DisplayRole:
            return Path(it.path).name
        if role == RecordRole:
            return it
        if role == Qt.ItemDataRole.ToolTipRole:
            return tooltip(it, self.blinded)
        return None

    def _on_ready(self, path: str) -> None:
        for r in self._rows.get(path, ()):
            idx = self.index(r)
            self.dataChanged.emit(idx, idx, [Qt.ItemDataRole.DecorationRole])


class PatchDelegate(QStyledItemDelegate):
    def sizeHint(self, option, index) -> QSize:
        return CELL

    def paint(self, p, option, index) -> None:
        it: GridItem = index.data(RecordRole)
        r = option.rect.adjusted(3, 3, -3, -3)
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        p.save()
        p.fillRect(r, QColor("#cfe8ff") if selected else QColor("#f4f4f4"))
        img = index.data(Qt.ItemDataRole.DecorationRole)
        box = QRect(r.left() + 3, r.top() + 3, r.width() - 6, THUMB)
        if isinstance(img, QImage) and not img.isNull():
            s = img.size().scaled(box.size(), Qt.AspectRatioMode.KeepAspectRatio)
            target = QRect(0, 0, s.width(), s.height())
            target.moveCenter(box.center())
            p.drawImage(target, img)
        else:
            p.setPen(QColor("#999999"))
            p.drawText(box, Qt.AlignmentFlag.AlignCenter,
                       "unreadable" if isinstance(img, QImage) else "loading…")
        rec = it.rec
        font = QFont(option.font)
        p.setFont(font)
        fm = p.fontMetrics()
        line1 = QRect(r.left() + 3, box.bottom() + 3, r.width() - 6, fm.height())
        line2 = line1.translated(0, fm.height() + 1)
        blinded = getattr(self.parent(), "blinded", False)
        if rec is not None and not blinded:
            p.fillRect(QRect(line1.left(), line1.top() + 2, 10, fm.height() - 4),
                       label_colour(rec.predicted))
            font.setBold(True)
            p.setFont(font)
            p.setPen(QColor("#111111"))
            p.drawText(line1.adjusted(14, 0, 0, 0), Qt.AlignmentFlag.AlignVCenter,
                       f"{short_label(rec.predicted)}  {rec.confidence:.2f}")
            font.setBold(False)
            p.setFont(font)
        folder = it.folder_class
        if folder:
            disagree = rec is not None and not blinded and folder != rec.predicted
            p.setPen(QColor("#c62828") if disagree else QColor("#444444"))
            p.drawText(line2, Qt.AlignmentFlag.AlignVCenter,
                       f"folder {short_label(folder)}" + ("  ≠" if disagree else ""))
        if rec is not None and rec.status != UNREVIEWED:
            colour = label_colour(rec.label)
            p.setPen(QPen(HALO, 6))
            p.drawRect(box.adjusted(1, 1, -1, -1))
            p.setPen(QPen(colour, 4))
            p.drawRect(box.adjusted(1, 1, -1, -1))
            mark = ("● " if blinded else "✎ " if rec.status == CORRECTED else "✓ ") \
                + short_label(rec.label or "")
            tag = QRect(box.left() + 4, box.top() + 4, fm.horizontalAdvance(mark) + 10,
                        fm.height() + 2)
            p.fillRect(tag, QColor(0, 0, 0, 180))
            p.setPen(colour.lighter(130))
            p.drawText(tag, Qt.AlignmentFlag.AlignCenter, mark)
        if option.state & QStyle.StateFlag.State_HasFocus:  # the current image
            p.setPen(QPen(FOCUS, 4))
            p.drawRect(r.adjusted(1, 1, -1, -1))
        p.restore()


class PatchGrid(QListView):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.loader = ThumbLoader(parent=self)
        self.patches = PatchModel(self.loader, self)
        self.setModel(self.patches)
        self.setItemDelegate(PatchDelegate(self))
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setMovement(QListView.Movement.Static)
        self.setUniformItemSizes(True)
        self.setLayoutMode(QListView.LayoutMode.Batched)
        self.setBatchSize(256)
        self.setGridSize(CELL)
        self.setSpacing(0)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setSelectionRectVisible(True)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.blinded = False  # blinded reading: no prediction or confidence on the items

    def set_blinded(self, on: bool) -> None:
        self.blinded = bool(on)
        self.patches.blinded = self.blinded
        self.viewport().update()

    def shutdown(self) -> None:
        self.loader.shutdown()
