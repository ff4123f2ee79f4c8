"""Opening a slide whose overview needs a large pyramid level: the view shows it at once
(display tiles load as usual) and the overview follows; a small one comes with the slide."""

from __future__ import annotations

from slide_factory import paint, write_pyramid
from ui_support import LAPTOP, open_slide, show_window, slide_shown

import pvdesk.ui.opener as opener
from pvdesk.ui.opener import open_for_view, thumbnail_level_px


def test_a_large_overview_level_is_read_after_the_slide_shows(qtbot, tmp_path, monkeypatch,
                                                              pvdesk_home):
    monkeypatch.setattr(opener, "THUMB_NOW_PX", 1 << 22)  # 4 Mpx here, to keep the file small
    # one level of 2,200 x 2,000 px: the overview must be drawn from 4.4 Mpx
    slide = write_pyramid(tmp_path / "flat.tif", paint(2200, 2000, [(100, 100, 2000, 1800)]),
                          levels=1)
    opened = open_for_view(str(slide))
    try:
        assert thumbnail_level_px(opened.source) > opener.THUMB_NOW_PX
        assert opened.thumbnail is None and opened.thumbnail_later
    finally:
        opened.source.close()

    w = show_window(qtbot, LAPTOP)
    shown = []
    w.opener.opened.connect(lambda o: shown.append(w.view._thumb))
    open_slide(qtbot, w, slide, ready=slide_shown)
    assert shown == [None]  # the slide was shown before its overview existed
    qtbot.waitUntil(lambda: w.view._thumb is not None and w.navigator.hasHeightForWidth(),
                    timeout=20000)
    assert w.view._thumb.width() == 1024
    # display tiles of the fitted view load meanwhile, as for any slide
    qtbot.waitUntil(lambda: any(w.view.loader.cached(k) is not None for k in w.view.vp.tiles()),
                    timeout=20000)


def test_a_small_overview_comes_with_the_slide(tmp_path):
    slide = write_pyramid(tmp_path / "small.tif", paint(1100, 800, [(60, 60, 1000, 740)]),
                          levels=3)
    opened = open_for_view(str(slide))
    try:
        assert not opened.thumbnail_later and opened.thumbnail is not None
    finally:
        opened.source.close()
