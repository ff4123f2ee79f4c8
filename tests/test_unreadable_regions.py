"""Damaged image data is "unknown", never background; tissue rules are physical.

The damaged slides are copies of the bundled CMU sample (one level of 240 px JPEG tiles)
with the compressed data of chosen tiles zeroed, as a failing disk or an interrupted copy
leaves them. Before this rule the overview painted those tiles white, tissue detection
dropped them and predict finished with fewer tiles and no word about it; a damaged corner
tile refused the whole slide.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import tifffile
from inference_fakes import FakeClassifier
from slide_factory import paint, write_pyramid

from pvdesk.cli import main
from pvdesk.errors import RegionReadError
from pvdesk.export.csv import read_predictions_csv
from pvdesk.paths import sample_slide
from pvdesk.predict import LoadedModel, predict_source
from pvdesk.slides import open_source
from pvdesk.slides.base import Tile
from pvdesk.taxonomy import CLASS_NAMES
from pvdesk.tiling import make_grid
from pvdesk.tissue import TissueParams, mask_from_rgb

SAMPLE_TILE = 240  # the sample's TIFF tile side
SAMPLE_COLUMNS = 10  # 2220 px wide


def damaged_copy(dst, tiles):
    """A copy of the sample with the JPEG data of TIFF tiles (column, row) zeroed after
    its first quarter."""
    shutil.copy(sample_slide(), dst)
    with tifffile.TiffFile(dst) as tif:
        page = tif.pages[0]
        offsets, counts = list(page.dataoffsets), list(page.databytecounts)
    data = bytearray(dst.read_bytes())
    for col, row in tiles:
        i = row * SAMPLE_COLUMNS + col
        start, n = offsets[i] + counts[i] // 4, counts[i] - counts[i] // 4
        data[start:start + n] = bytes(n)
    dst.write_bytes(bytes(data))
    return dst


# six tiles inside the tissue and one in the glass at the top left corner
DAMAGED = [(4, 6), (5, 6), (4, 7), (3, 10), (4, 10), (5, 11), (0, 0)]


@pytest.fixture(scope="module")
def damaged(tmp_path_factory):
    return damaged_copy(tmp_path_factory.mktemp("damaged") / "damaged CMU.svs", DAMAGED)


@pytest.fixture(scope="module")
def clean_grid():
    with open_source(sample_slide()) as src:
        return make_grid(src)


def _unreadable(src, grid):
    bad = set()
    for t in grid.tiles:
        try:
            src.read_tile(t, grid)
        except RegionReadError:
            bad.add((t.x, t.y))
    return bad


def test_overview_marks_the_damaged_tiles_unknown(damaged):
    with open_source(damaged) as src:
        thumb, unknown = src.thumbnail_and_unknown(555)  # 4x smaller: 60 px per TIFF tile
    assert unknown.shape == (thumb.height, thumb.width)
    scale = thumb.width / 2220
    for col, row in DAMAGED:  # each damaged tile's inside is unknown
        x0, y0 = round((col * SAMPLE_TILE + 40) * scale), round((row * SAMPLE_TILE + 40) * scale)
        x1, y1 = (round(((c + 1) * SAMPLE_TILE - 40) * scale) for c in (col, row))
        assert unknown[y0:y1, x0:x1].all(), (col, row)
    # and not much else: the unknown area is within 64 px (the retry block) of the tiles
    assert unknown.sum() <= len(DAMAGED) * ((SAMPLE_TILE + 128) * scale) ** 2
    assert not unknown[:, round(9 * SAMPLE_TILE * scale):].any()  # the last column is fine


def test_damaged_tissue_stays_in_the_grid_and_is_counted(damaged, clean_grid):
    with open_source(damaged) as src:
        grid = make_grid(src)
        kept = {(t.x, t.y) for t in grid.tiles}
        bad = _unreadable(src, grid)
    clean = {(t.x, t.y) for t in clean_grid.tiles}
    assert clean <= kept  # no tissue tile of the undamaged slide vanished
    assert bad and bad <= {(t.x, t.y) for t in grid.tiles if t.unknown > 0}
    assert clean & bad  # some tissue tiles really cannot be read ...
    assert grid.unknown_tiles >= len(bad)  # ... and the grid says which may not be
    assert "overlap unreadable regions" in grid.describe()


def test_predict_reports_every_unreadable_tile(damaged, clean_grid, tmp_path):
    model = LoadedModel(_bundle(), FakeClassifier(CLASS_NAMES, seed=0))
    with open_source(damaged) as src:
        info = predict_source(src, [model], tmp_path / "out", heatmap_size=200)
        grid = make_grid(src)
        bad = _unreadable(src, grid)
    rows = read_predictions_csv(tmp_path / "out" / "clip_predictions.csv").rows
    assert len(rows) == len(grid) == info["tiles"] >= len(clean_grid)
    unreadable = {(r["tile_x"], r["tile_y"]) for r in rows if r["tile_status"] == "unreadable"}
    assert unreadable == bad and info["tiles_unreadable"] == len(bad)
    area = info["unreadable_area"]
    assert area["mm2"] > 0 and 0 < area["fraction"] < 0.2
    text = (tmp_path / "out" / "summary.txt").read_text()
    assert "unreadable area:" in text and "mm²" in text
    assert f"{len(bad)} of {len(grid)} could not be read" in text
    assert f"the {len(bad)} unreadable ones could change it" in text


def test_one_damaged_corner_tile_does_not_refuse_the_slide(tmp_path, capsys):
    path = damaged_copy(tmp_path / "corner.svs", [(0, 0)])
    with open_source(path) as src:  # the open-time check read exactly this pixel
        assert src.dimensions == (2220, 2967)
    assert main(["info", str(path), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["unreadable"]["mm2"] > 0 and d["unreadable"]["fraction"] < 0.02
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "unreadable:" in out and "could not be read" in out


def test_info_on_an_intact_slide_says_nothing_was_unreadable(capsys):
    assert main(["info", str(sample_slide())]) == 0
    out = capsys.readouterr().out
    assert "unreadable:      none" in out and "fragments under 800 um² are dropped" in out


def test_unreadable_rows_are_skipped_by_training(damaged, tmp_path):
    from training.data.review_csv import load_review_csv

    model = LoadedModel(_bundle(), FakeClassifier(CLASS_NAMES, seed=0))
    with open_source(damaged) as src:
        predict_source(src, [model], tmp_path / "out", heatmap_size=200)
    csv_path = tmp_path / "out" / "clip_predictions.csv"
    ds = load_review_csv(csv_path, include_unreviewed=True)
    n_bad = sum(r["tile_status"] == "unreadable" for r in read_predictions_csv(csv_path).rows)
    assert n_bad and all(s.label in CLASS_NAMES for s in ds.samples)
    assert any(f"{n_bad} unreadable" in n for n in ds.notes)


def test_csv_import_skips_unreadable_rows(damaged, tmp_path):
    from pvdesk.export.csv_import import import_csv
    from pvdesk.review.store import ReviewStore

    model = LoadedModel(_bundle(), FakeClassifier(CLASS_NAMES, seed=0))
    with open_source(damaged) as src:
        info = predict_source(src, [model], tmp_path / "out", heatmap_size=200)
    with ReviewStore(tmp_path / "s.pvdb") as store:
        import_csv(store, tmp_path / "out" / "clip_predictions.csv")
        assert len(list(store.tiles())) == info["tiles"] - info["tiles_unreadable"]


def _bundle():
    from types import SimpleNamespace

    return SimpleNamespace(name="fake", version="1", classes=list(CLASS_NAMES), trained=True,
                           input_size=224, tile_um=112.0, manifest_hash="h",
                           label="fake 1")


# -- tissue rules in physical units ------------------------------------------------------

def test_small_fragments_survive_on_a_physically_large_slide(tmp_path):
    """A 49 mm square slide (4096 px at 12 um/px) with 0.23 mm² fragments: under the old
    rule (0.05% of a 1024 px mask = 1.26 mm² here) every fragment vanished."""
    rects = [(x, y, x + 40, y + 40) for x in range(200, 3900, 400) for y in range(200, 3900, 400)]
    path = write_pyramid(tmp_path / "large.tiff", paint(4096, 4096, rects), levels=3, mpp=12.0)
    with open_source(path) as src:
        assert src.mpp == pytest.approx(12.0)
        grid = make_grid(src, tile_um=480.0, out_size=64, min_tissue=0.5)
        mask = grid.mask
    painted = len(rects) * 40 * 40 / 4096 ** 2
    assert mask.fraction_total == pytest.approx(painted, rel=0.15)
    assert len(grid) >= len(rects)
    assert mask.dropped_objects == 0 and "um²" in mask.min_object_rule
    # the same fragments without an mpp fall back to a share of the mask, and go
    rgb = np.asarray(paint(1024, 1024, [(x // 4, y // 4, x // 4 + 10, y // 4 + 10)
                                        for x, y, *_ in rects]))
    share_mask, _ = mask_from_rgb(rgb, TissueParams())
    assert not share_mask.any()
    stats: dict = {}
    phys_mask, _ = mask_from_rgb(rgb, TissueParams(), px_um2=48.0 ** 2, stats=stats)
    assert phys_mask.sum() == pytest.approx(len(rects) * 100, rel=0.15)
    assert stats["dropped_objects"] == 0


def test_fragments_under_the_physical_minimum_are_dropped_and_reported(tmp_path, capsys):
    # 0.5 um/px: 8 x 8 px specks are 16 um² (dropped), a 200 px block is 0.01 mm² (kept)
    rects = [(1000, 1000, 1200, 1200)] + [(100 + 60 * i, 100, 108 + 60 * i, 108)
                                            for i in range(5)]
    path = write_pyramid(tmp_path / "specks.tiff", paint(2048, 2048, rects), levels=2, mpp=0.5)
    out_png = tmp_path / "preview.png"
    assert main(["tiles", str(path), "--preview", str(out_png)]) == 0
    assert "5 tissue fragment(s) dropped as too small (under 800 um²" in capsys.readouterr().out
    assert main(["info", str(path), "--json"]) == 0
    rule = json.loads(capsys.readouterr().out)["tissue_rule"]
    assert rule["dropped_fragments"] == 5 and rule["min_object"] == "under 800 um²"
    with open_source(path) as src:
        grid = make_grid(src)
    assert [(t.x, t.y) for t in grid.tiles] and all(t.x >= 672 for t in grid.tiles)


def test_a_huge_tile_with_an_unreadable_part_is_unreadable(tmp_path):
    """A tile read in blocks (no pyramid level near its size) is whole or unreadable,
    never classified with white where the data was damaged."""
    path = write_pyramid(tmp_path / "flat.tiff", paint(512, 512, [(0, 0, 512, 512)]), levels=1,
                         mpp=0.5)
    with open_source(path) as src:
        real = src.read_region

        def flaky(location, level, size):
            if location[0] + size[0] > 256:  # overlaps the damaged right half
                raise RegionReadError(src.path, "damaged (test)")
            return real(location, level, size)

        src.read_region = flaky
        grid = type("G", (), {"level": 0, "out_size": 64})()
        import pvdesk.slides.base as base

        old = base.READ_BLOCK_PX
        base.READ_BLOCK_PX = 1 << 14  # force the block path for a 512 px tile
        try:
            with pytest.raises(RegionReadError, match="cannot be read"):
                src.read_tile(Tile(0, 0, 0, 512, 512), grid)
            assert src.read_tile(Tile(0, 0, 0, 256, 256), grid).size == (64, 64)
        finally:
            base.READ_BLOCK_PX = old


def test_mask_is_fine_enough_for_fragments_a_few_cells_wide(tmp_path):
    """96 um fragments on a 49 mm slide: a 1024 px mask (48 um pixels) loses them to the
    opening; the mask is made finer (here 2048 px, 24 um pixels) when the mpp is known."""
    from pvdesk.tissue import detect_tissue, mask_size

    rects = [(x, y, x + 8, y + 8) for x in range(300, 3800, 500) for y in range(300, 3800, 500)]
    path = write_pyramid(tmp_path / "biopsy.tiff", paint(4096, 4096, rects), levels=3, mpp=12.0)
    with open_source(path) as src:
        assert mask_size(src) == 2048
        fine = detect_tissue(src)
        coarse = detect_tissue(src, TissueParams(max_thumb_size=1024))
    assert fine.mask.shape == (2048, 2048) and coarse.mask.shape == (1024, 1024)
    assert coarse.fraction_total == 0.0  # every fragment gone at 48 um per pixel
    from scipy import ndimage

    assert ndimage.label(fine.mask)[1] == len(rects)  # every one kept
    with open_source(sample_slide()) as src:
        assert mask_size(src) == 1024  # a small slide keeps the 1024 px floor
