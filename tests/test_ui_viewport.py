"""Viewer geometry (Qt-free): zoom about a point, pan limits, display tiles, scale bar."""

from __future__ import annotations

import pytest

from pvdesk.viewport import (
    MAX_SCALE,
    TILE,
    TileKey,
    Viewport,
    display_ds,
    magnification,
    read_plan,
    scale_bar,
)


def test_fit_shows_whole_slide():
    vp = Viewport(4000, 2000, 800, 600)
    assert vp.scale == pytest.approx(0.2)
    x, y, w, h = vp.visible_rect()
    assert x <= 0 and y <= 0 and x + w >= 4000 and y + h >= 2000


def test_zoom_keeps_point_under_cursor():
    vp = Viewport(4000, 2000, 800, 600)
    before = vp.to_slide(100, 200)
    vp.zoom(3.0, 100, 200)
    assert vp.to_slide(100, 200) == pytest.approx(before)
    vp.zoom(1e9)
    assert vp.scale == MAX_SCALE
    vp.zoom(1e-9)
    assert vp.scale == pytest.approx(vp.min_scale)


def test_pan_moves_content_and_stays_on_slide():
    vp = Viewport(4000, 2000, 800, 600)
    vp.set_scale(1.0)
    cx = vp.cx
    vp.pan(-100, 0)  # drag left: content moves left, view looks further right
    assert vp.cx == pytest.approx(cx + 100)
    vp.pan(1e7, 1e7)
    assert (vp.cx, vp.cy) == (0.0, 0.0)


def test_display_ds_and_tiles():
    assert display_ds(2.0) == 1 and display_ds(1.0) == 1
    assert display_ds(0.5) == 2 and display_ds(0.3) == 2 and display_ds(0.25) == 4
    vp = Viewport(10000, 10000, 512, 512)
    vp.set_scale(1.0)
    vp.center_on(5000, 5000)
    keys = vp.tiles()
    assert all(k.ds == 1 for k in keys)
    assert len(keys) == 9  # 512 px view straddling tile borders at 5000 +- 256
    centre = keys[0]
    assert centre.rect(10000, 10000)[0] <= 5000 < centre.rect(10000, 10000)[0] + TILE


def test_edge_tile_is_clipped_and_read_plan_downsamples():
    key = TileKey(4, 2, 0)  # level-0 x from 2048, side 1024
    assert key.rect(2500, 900) == (2048, 0, 452, 900)
    plan = read_plan(key, 2500, 900, [1.0, 4.0, 16.0],
                     lambda ds: 1 if ds >= 4 else 0)
    loc, level, size, out = plan
    assert loc == (2048, 0) and level == 1
    assert size == (113, 225) and out == (113, 225)
    assert read_plan(TileKey(1, 99, 0), 2500, 900, [1.0], lambda ds: 0) is None


def test_scale_bar_is_a_round_length():
    length, label = scale_bar(0.5, 1.0)  # 0.5 um per screen px: 120 px = 60 um -> 50 um
    assert label == "50 µm" and length == pytest.approx(100)
    length, label = scale_bar(0.5, 0.01)  # 50 um per px -> 6 mm target -> 5 mm
    assert label == "5 mm" and length == pytest.approx(100)
    assert scale_bar(None, 1.0) is None


def test_magnification():
    assert magnification(20.0, 1.0) == "20x"
    assert magnification(20.0, 0.1) == "2.0x"
    assert magnification(None, 0.5) == "50%"


def test_colormap_layer_fades_low_values_and_hides_below_threshold():
    import numpy as np

    from pvdesk.colormaps import colormap_layer, lut

    img = np.asarray(colormap_layer(np.array([[0.0, 0.5, 1.0, np.nan, 0.05]]), "viridis",
                                    opacity=0.8, threshold=0.1))[0]
    assert list(img[:, 3]) == [0, 128, 204, 0, 0]
    assert tuple(img[2, :3]) == tuple(lut("viridis")[255])
