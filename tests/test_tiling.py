"""Tissue mask, tile count and coordinates on synthetic pyramids with known tissue."""

from __future__ import annotations

import numpy as np
import pytest
from slide_factory import TISSUE, paint, write_pyramid

from pvdesk.slides import open_source
from pvdesk.tiling import make_grid
from pvdesk.tissue import TissueParams, detect_tissue

# 4096 x 3072 level 0 at 0.5 um/px; tissue aligned to the 224 px (112 um) grid:
# columns 4..9, rows 2..7 at 112 um; columns 2..4, rows 1..3 at 224 um.
RECT = (224 * 4, 224 * 2, 224 * 10, 224 * 8)


@pytest.fixture(scope="module")
def pyramid(tmp_path_factory):
    path = tmp_path_factory.mktemp("slides") / "known tissue é.tiff"
    return write_pyramid(path, paint(4096, 3072, [RECT]), levels=3, mpp=0.5)


def test_pyramid_opens_with_levels_and_mpp(pyramid):
    with open_source(pyramid) as src:
        assert src.vendor == "generic-tiff"
        assert src.dimensions == (4096, 3072)
        assert src.level_count == 3
        assert src.level_downsamples == pytest.approx([1, 2, 4])
        assert src.mpp == pytest.approx(0.5)


def test_mask_matches_painted_tissue(pyramid):
    with open_source(pyramid) as src:
        mask = detect_tissue(src, TissueParams(thumb_size=1024))
    assert mask.mask.shape == (768, 1024)
    dx, dy = mask.downsample
    truth = np.zeros_like(mask.mask)
    x0, y0, x1, y1 = (round(v / dx) for v in RECT)
    truth[y0:y1, x0:x1] = True
    agreement = (mask.mask == truth).mean()
    assert agreement > 0.998
    assert mask.fraction(*RECT[:2], RECT[2] - RECT[0], RECT[3] - RECT[1]) > 0.99
    assert mask.fraction(0, 0, 500, 300) == 0.0


@pytest.mark.parametrize(
    "tile_um, side, level, cols, rows",
    [(112, 224, 0, range(4, 10), range(2, 8)), (224, 448, 1, range(2, 5), range(1, 4))],
)
def test_grid_count_coordinates_and_level(pyramid, tile_um, side, level, cols, rows):
    with open_source(pyramid) as src:
        grid = make_grid(src, tile_um=tile_um, out_size=224, min_tissue=0.5)
        expected = [(c * side, r * side) for r in rows for c in cols]
        assert [(t.x, t.y) for t in grid.tiles] == expected  # row-major, deterministic
        assert all((t.w, t.h) == (side, side) for t in grid.tiles)
        assert [t.index for t in grid.tiles] == list(range(len(expected)))
        assert grid.level == level
        assert grid.units == "um" and not grid.warnings
        img = src.read_tile(grid.tiles[0], grid)
        assert img.size == (224, 224)
        centre = np.asarray(img)[100:124, 100:124].reshape(-1, 3).mean(0)
        assert np.abs(centre - TISSUE).max() < 12


def test_overlap_halves_the_stride(pyramid):
    with open_source(pyramid) as src:
        grid = make_grid(src, tile_um=112, overlap=0.5, min_tissue=0.6)
    assert grid.stride == 112
    # along each axis the 6 aligned tiles gain 5 half-offset neighbours fully inside the
    # tissue; those half outside (fraction 0.5) fall under the 0.6 threshold
    assert len(grid) == 11 * 11


def test_unknown_mpp_falls_back_to_pixels_and_says_so(tmp_path):
    path = write_pyramid(tmp_path / "nompp.tiff", paint(1024, 768, [(256, 256, 768, 512)]),
                         levels=2, mpp=None)
    with open_source(path) as src:
        assert src.mpp is None
        grid = make_grid(src, tile_um=112, out_size=128, min_tissue=0.5)
        assert grid.units == "px" and grid.side == 128
        assert "microns per pixel unknown" in grid.warnings[0]
        assert {(t.x, t.y) for t in grid.tiles} == {(x, y) for x in (256, 384, 512, 640)
                                                   for y in (256, 384)}
    with open_source(path, mpp=0.25) as src:  # the user states the mpp
        grid = make_grid(src, tile_um=64, out_size=128, min_tissue=0.5)
        assert grid.units == "um" and grid.side == 256 and not grid.warnings


def test_blank_slide_has_no_tissue(tmp_path):
    path = write_pyramid(tmp_path / "blank.tiff", paint(1024, 1024, []), levels=1)
    with open_source(path) as src:
        grid = make_grid(src)
    assert len(grid) == 0 and grid.mask.fraction_total == 0.0
