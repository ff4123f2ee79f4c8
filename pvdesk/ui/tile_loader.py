"""Display tiles read on a thread pool into a bounded LRU cache.

Each pool thread reads through its own slide handle (``source.clone()``) borrowed from a
small handle pool; the GUI thread never reads pixels. Requests no longer wanted when a job
starts (the user has moved on) are dropped without reading. Results reach the GUI thread
by a queued signal.
"""

from __future__ import annotations

import queue
import sys
import threading
from collections import OrderedDict

from PIL import Image
from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal
from PySide6.QtGui import QImage

from pvdesk.errors import PvdeskError
from pvdesk.viewport import TileKey, read_plan

SHUTDOWN_TIMEOUT_MS = 30_000  # closing the window waits this long for running reads
_ABANDONED: list = []  # pools whose reads outlived a shutdown (never destroyed, never waited)


def pil_to_qimage(img: Image.Image) -> QImage:
    """A QImage that owns its pixels (safe to pass between threads), in the raster
    engine's native RGB32 format so painting it needs no conversion."""
    img = img.convert("RGB")
    data = img.tobytes()
    q = QImage(data, img.width, img.height, img.width * 3, QImage.Format.Format_RGB888)
    return q.convertToFormat(QImage.Format.Format_RGB32)


class HandlePool:
    """Slide handles for reader threads: one per concurrent reader, closed when done."""

    def __init__(self, source, size: int):
        self._source = source
        self._free: queue.SimpleQueue = queue.SimpleQueue()
        self._all: list = []
        self._lock = threading.Lock()
        self._size = size
        self._closed = False

    def acquire(self):
        try:
            return self._free.get_nowait()
        except queue.Empty:
            pass
        with self._lock:
            if self._closed:
                raise RuntimeError("handle pool closed")
            handle = self._source.clone()
            self._all.append(handle)
            return handle

    def release(self, handle) -> None:
        with self._lock:
            if self._closed:
                handle.close()
                return
        self._free.put(handle)

    def close(self) -> None:
        """Close idle handles now; busy ones close when released."""
        with self._lock:
            self._closed = True
        while True:
            try:
                self._free.get_nowait().close()
            except queue.Empty:
                break
            except Exception as exc:  # closing one handle failed: close the others anyway
                print(f"pvdesk: a slide handle did not close: {type(exc).__name__}: {exc}",
                      file=sys.stderr)


class LruCache:
    """QImages by key, bounded by bytes."""

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self._items: OrderedDict = OrderedDict()
        self.bytes = 0

    def get(self, key):
        img = self._items.get(key)
        if img is not None:
            self._items.move_to_end(key)
        return img

    def peek(self, key):
        return self._items.get(key)

    def put(self, key, img: QImage) -> None:
        old = self._items.pop(key, None)
        if old is not None:
            self.bytes -= old.sizeInBytes()
        self._items[key] = img
        self.bytes += img.sizeInBytes()
        while self.bytes > self.max_bytes and len(self._items) > 1:
            _, dropped = self._items.popitem(last=False)
            self.bytes -= dropped.sizeInBytes()

    def clear(self) -> None:
        self._items.clear()
        self.bytes = 0

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key) -> bool:
        return key in self._items


class _Carrier(QObject):
    done = Signal(object, object, str)  # (gen, key), QImage or None, error message


class _ReadJob(QRunnable):
    def __init__(self, loader: TileLoader, gen: int, key: TileKey):
        super().__init__()
        self.setAutoDelete(True)
        self.loader, self.gen, self.key = loader, gen, key
        self.source, self.handles = loader._source, loader._handles

    def run(self) -> None:
        loader, tag = self.loader, (self.gen, self.key)
        if self.gen != loader._gen or self.key not in loader._wanted:
            loader._carrier.done.emit(tag, None, "")
            return
        handles, src = self.handles, self.source
        try:
            plan = read_plan(self.key, *src.dimensions, src.level_downsamples,
                             src.best_level_for_downsample)
            if plan is None:
                loader._carrier.done.emit(tag, None, "")
                return
            loc, level, size, out = plan
            handle = handles.acquire()
            try:
                img = handle.read_region(loc, level, size)
            finally:
                handles.release(handle)
            if img.size != out:
                img = img.resize(out, Image.Resampling.BILINEAR if out[0] > size[0]
                                 else Image.Resampling.BOX)
            loader._carrier.done.emit(tag, pil_to_qimage(img), "")
        except PvdeskError as exc:
            loader._carrier.done.emit(tag, None, str(exc))
        except Exception as exc:  # a reader thread must never take the app down
            loader._carrier.done.emit(tag, None, f"{src.path}: cannot read a tile ({exc})")


class TileLoader(QObject):
    """Asks for display tiles, delivers them through ``tile_ready``."""

    tile_ready = Signal(object)  # TileKey
    read_failed = Signal(str)

    def __init__(self, cache_mb: int = 256, threads: int = 2, parent=None):
        super().__init__(parent)
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(max(1, threads))
        self.cache = LruCache(cache_mb * 1024 * 1024)
        self._carrier = _Carrier(self)
        self._carrier.done.connect(self._on_done)
        self._source = None
        self._handles: HandlePool | None = None
        self._gen = 0
        self._wanted: frozenset = frozenset()
        self._pending: set = set()
        self.failed: set = set()

    def set_source(self, source) -> None:
        """Start over on a new pyramid source (or None)."""
        self._gen += 1
        self._wanted = frozenset()
        self.pool.clear()
        if self._handles is not None:
            self._handles.close()
        self._source = source
        self._handles = HandlePool(source, self.pool.maxThreadCount()) if source else None
        self.cache.clear()
        self._pending.clear()
        self.failed.clear()

    def set_cache_mb(self, mb: int) -> None:
        self.cache.max_bytes = mb * 1024 * 1024

    def cached(self, key: TileKey) -> QImage | None:
        return self.cache.peek(key)

    def request(self, keys: list[TileKey]) -> None:
        """Want exactly these tiles (nearest first); tiles wanted before and not now are
        dropped when their job starts."""
        if self._source is None:
            return
        self._wanted = frozenset(keys)
        for k in keys:
            if k in self.cache:
                self.cache.get(k)  # refresh recency
            elif k not in self._pending and k not in self.failed:
                self._pending.add(k)
                self.pool.start(_ReadJob(self, self._gen, k))

    @property
    def busy(self) -> bool:
        return bool(self._pending)

    def _on_done(self, tag, img, error: str) -> None:
        gen, key = tag
        if gen != self._gen:
            return
        self._pending.discard(key)
        if error:
            self.failed.add(key)
            self.read_failed.emit(error)
        elif img is not None:
            self.cache.put(key, img)
            self.tile_ready.emit(key)

    def shutdown(self) -> None:
        """Drop queued reads and wait for the running ones (call before the window goes)."""
        self._wanted = frozenset()
        self._gen += 1
        self.pool.clear()
        if not self.pool.waitForDone(SHUTDOWN_TIMEOUT_MS):
            # A read is stuck (a stalled network drive): leave it, with its own handle
            # (busy handles close when released), and keep the pool alive so that its
            # destructor does not wait for it either.
            print(f"pvdesk: tile reads did not finish within {SHUTDOWN_TIMEOUT_MS // 1000} s;"
                  " closing anyway", file=sys.stderr)
            self.pool.setParent(None)
            _ABANDONED.append(self.pool)
        if self._handles is not None:
            self._handles.close()
            self._handles = None
        self._source = None
