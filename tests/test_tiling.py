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


# -- the vectorised grid against the per-position reference ---------------------------------

def _random_case(rng, max_positions: int = 20000):
    from tiling_reference import GeometrySource, blob_mask

    w, h = (int(v) for v in rng.integers(1, 30000, size=2))
    mpp = [None, 0.25, 0.4999, 0.5, 1.0, float(rng.uniform(0.1, 2.0))][rng.integers(6)]
    overlap = float(rng.choice([0.0, 0.25, 0.5, 0.75, float(rng.uniform(0, 0.9))]))
    # the smallest side that keeps the reference loop quick, then anything up to 4x that
    side = max(1.0, (w * h / max_positions) ** 0.5 / (1 - overlap)) * rng.uniform(1, 4)
    src = GeometrySource(w, h, mpp=mpp, levels=int(rng.integers(1, 5)))
    mask = blob_mask(w, h, seed=int(rng.integers(1 << 30)), thumb=int(rng.integers(16, 700)),
                     density=float(rng.uniform(0.05, 0.95)))
    out_size = int(rng.choice([96, 224, 256]))
    kwargs = dict(out_size=out_size, overlap=overlap,
                  min_tissue=float(rng.choice([0.0, 0.25, 0.5, 0.999, 1.0])))
    if mpp is None:  # the grid falls back to out_size px tiles unless told the side
        kwargs["tile_px"] = max(out_size, round(side))
    elif rng.random() < 0.2:
        kwargs["tile_px"] = round(side)
    else:
        kwargs["tile_um"] = side * mpp
    return src, mask, kwargs


@pytest.mark.parametrize("seed", range(60))
def test_vectorised_grid_equals_reference(seed):
    from tiling_reference import make_grid_reference

    src, mask, kwargs = _random_case(np.random.default_rng(seed))
    new = make_grid(src, mask=mask, **kwargs)
    old = make_grid_reference(src, mask=mask, **kwargs)
    assert new.tiles == old.tiles  # same tiles, order, indices and rounded tissue values
    types = [tuple(map(type, vars(t).values())) for t in (new.tiles[:3], old.tiles[:3])[0]]
    assert types == [tuple(map(type, vars(t).values())) for t in old.tiles[:3]]  # Python ints
    for attr in ("out_size", "side", "stride", "level", "units", "tile_um", "mpp",
                 "total_positions", "warnings"):
        assert getattr(new, attr) == getattr(old, attr), attr
    assert new.xy.dtype == np.int64 and new.xy.shape == (len(old.tiles), 2)
    assert new.xy.tolist() == [[t.x, t.y] for t in old.tiles]
    assert (new.columns, new.rows) == (old.columns, old.rows)


def test_edge_tiles_overhang_and_count_partial_tissue():
    from tiling_reference import GeometrySource, make_grid_reference

    from pvdesk.tissue import TissueMask

    # 1000 x 700 px slide, all tissue; 300 px tiles: 4 columns (last overhangs by 200 px)
    src = GeometrySource(1000, 700, mpp=None)
    mask = TissueMask(np.ones((70, 100), bool), (10.0, 10.0), 0.1)
    grid = make_grid(src, tile_px=300, mask=mask, min_tissue=0.0)
    assert grid.total_positions == 4 * 3
    assert grid.xy[:, 0].max() == 900 and grid.xy[:, 1].max() == 600
    corner = grid.tiles[-1]
    assert (corner.x, corner.y) == (900, 600)
    assert corner.tissue == pytest.approx(round((100 * 100) / (300 * 300), 4))
    assert grid.tiles == make_grid_reference(src, tile_px=300, mask=mask, min_tissue=0.0).tiles
    # a slide smaller than one tile is one position
    tiny = GeometrySource(100, 50, mpp=None)
    one = make_grid(tiny, tile_px=300, min_tissue=0.05,
                    mask=TissueMask(np.ones((5, 10), bool), (10.0, 10.0), 0.1))
    assert one.total_positions == 1 and len(one) == 1


def test_grid_xy_is_read_only_and_follows_a_replaced_tile_list(pyramid):
    import dataclasses

    with open_source(pyramid) as src:
        grid = make_grid(src, tile_um=112, out_size=224, min_tissue=0.5)
    with pytest.raises(ValueError):
        grid.xy[0, 0] = 1
    sub = dataclasses.replace(grid, tiles=grid.tiles[5:9])
    assert sub.xy.tolist() == [[t.x, t.y] for t in grid.tiles[5:9]]
    assert np.allclose(grid.tissue, [t.tissue for t in grid.tiles])


def test_grid_refuses_absurd_position_counts_before_allocating():
    from tiling_reference import GeometrySource, blob_mask

    from pvdesk.tissue import TissueMask

    src = GeometrySource(200_000, 200_000, mpp=0.5)
    mask = blob_mask(200_000, 200_000, thumb=256)
    with pytest.raises(ValueError, match="grid positions"):
        make_grid(src, tile_px=16, mask=mask)  # 156 million positions
    glass = TissueMask(np.zeros((256, 256), bool), (200_000 / 256, 200_000 / 256), 0.1)
    grid = make_grid(src, tile_um=56, overlap=0.5, mask=glass)  # 12.7 million: allowed
    assert grid.total_positions == 3571 ** 2 and len(grid) == 0
