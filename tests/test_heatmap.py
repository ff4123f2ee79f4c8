"""Heatmaps on a hand-made grid: overlap averaging, tissue masking, smoothing, rendering."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from pvdesk.heatmap import ARGMAX, ROLLUP, HeatmapGrid, overlay, render
from pvdesk.slides.base import Tile
from pvdesk.taxonomy import CLASS_NAMES, colour_of, hex_to_rgb
from pvdesk.tiling import TileGrid
from pvdesk.tissue import TissueMask

CLASSES = ("ductal_carcinoma", "adenosis")  # malignant, benign


def _grid(tiles):
    """A 400 x 400 px slide, tiles of 200 px at stride 100; mask px = 100 level-0 px,
    tissue everywhere except the bottom-right mask pixel."""
    mask = np.ones((4, 4), dtype=bool)
    mask[3, 3] = False
    return TileGrid(tiles, out_size=32, side=200, stride=100, mask=TissueMask(mask, (100.0, 100.0), 0.1))


def _tiles():
    return [Tile(0, 0, 0, 200, 200), Tile(1, 100, 0, 200, 200), Tile(2, 200, 200, 200, 200)]


def _heatmap():
    hm = HeatmapGrid(_grid(_tiles()), CLASSES)
    probs = np.array([[0.9, 0.1], [0.3, 0.7], [0.6, 0.4]])
    assert hm.add(_tiles(), probs) == 3
    return hm


def test_overlaps_are_averaged_and_masked_to_tissue():
    hm = _heatmap()
    assert hm.shape == (4, 4) and hm.size == (400, 400)
    p = hm.values("ductal_carcinoma")
    nan = np.nan
    expected = np.array([[0.9, 0.6, 0.3, nan],
                         [0.9, 0.6, 0.3, nan],
                         [nan, nan, 0.6, 0.6],
                         [nan, nan, 0.6, nan]])  # (3, 3) is covered but not tissue
    np.testing.assert_allclose(p, expected, atol=1e-6)
    np.testing.assert_allclose(hm.values("adenosis") + p, np.where(np.isnan(p), nan, 1.0))
    np.testing.assert_allclose(hm.values(ROLLUP), p)  # ductal is the only malignant class
    np.testing.assert_allclose(hm.values("benign"), 1 - p, atol=1e-6)
    idx, top = hm.argmax()
    assert idx[0, 0] == 0 and idx[0, 2] == 1 and idx[3, 3] == -1 and idx[3, 0] == -1
    assert top[0, 2] == pytest.approx(0.7)
    assert hm.at(150, 50)["ductal_carcinoma"] == pytest.approx(0.6)
    assert hm.at(350, 350) is None and hm.at(50, 350) is None


def test_incremental_adds_and_nan_rows():
    hm = HeatmapGrid(_grid(_tiles()), CLASSES)
    hm.add(_tiles()[:1], np.array([[0.9, 0.1]]))
    assert np.isnan(hm.values("adenosis")[0, 2])
    hm.add(_tiles()[1:], np.array([[0.3, 0.7], [np.nan, np.nan]]))  # tile 2 unreadable
    assert hm.tiles_added == 2
    assert hm.values("adenosis")[0, 1] == pytest.approx(0.4)
    assert np.isnan(hm.values("adenosis")[2, 2])
    with pytest.raises(ValueError):
        hm.add(_tiles(), np.zeros((3, 5)))


def test_smoothing_is_normalised_over_valid_cells():
    hm = HeatmapGrid(_grid(_tiles()), CLASSES)
    hm.add(_tiles(), np.tile([[0.25, 0.75]], (3, 1)))
    s = hm.values("ductal_carcinoma", smooth=1.5)
    valid = hm.valid
    np.testing.assert_allclose(s[valid], 0.25, atol=1e-6)  # a constant stays constant
    assert np.isnan(s[~valid]).all()  # nothing bleeds into empty or non-tissue cells
    raw = _heatmap().values("ductal_carcinoma")
    sm = _heatmap().values("ductal_carcinoma", smooth=1.0)
    assert np.nanmax(sm) < np.nanmax(raw) and np.nanmin(sm) > np.nanmin(raw)


def test_render_colours_opacity_threshold():
    hm = _heatmap()
    a = np.asarray(render(hm, ARGMAX, opacity=0.5))
    assert a.shape == (4, 4, 4)
    assert tuple(a[0, 0, :3]) == hex_to_rgb(colour_of("ductal_carcinoma"))
    assert tuple(a[0, 2, :3]) == hex_to_rgb(colour_of("adenosis"))
    assert a[0, 0, 3] == 128 and a[3, 3, 3] == 0 and a[3, 0, 3] == 0
    c = np.asarray(render(hm, "ductal_carcinoma", opacity=1.0, threshold=0.5))
    assert abs(int(c[0, 0, 3]) - 0.9 * 255) <= 1 and c[0, 2, 3] == 0  # 0.3 < threshold
    r = np.asarray(render(hm, ROLLUP, opacity=1.0))
    assert r[0, 0, 0] > r[0, 0, 2] and r[0, 2, 2] > r[0, 2, 0]  # red-ish vs blue-ish


def test_render_at_picture_size_cuts_alpha_to_tissue():
    hm = _heatmap()
    img = render(hm, ARGMAX, opacity=1.0, size=(40, 40))
    a = np.asarray(img)
    assert img.size == (40, 40) and img.mode == "RGBA"
    assert a[5, 5, 3] == 255 and a[35, 35, 3] == 0 and a[35, 5, 3] == 0
    assert tuple(a[5, 25, :3]) == hex_to_rgb(colour_of("adenosis"))
    out = overlay(Image.new("RGB", (80, 80), "white"), img)
    assert out.size == (80, 80) and out.getpixel((75, 75)) == (255, 255, 255)
    smooth = render(hm, "ductal_carcinoma", smooth=1.0, size=(40, 40))
    assert smooth.size == (40, 40)


def test_all_classes_have_colours_and_a_patch_grid_is_refused():
    hm = HeatmapGrid(_grid([]), CLASS_NAMES)
    for c in CLASS_NAMES:
        assert render(hm, c).size == (4, 4)
    with pytest.raises(ValueError):
        HeatmapGrid(TileGrid([], out_size=32), CLASS_NAMES, size=(10, 10))
    with pytest.raises(KeyError):
        hm.values("nonsense")
