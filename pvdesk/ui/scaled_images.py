"""Images scaled once to the size they are drawn at.

Drawing an image scaled (``QPainter.drawImage`` into a rectangle of another size, smoothly)
costs a resample of every pixel on every paint, and PySide holds the GIL throughout: while
the user pans, that starved a model run's threads and stalled the event loop. Panning at one
zoom draws the same tiles at the same sizes, so each is scaled once here and then blitted.
Entries are keyed by the source image's ``cacheKey()`` and the target size, so a new slide
or a new zoom needs no invalidation: old entries age out of the byte-bounded LRU.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QImage

from pvdesk.ui.tile_loader import LruCache

MAX_BYTES = 96 * 1024 * 1024  # several screens of 32-bit pixels at any zoom


class ScaledImages:
    def __init__(self, max_bytes: int = MAX_BYTES):
        self._cache = LruCache(max_bytes)

    def at(self, img: QImage, w: int, h: int) -> QImage:
        """``img`` scaled (smoothly) to w x h: itself when it already has that size."""
        if img.width() == w and img.height() == h:
            return img
        key = (img.cacheKey(), w, h)
        scaled = self._cache.get(key)
        if scaled is None:
            scaled = img.scaled(w, h, Qt.AspectRatioMode.IgnoreAspectRatio,
                                Qt.TransformationMode.SmoothTransformation)
            self._cache.put(key, scaled)
        return scaled

    def clear(self) -> None:
        self._cache.clear()

    def __len__(self) -> int:
        return len(self._cache)
