"""Display tiles are scaled once per zoom and blitted (pvdesk.ui.scaled_images): the same
picture as resampling every tile on every paint, at a fraction of the cost."""

from __future__ import annotations

import numpy as np
from PySide6.QtGui import QColor, QImage
from test_ui_viewer import open_and_wait, settle, window  # noqa: F401  (window: fixture)

from pvdesk.paths import sample_slide
from pvdesk.ui.scaled_images import ScaledImages


def _image(w: int, h: int, colour: str) -> QImage:
    img = QImage(w, h, QImage.Format.Format_RGB32)
    img.fill(QColor(colour))
    return img


def test_an_image_is_scaled_once_per_size_and_the_cache_is_bounded(qapp):
    cache = ScaledImages(max_bytes=3 * 100 * 100 * 4)
    tile = _image(200, 200, "#c04080")
    assert cache.at(tile, 200, 200) is tile  # its own size: drawn as it is, nothing kept
    assert len(cache) == 0
    half = cache.at(tile, 100, 100)
    assert (half.width(), half.height()) == (100, 100)
    assert half.pixelColor(50, 50) == QColor("#c04080")
    assert cache.at(tile, 100, 100).cacheKey() == half.cacheKey()  # the same image again
    assert cache.at(tile, 101, 100).width() == 101  # a size one pixel off is its own entry
    other = _image(200, 200, "#2060a0")  # another tile (or slide) of the same size
    assert cache.at(other, 100, 100).pixelColor(5, 5) == QColor("#2060a0")
    for i in range(5):  # the byte bound holds: the oldest go
        cache.at(_image(200, 200, "#808080"), 100 + i, 100)
    assert len(cache) <= 3


def _view_pixels(w) -> np.ndarray:
    img = w.view.grab().toImage().convertToFormat(QImage.Format.Format_RGB888)
    arr = np.frombuffer(img.constBits(), np.uint8, img.sizeInBytes())
    return arr.reshape(img.height(), img.bytesPerLine())[:, :img.width() * 3].astype(int)


def test_the_view_looks_the_same_as_when_each_paint_resampled(qtbot, window):  # noqa: F811
    """The view at a zoom between pyramid levels (tiles drawn at 0.5-1x their size), painted
    from cached scaled tiles, against the same view with the cache bypassed (every tile
    drawn scaled by the painter, as before): the same picture, up to resampling."""
    open_and_wait(qtbot, window, sample_slide())
    view = window.view
    view.set_scale(0.71)
    settle(qtbot, window)
    qtbot.wait(50)
    cached = _view_pixels(window)
    assert len(view._scaled) > 0  # the tiles were scaled once and kept

    class Bypass:
        def at(self, img, w, h):  # hand back the tile unscaled: the painter scales it
            return img
    original, view._scaled = view._scaled, Bypass()
    draw = view._draw_tile

    def scaled_by_painter(p, key, img, vp):
        p.drawImage(view._snapped_rect(*key.rect(vp.slide_w, vp.slide_h)), img)
    view._draw_tile = scaled_by_painter
    try:
        view.update()
        qtbot.wait(50)
        direct = _view_pixels(window)
    finally:
        view._scaled, view._draw_tile = original, draw
    assert cached.shape == direct.shape
    diff = np.abs(cached - direct)
    assert diff.mean() < 3.0, diff.mean()  # resampling differs by a few levels, not tiles
    assert np.percentile(diff, 99) < 40


def test_coarse_stand_ins_are_not_cached_at_screen_size(qtbot, window):  # noqa: F811
    """A coarse tile standing in while finer ones load is drawn many times its size:
    caching it scaled would make images larger than the screen."""
    open_and_wait(qtbot, window, sample_slide())
    view = window.view
    settle(qtbot, window)
    view.set_scale(view.vp.fit_scale * 16)
    view.repaint()  # before the finer tiles arrive: the coarse ones stand in
    tile_px = max(img.width() for img in window.loader.cache._items.values())
    biggest = max((img.width() for img in view._scaled._cache._items.values()), default=0)
    assert 0 < biggest <= 2 * tile_px, (biggest, tile_px)
