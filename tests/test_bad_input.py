"""Malformed and hostile inputs: each raises a typed error naming the file and the problem,
and the CLI turns it into one line with exit status 2."""

from __future__ import annotations

import gzip
import io
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image
from slide_factory import paint, write_pyramid

from pvdesk.cli import main
from pvdesk.errors import (
    CorruptSlideError,
    EmptyFolderError,
    RegionReadError,
    SlideError,
    SlideNotFoundError,
    UnsupportedFormatError,
)
from pvdesk.slides import open_source
from pvdesk.tiling import make_grid

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def _png_bytes(size=(64, 48)) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((size[1], size[0], 3), 200, np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def _jpeg_bytes() -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (200, 200, 3), np.uint8)).save(
        buf, "JPEG")
    return buf.getvalue()


def _bomb_png() -> bytes:
    """A tiny file that claims 30000 x 30000 pixels (900 Mpx)."""
    img = Image.new("1", (30000, 30000))
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def _tiff_bytes(tmp: Path) -> bytes:
    write_pyramid(tmp / "_src.tiff", paint(512, 512, [(0, 0, 256, 256)]), levels=2)
    return (tmp / "_src.tiff").read_bytes()


# name -> (builder(tmp) -> path, expected error type, text the message must contain)
def _file(name, data):
    def build(tmp: Path) -> Path:
        p = tmp / name
        p.write_bytes(data(tmp) if callable(data) else data)
        return p
    return build


def _folder(files: dict):
    def build(tmp: Path) -> Path:
        d = tmp / "folder"
        d.mkdir()
        for n, data in files.items():
            (d / n).write_bytes(data)
        return d
    return build


CASES = {
    "missing path": (lambda t: t / "does not exist.svs", SlideNotFoundError, "no such file"),
    "broken symlink": (lambda t: (t / "link.svs").symlink_to(t / "gone") or t / "link.svs",
                       SlideNotFoundError, "no such file"),
    "empty folder": (_folder({}), EmptyFolderError, "holds no images"),
    "folder of text files": (_folder({"a.txt": b"x", "b.csv": b"1,2"}), EmptyFolderError,
                             "holds no images"),
    "folder with only hidden images": (_folder({".hidden.png": _png_bytes()}), EmptyFolderError,
                                       "holds no images"),
    "zero-byte svs": (_file("empty.svs", b""), CorruptSlideError, "empty (0 bytes)"),
    "zero-byte png": (_file("empty.png", b""), CorruptSlideError, "empty (0 bytes)"),
    "text named png": (_file("notes.png", b"just some text\n" * 20), UnsupportedFormatError,
                       "not an image"),
    "text named svs": (_file("notes.svs", b"hello\n" * 100), CorruptSlideError,
                       "does not recognise"),
    "html named ndpi": (_file("page.ndpi", b"<html><body>404</body></html>"), CorruptSlideError,
                        "does not recognise"),
    "zip named mrxs": (_file("slide.mrxs", lambda t: _zip_bytes()), CorruptSlideError,
                       "does not recognise"),
    "random bytes tif": (_file("noise.tif", bytes(range(256)) * 40), UnsupportedFormatError,
                         "not an image"),
    "unknown format": (_file("data.xyz", b"\x00\x01binary\x02" * 50), UnsupportedFormatError,
                       "not an image"),
    "gzip named tiff": (_file("x.tiff", gzip.compress(b"a" * 1000)), UnsupportedFormatError,
                        "not an image"),
    "pdf named jpg": (_file("scan.jpg", b"%PDF-1.4\n%\xe2\xe3\n1 0 obj\n" * 10),
                      UnsupportedFormatError, "not an image"),
    "png signature only": (_file("head.png", b"\x89PNG\r\n\x1a\n"), CorruptSlideError,
                           "damaged or truncated"),
    "truncated png": (_file("cut.png", lambda t: _png_bytes((400, 300))[:200]), CorruptSlideError,
                      "damaged or truncated"),
    "truncated jpeg": (_file("cut.jpg", lambda t: _jpeg_bytes()[:3000]), CorruptSlideError,
                       "damaged or truncated"),
    "truncated tiled tiff": (_file("cut.tiff", lambda t: _tiff_bytes(t)[:5000]),
                             SlideError, "cut.tiff"),
    "decompression bomb png": (_file("bomb.png", lambda t: _bomb_png()), CorruptSlideError,
                               "too large"),
    "directory named like a slide": (lambda t: (t / "dir.svs").mkdir() or t / "dir.svs",
                                     EmptyFolderError, "holds no images"),
}


def _zip_bytes() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("Slidedat.ini", "[GENERAL]\n")
    return buf.getvalue()


@pytest.mark.parametrize("case", sorted(CASES))
def test_malformed_input_raises_typed_error(tmp_path, case):
    build, exc_type, text = CASES[case]
    path = build(tmp_path)
    with pytest.raises(exc_type) as info:
        with open_source(path) as src:
            src.thumbnail(64)  # reading pixels must fail cleanly too
    msg = str(info.value)
    assert text in msg
    assert str(path) in msg and "\n" not in msg


@pytest.mark.parametrize("case", sorted(CASES))
def test_cli_prints_one_line_and_exits_2(tmp_path, capsys, case):
    build, _, text = CASES[case]
    path = build(tmp_path)
    assert main(["info", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("pvdesk: error: ") and text in err
    assert "Traceback" not in err


def test_shared_unreadable_svs(capsys):
    path = SHARED / "wsi" / "unreadable.svs"
    if not path.exists():
        pytest.skip("../shared/data/wsi/unreadable.svs not present")
    with pytest.raises(CorruptSlideError, match="cannot be read.*Bogus marker length"):
        open_source(path)
    assert main(["tiles", str(path), "--preview", "/tmp/never.png"]) == 2
    assert "unreadable.svs" in capsys.readouterr().err


def test_bad_mpp_and_missing_preview_folder(tmp_path, capsys):
    img = tmp_path / "ok.png"
    img.write_bytes(_png_bytes())
    with pytest.raises(SlideError, match="must be positive"):
        open_source(img, mpp=-1)
    assert main(["tiles", str(img), "--preview", str(tmp_path / "no" / "p.png")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_spaces_and_non_ascii_paths_work(tmp_path):
    d = tmp_path / "Biopsie Ålesund 2026" / "ductal carcinoma"
    d.mkdir(parents=True)
    (d / "tuile n°1 é.png").write_bytes(_png_bytes())
    shutil.copy(d / "tuile n°1 é.png", tmp_path / "Biopsie Ålesund 2026" / "image Ω.png")
    with open_source(tmp_path / "Biopsie Ålesund 2026" / "image Ω.png") as src:
        assert src.dimensions == (64, 48)
    with open_source(d.parent) as src:
        assert [t.folder_class for t in src.tiles()] == ["ductal_carcinoma", None]


def test_read_error_mid_slide_marks_tile_and_carries_on(tmp_path):
    """A corrupt level-0 tile fails alone; the handle is reopened and later reads succeed."""
    path = write_pyramid(tmp_path / "bad tile.tiff", paint(2048, 2048, [(0, 0, 2048, 2048)]),
                         levels=2, mpp=0.5, compression="zlib")
    with tifffile.TiffFile(path) as tif:
        page = tif.pages[0]
        off, count = page.dataoffsets[9], page.databytecounts[9]  # tile column 1, row 1
    data = bytearray(path.read_bytes())
    data[off:off + count] = b"\xff" * count
    path.write_bytes(bytes(data))
    with open_source(path) as src:
        grid = make_grid(src, tile_um=128, out_size=256)  # level-0 tiles aligned to TIFF tiles
        assert grid.level == 0
        failed = []
        for t in grid.tiles:
            try:
                src.read_tile(t, grid)
            except RegionReadError as exc:
                failed.append((t.x, t.y))
                assert "bad tile.tiff" in str(exc)
        assert failed == [(256, 256)]
        assert len(grid.tiles) == 64
