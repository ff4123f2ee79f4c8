"""Slide sources on real data: the CMU sample, patch folders, BreakHis names, privacy."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from slide_factory import breakhis_tree

from pvdesk.cli import main
from pvdesk.paths import sample_slide
from pvdesk.slides import PatchFolderSource, open_source, parse_breakhis_name
from pvdesk.tiling import make_grid

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
CMU = sample_slide()


def test_cmu_sample_metadata():
    with open_source(CMU) as src:
        assert src.vendor == "aperio"
        assert src.dimensions == (2220, 2967)
        assert src.mpp == pytest.approx(0.499, abs=1e-3)
        assert src.objective_power == 20
        props = src.properties()
        # label/macro images can carry patient names: never in properties or listings
        assert not any("label" in str(v).lower() or "macro" in str(v).lower()
                       for v in props.values())
        assert set(src.associated_image_names()) >= {"label", "macro"}
        assert src.associated_image("label").mode == "RGB"  # explicit access only


def test_slide_id_follows_content_not_path(tmp_path):
    copy = tmp_path / "renamed copy.svs"
    shutil.copy(CMU, copy)
    other = tmp_path / "other.png"
    from PIL import Image

    Image.new("RGB", (32, 32), (200, 100, 150)).save(other)
    with open_source(CMU) as a, open_source(copy) as b, open_source(other) as c:
        assert a.slide_id == b.slide_id and len(a.slide_id) == 20
        assert c.slide_id != a.slide_id


def test_cmu_tiles_land_on_tissue():
    with open_source(CMU) as src:
        grid = make_grid(src)  # 112 um = 224 px at 0.499 um/px
        assert grid.side == 224 and grid.level == 0 and grid.units == "um"
        assert 40 <= len(grid) <= 70
        mask = grid.mask
        for t in grid.tiles:
            assert mask.fraction(t.x, t.y, t.w, t.h) >= 0.25
            assert t.x + t.w <= 2220 + t.w and t.y + t.h <= 2967 + t.h
        # the tiles are tissue: saturated pixels, not white glass
        sats = []
        for t in grid.tiles[::5]:
            hsv = np.asarray(src.read_tile(t, grid).convert("HSV"), np.float32)
            sats.append(hsv[..., 1].mean() / 255)
        assert np.mean(sats) > 0.15
        # and the rejected positions are mostly glass
        kept = {(t.x, t.y) for t in grid.tiles}
        glass = [(x, y) for y in range(0, 2967, 224) for x in range(0, 2220, 224)
                 if (x, y) not in kept]
        assert np.mean([mask.fraction(x, y, 224, 224) for x, y in glass]) < 0.1


def test_cli_info_and_tiles_preview(tmp_path, capsys):
    assert main(["info", str(CMU)]) == 0
    out = capsys.readouterr().out
    assert "aperio" in out and "2220 x 2967" in out and "0.499" in out
    assert "tissue fraction" in out and "tiles on tissue" in out
    preview = tmp_path / "p.png"
    assert main(["tiles", str(CMU), "--preview", str(preview), "--tile-um", "224"]) == 0
    from PIL import Image

    img = Image.open(preview)
    assert max(img.size) == 1600
    assert "tiles on tissue" in capsys.readouterr().out


def test_breakhis_names():
    n = parse_breakhis_name("SOB_B_F-14-25197-100-001")
    assert (n.subtype, n.group, n.patient, n.magnification, n.seq) == (
        "fibroadenoma", "benign", "14-25197", 100, 1)
    assert parse_breakhis_name("SOB_M_DC-14-2523-40-010").subtype == "ductal_carcinoma"
    assert parse_breakhis_name("SOB_B_DC-14-2523-40-010") is None  # group contradicts code
    assert parse_breakhis_name("holiday-photo") is None


def test_generated_breakhis_tree(tmp_path):
    root = breakhis_tree(tmp_path / "bh", per_class=2)
    with open_source(root) as src:
        assert isinstance(src, PatchFolderSource)
        assert len(src.patches) == 16
        assert {p.label for p in src.patches} == {
            "adenosis", "fibroadenoma", "tubular_adenoma", "phyllodes_tumor",
            "ductal_carcinoma", "lobular_carcinoma", "mucinous_carcinoma", "papillary_carcinoma"}
        assert all(p.breakhis and p.breakhis.subtype == p.folder_class for p in src.patches)
        grid = make_grid(src, out_size=96)
        assert len(grid) == 16 and grid.tiles[3].patch == str(src.patches[3].path)
        assert src.read_tile(grid.tiles[0], grid).size == (96, 96)
        assert src.thumbnail(256).size[0] <= 256


def test_flat_folder_takes_class_from_breakhis_names(tmp_path):
    root = breakhis_tree(tmp_path / "bh", per_class=1)
    flat = tmp_path / "flat"
    flat.mkdir()
    for p in root.rglob("*.png"):
        shutil.copy(p, flat / p.name)
    with open_source(flat) as src:
        assert all(p.folder_class is None and p.label for p in src.patches)


def test_shared_breakhis_sample():
    root = SHARED / "breakhis-sample"
    if not root.exists():
        pytest.skip("../shared/data/breakhis-sample not present")
    with open_source(root) as src:
        assert len(src.patches) == 12
        assert len({p.label for p in src.patches}) == 8
        fa = [p for p in src.patches if p.patient == "14-25197"]
        assert sorted(p.breakhis.magnification for p in fa) == [40, 100, 200, 400]
        grid = make_grid(src)
        assert src.read_tile(grid.tiles[0], grid).size == (224, 224)
