"""Hostile slides: patched TIFF tags, sparse giants, random and truncated bytes, bombs,
symlink loops, FIFOs, folders of junk."""

from __future__ import annotations

import io
import os
import shutil
import struct
from pathlib import Path

import numpy as np
import tifffile
from PIL import Image
from slide_factory import sparse_tiff

from pvdesk.paths import sample_slide

from .common import HAS_FIFO, make_fifo


def small_pyramid(path: Path, levels: int = 2) -> Path:
    rng = np.random.default_rng(1)
    img = np.full((768, 1024, 3), 235, np.uint8)
    img[100:500, 100:600] = rng.integers(60, 160, (400, 500, 3), dtype=np.uint8)
    with tifffile.TiffWriter(path, bigtiff=False) as tif:
        for k in range(levels):
            a = img[:: 2 ** k, :: 2 ** k]
            tif.write(a, tile=(256, 256), photometric="rgb", compression="zlib",
                      resolution=(2e4 / 2 ** k, 2e4 / 2 ** k), resolutionunit="CENTIMETER",
                      subfiletype=0 if k == 0 else 1)
    return path


def patch_tags(path: Path, values: dict[str, int]) -> Path:
    """Overwrite integer tags of every page in place (as LONG), e.g. {"TileWidth": 65536}."""
    with tifffile.TiffFile(path) as tif:
        bo, big = tif.byteorder, tif.is_bigtiff
        spots = [(page.tags[name], v) for page in tif.pages for name, v in values.items()
                 if name in page.tags]
    with open(path, "r+b") as fh:
        for tag, value in spots:
            fh.seek(tag.offset + 2)
            fh.write(struct.pack(bo + ("HQ" if big else "HI"), 4, 1))
            fh.seek(tag.valueoffset)
            fh.write(struct.pack(bo + "I", value))
    return path


def _png(size=(64, 48)) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((size[1], size[0], 3), 200, np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def _bomb_png() -> bytes:
    buf = io.BytesIO()
    Image.new("1", (30000, 30000)).save(buf, "PNG")
    return buf.getvalue()


def slide_inputs(root: Path) -> dict[str, tuple[Path, bool]]:
    """name -> (path, refused?): inputs a slide verb gets. ``refused`` ones must end in one
    line and exit 2; the others open (in bounded time and memory)."""
    root.mkdir(parents=True, exist_ok=True)
    out: dict[str, tuple[Path, bool]] = {}

    def file(name: str, data: bytes, refused: bool = True) -> None:
        p = root / name
        p.write_bytes(data)
        out[name] = (p, refused)

    sample = sample_slide().read_bytes()
    pyr = small_pyramid(root / "_pyramid.tiff")
    for side in (65536, 1_000_000, 0):
        p = root / f"tile{side}.tiff"
        shutil.copy(pyr, p)
        out[f"tile {side} px"] = (patch_tags(p, {"TileWidth": side, "TileLength": side}), True)
    cmu = root / "cmu-65520.svs"
    cmu.write_bytes(sample)
    out["CMU tile 65520 px"] = (patch_tags(cmu, {"TileWidth": 65520, "TileLength": 65520}),
                                True)
    p = root / "width-huge.tiff"
    shutil.copy(pyr, p)
    out["width 4e9 px"] = (patch_tags(p, {"ImageWidth": 4_000_000_000}), True)
    out["sparse 1M x 1M"] = (sparse_tiff(root / "sparse-1m.tiff", 1_000_000, 1_000_000,
                                         tile=4096), False)
    out["sparse 200k x 200k"] = (sparse_tiff(root / "sparse-200k.tiff", 200_000, 200_000,
                                             tile=1024), False)
    file("empty.svs", b"")
    file("random.svs", np.random.default_rng(2).bytes(65536))
    file("random.tiff", b"II*\x00" + np.random.default_rng(3).bytes(65536))
    file("random.ndpi", np.random.default_rng(4).bytes(4096))
    file("random.dcm", b"\x00" * 128 + b"DICM" + np.random.default_rng(5).bytes(4096))
    file("random.mrxs", np.random.default_rng(6).bytes(2048))
    file("text.svs", b"this is not a slide\n" * 50)
    file("truncated.svs", sample[: 1 << 16])
    file("truncated-half.svs", sample[: len(sample) // 2])
    file("bomb.png", _bomb_png())
    file("ok.png", _png(), refused=False)
    file("png-as.svs", _png())
    file("gzip.svs", b"\x1f\x8b\x08\x00" + np.random.default_rng(7).bytes(1000))
    zeros = root / "zeros.tiff"
    zeros.write_bytes(b"II*\x00" + b"\x00" * 4096)
    out["zero IFD tiff"] = (zeros, True)
    loop = root / "loop.svs"
    loop.symlink_to(loop)
    out["symlink loop"] = (loop, True)
    dangling = root / "dangling.svs"
    dangling.symlink_to(root / "gone.svs")
    out["dangling symlink"] = (dangling, True)
    if os.path.exists("/dev/zero"):
        out["/dev/zero"] = (Path("/dev/zero"), True)
    empty_dir = root / "empty-folder"
    empty_dir.mkdir()
    out["empty folder"] = (empty_dir, True)
    junk_dir = root / "junk-folder"
    junk_dir.mkdir()
    (junk_dir / "a.png").write_bytes(b"not a png")
    (junk_dir / "b.jpg").write_bytes(b"\xff\xd8junk")
    out["folder of junk images"] = (junk_dir, False)  # opens; its images fail when read
    mrxs = root / "alone.mrxs"
    mrxs.write_bytes(b"[GENERAL]\nSLIDE_VERSION=1.0\n")
    out["mrxs without data"] = (mrxs, True)
    if HAS_FIFO:
        out["FIFO slide"] = (make_fifo(root / "fifo.svs"), True)
        d = root / "dicom-fifo"
        d.mkdir()
        make_fifo(d / "a.dcm")
        out["folder with FIFO a.dcm"] = (d, True)
        d = root / "patches-fifo"
        d.mkdir()
        (d / "benign").mkdir()
        (d / "benign" / "p1.png").write_bytes(_png())
        make_fifo(d / "benign" / "p2.png")
        out["patch folder with a FIFO"] = (d, False)
    return out
