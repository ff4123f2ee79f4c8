"""Slides at hostile or real scale: limits checked before any allocation, thumbnails in
bounded memory, no blocking on FIFOs, slide ids that tell files apart.

Every fixture is generated here (tifffile, numpy); the big ones are sparse TIFFs (tiles
with no bytes), so they cost kilobytes on disk and OpenSlide reads them as empty glass.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image
from slide_factory import paint, sparse_tiff, write_pyramid

from pvdesk.errors import CorruptSlideError, RegionReadError, SlideError, UnsupportedFormatError
from pvdesk.paths import sample_slide
from pvdesk.slides import open_source
from pvdesk.slides.base import ID_SAMPLE_SIZE, ID_SAMPLES, content_id
from pvdesk.slides.limits import MAX_TILE_SIDE, check_slide_file

ROOT = Path(__file__).resolve().parents[1]
needs_fifo = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")


def patch_tags(path: Path, values: dict[str, int], pages=None) -> Path:
    """Overwrite integer tags in place (as LONG), e.g. {"TileWidth": 65536}."""
    with tifffile.TiffFile(path) as tif:
        bo, big = tif.byteorder, tif.is_bigtiff
        spots = []
        for k, page in enumerate(tif.pages):
            if pages is None or k in pages:
                spots += [(page.tags[name], v) for name, v in values.items()]
    with open(path, "r+b") as fh:
        for tag, value in spots:
            fh.seek(tag.offset + 2)  # the entry's type and count, then its value field
            fh.write(struct.pack(bo + ("HQ" if big else "HI"), 4, 1))
            fh.seek(tag.valueoffset)
            fh.write(struct.pack(bo + "I", value))
    return path


def run_isolated(code: str, address_space_gib: float, timeout: float = 120):
    """Run ``code`` in a fresh interpreter under an address-space limit."""
    prelude = (
        "import resource, sys\n"
        f"lim = int({address_space_gib} * 2**30)\n"
        "resource.setrlimit(resource.RLIMIT_AS, (lim, lim))\n"
    )
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "tests")]))
    return subprocess.run([sys.executable, "-c", prelude + code], capture_output=True,
                          text=True, timeout=timeout, env=env, cwd=ROOT)


OPEN_AND_THUMB = """
from pvdesk.errors import SlideError
from pvdesk.slides import open_source
try:
    with open_source({path!r}) as src:
        src.thumbnail(256)
except SlideError as exc:
    print(exc, file=sys.stderr)
    sys.exit(2)
print("opened")
"""


# -- absurd tile sizes: refused before OpenSlide allocates ----------------------------------

@pytest.fixture(scope="module")
def small_pyramid(tmp_path_factory):
    path = tmp_path_factory.mktemp("limits") / "small.tiff"
    return write_pyramid(path, paint(1024, 768, [(100, 100, 600, 500)]), levels=2)


@pytest.mark.skipif(sys.platform == "win32", reason="RLIMIT_AS is POSIX")
@pytest.mark.parametrize("side", [65536, 1_000_000])
def test_absurd_tile_size_is_a_slide_error_not_an_abort(tmp_path, small_pyramid, side):
    # OpenSlide would allocate side^2 * 4 bytes for one tile; under a 4 GiB address space
    # that allocation fails and GLib aborts the process (SIGABRT) - unless pvdesk refuses
    # the file first.
    bad = tmp_path / "huge tiles.tiff"
    shutil.copy(small_pyramid, bad)
    patch_tags(bad, {"TileWidth": side, "TileLength": side})
    done = run_isolated(OPEN_AND_THUMB.format(path=str(bad)), address_space_gib=4)
    assert done.returncode == 2, (done.returncode, done.stderr[-2000:])
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr
    assert str(bad) in lines[0] and f"tile width of {side} px" in lines[0]


def test_absurd_tile_size_in_a_later_page_and_cli_line(tmp_path, small_pyramid):
    bad = tmp_path / "late.tiff"
    shutil.copy(small_pyramid, bad)
    patch_tags(bad, {"TileLength": MAX_TILE_SIDE + 16}, pages={1})
    with pytest.raises(CorruptSlideError, match=r"tile height of 16400 px in TIFF image 1"):
        open_source(bad)
    done = subprocess.run([sys.executable, "-m", "pvdesk", "info", str(bad)],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "tile height of 16400 px" in (done.stderr + done.stdout)


def test_zero_tile_size_and_impossible_tag_counts_are_refused(tmp_path, small_pyramid):
    zero = patch_tags(shutil.copy(small_pyramid, tmp_path / "zero.tiff"), {"TileWidth": 0})
    with pytest.raises(CorruptSlideError, match="tile width of 0 px"):
        open_source(zero)
    # a tag that claims more values than the file has bytes
    claims = tmp_path / "claims.tiff"
    shutil.copy(small_pyramid, claims)
    with tifffile.TiffFile(claims) as tif:
        tag = tif.pages[0].tags["TileOffsets"]
        bo = tif.byteorder
    with open(claims, "r+b") as fh:
        fh.seek(tag.offset + 4)
        fh.write(struct.pack(bo + "I", 0x7FFFFFFF))
    with pytest.raises(CorruptSlideError, match=r"claims 2147483647 values"):
        open_source(claims)


def test_real_sample_passes_the_checks_and_a_patched_copy_does_not(tmp_path):
    check_slide_file(sample_slide())  # the bundled Aperio file is fine
    copy = shutil.copy(sample_slide(), tmp_path / "CMU patched.svs")
    patch_tags(Path(copy), {"TileWidth": 65520, "TileLength": 65520}, pages={0})
    with pytest.raises(CorruptSlideError, match="tile width of 65520 px"):
        open_source(copy)


def test_dicom_frame_size_is_checked_in_the_header(tmp_path):
    def dicom(rows: int) -> bytes:
        head = b"\0" * 128 + b"DICM"
        element = b"\x28\x00\x10\x00US\x02\x00" + struct.pack("<H", rows)
        return head + element + b"\x28\x00\x11\x00US\x02\x00" + struct.pack("<H", 256)

    (tmp_path / "ok").mkdir()
    (tmp_path / "bad").mkdir()
    (tmp_path / "ok" / "level.dcm").write_bytes(dicom(512))
    (tmp_path / "bad" / "level.dcm").write_bytes(dicom(65535))
    check_slide_file(tmp_path / "ok" / "level.dcm")
    with pytest.raises(CorruptSlideError, match="DICOM frame height of 65535 px"):
        check_slide_file(tmp_path / "bad" / "level.dcm")


# -- FIFOs and other non-regular files: refused at once, never opened ------------------------

@needs_fifo
def test_fifo_named_dcm_in_a_folder_is_refused_quickly(tmp_path):
    folder = tmp_path / "slide"
    folder.mkdir()
    os.mkfifo(folder / "a.dcm")
    Image.new("RGB", (32, 32), (200, 100, 150)).save(folder / "patch.png")
    t = time.monotonic()
    with pytest.raises(UnsupportedFormatError) as err:
        open_source(folder)
    assert time.monotonic() - t < 5
    msg = str(err.value)
    assert str(folder / "a.dcm") in msg and "FIFO" in msg and "\n" not in msg


@needs_fifo
def test_fifo_as_a_slide_or_beside_a_dicom_is_refused(tmp_path):
    os.mkfifo(tmp_path / "pipe.svs")
    with pytest.raises(UnsupportedFormatError, match="FIFO"):
        open_source(tmp_path / "pipe.svs")
    with pytest.raises(UnsupportedFormatError, match="FIFO"):
        content_id(tmp_path / "pipe.svs")
    # OpenSlide's DICOM reader opens every file in the slide's folder, whatever its name
    (tmp_path / "level.dcm").write_bytes(b"\0" * 128 + b"DICM" + b"\0" * 64)
    with pytest.raises(UnsupportedFormatError, match=r"pipe\.svs.*FIFO"):
        check_slide_file(tmp_path / "level.dcm")


@needs_fifo
def test_fifo_among_patches_is_skipped_and_image_reads_never_block(tmp_path):
    from pvdesk.slides.image_source import load_rgb

    folder = tmp_path / "patches"
    folder.mkdir()
    Image.new("RGB", (32, 32), (200, 100, 150)).save(folder / "a.png")
    os.mkfifo(folder / "b.png")
    with open_source(folder) as src:
        assert [p.path.name for p in src.patches] == ["a.png"]
        assert len(src.slide_id) == 20
    t = time.monotonic()
    with pytest.raises(UnsupportedFormatError, match="FIFO"):
        load_rgb(folder / "b.png")
    assert time.monotonic() - t < 5


def test_device_is_refused_by_kind():
    if not Path("/dev/zero").exists():
        pytest.skip("no /dev/zero")
    with pytest.raises(UnsupportedFormatError, match="character device"):
        open_source("/dev/zero")


# -- thumbnails: blocks, never a whole level -----------------------------------------------

@pytest.mark.skipif(sys.platform == "win32", reason="RLIMIT_AS is POSIX")
def test_thumbnail_of_a_big_tiff_without_pyramid_fits_in_bounded_memory(tmp_path):
    # 20000 x 20000 px, one level: a whole-level RGB buffer is 1.2 GB, more than the
    # 1 GiB address space the child gets (interpreter, numpy, scipy and OpenSlide included)
    path = sparse_tiff(tmp_path / "flat.tiff", 20000, 20000, every=97)
    code = f"""
from pvdesk.slides import open_source
from pvdesk.tiling import make_grid
with open_source({str(path)!r}) as src:
    assert src.level_count == 1
    thumb = src.thumbnail(512)
    grid = make_grid(src, min_tissue=0.0)
    print(thumb.size, grid.total_positions)
"""
    done = run_isolated(code, address_space_gib=1)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split("\n")[0].startswith("(512, 512)")


def test_thumbnail_matches_a_whole_level_box_filter(tmp_path):
    rng = np.random.default_rng(5)
    level0 = rng.integers(0, 255, (1500, 2100, 3), dtype=np.uint8)
    path = write_pyramid(tmp_path / "noise.tiff", level0, levels=2)
    with open_source(path) as src:
        for size in (64, 333, 1024):
            level = src.best_level_for_downsample(max(2100 / size, 1.0))
            whole = src.read_region((0, 0), level, src.level_dimensions[level])
            lw, lh = whole.size
            s = size / max(lw, lh)
            expect = np.asarray(whole.resize((round(lw * s), round(lh * s)), Image.BOX), int)
            got = np.asarray(src.thumbnail(size), int)
            assert got.shape == expect.shape
            assert np.abs(got - expect).max() <= 2  # rounding where blocks meet


def test_thumbnail_reads_in_bounded_blocks_and_samples_huge_levels(tmp_path, monkeypatch):
    import pvdesk.slides.base as base

    path = sparse_tiff(tmp_path / "flat.tiff", 9000, 7000, every=5)
    sizes = []
    with open_source(path) as src:
        real = src.read_region

        def spy(location, level, size):
            sizes.append(size)
            return real(location, level, size)

        monkeypatch.setattr(src, "read_region", spy)
        monkeypatch.setattr(base, "READ_BLOCK_PX", 1 << 20)
        exact = np.asarray(src.thumbnail(300), int)
        assert max(w * h for w, h in sizes) <= 1 << 20
        assert sum(w * h for w, h in sizes) >= 9000 * 7000  # every pixel read once
        sizes.clear()
        monkeypatch.setattr(base, "FULL_READ_PX", 1 << 22)  # force the sampled path
        sampled = np.asarray(src.thumbnail(300), int)
        assert sum(w * h for w, h in sizes) <= (1 << 22) + 9000 * 300
        assert sampled.shape == exact.shape
        assert np.abs(sampled - exact).mean() < 12  # a sample of the same picture
        monkeypatch.setattr(base, "MAX_READ_PX", 1 << 20)
        with pytest.raises(SlideError, match="convert it to a pyramidal TIFF"):
            src.thumbnail(300)


def test_memory_errors_become_slide_errors_naming_the_file(tmp_path, small_pyramid):
    with open_source(small_pyramid) as src:
        with pytest.raises(RegionReadError, match="too large to read at once"):
            src.read_region((0, 0), 0, (100_000, 100_000))

        def no_memory(*args, **kwargs):
            raise MemoryError

        src.read_level_resized = no_memory
        with pytest.raises(SlideError) as err:
            src.thumbnail(256)
        assert str(small_pyramid) in str(err.value) and "not enough memory" in str(err.value)


def test_huge_tiles_are_read_in_blocks(tmp_path):
    # one level, tiles far larger than a read block: read_tile box-filters block by block
    from pvdesk.tiling import make_grid

    img = paint(3000, 2000, [(0, 0, 3000, 2000)])
    path = write_pyramid(tmp_path / "one.tiff", img, levels=1)
    with open_source(path) as src:
        grid = make_grid(src, tile_px=2500, out_size=64, min_tissue=0.0)
        big = src.read_tile(grid.tiles[0], grid)
        assert big.size == (64, 64)
        truth = np.full((2500, 2500, 3), 255.0)  # the tile overhangs the slide: white below
        truth[:2000] = img[:, :2500]
        got = np.asarray(big, float)
        assert np.abs(got.mean((0, 1)) - truth.mean((0, 1))).max() < 2
        assert np.abs(got[60:] - 255).max() < 3 and np.abs(got[:48] - truth[:1800].mean((0, 1))).max() < 30


# -- slide ids ------------------------------------------------------------------------------

def test_ids_differ_for_copies_differing_only_in_a_tag(tmp_path):
    a = shutil.copy(sample_slide(), tmp_path / "a.svs")
    b = shutil.copy(sample_slide(), tmp_path / "b.svs")
    with tifffile.TiffFile(b) as tif:
        last = tif.pages[-1]
        tag = last.tags["ImageWidth"]
    assert tag.offset > 1 << 20  # past the first MiB the old id stopped at
    data = bytearray(Path(b).read_bytes())
    data[tag.valueoffset] ^= 1
    Path(b).write_bytes(bytes(data))
    assert content_id(Path(a)) == content_id(sample_slide())
    assert content_id(Path(a)) != content_id(Path(b))


def test_ids_of_large_tiffs_cover_the_whole_header(tmp_path):
    # > 6 MiB, so the file is sampled rather than hashed whole: a tag in a directory that
    # sits between the samples must still change the id.
    rng = np.random.default_rng(2)
    level0 = rng.integers(0, 255, (2048, 2048, 3), dtype=np.uint8)
    a = write_pyramid(tmp_path / "a.tiff", level0, levels=3)
    size = a.stat().st_size
    assert size > 8 << 20
    with tifffile.TiffFile(a) as tif:
        spot = next(p.tags["XResolution"].valueoffset for p in tif.pages[1:]
                    if not _sampled(p.tags["XResolution"].valueoffset, size))
    data = bytearray(a.read_bytes())
    data[spot + 3] ^= 1  # the page's resolution: a metadata change, same pixels
    b = tmp_path / "b.tiff"
    b.write_bytes(bytes(data))
    assert content_id(a) != content_id(b)
    # and tile content outside every sample but with a different compressed length:
    # the byte-count table differs, so does the id
    with tifffile.TiffFile(a) as tif:
        counts = tif.pages[0].tags["TileByteCounts"]
        bo = tif.byteorder
        fmt = {4: "I", 16: "Q"}[int(counts.dtype)]
    c = bytearray(a.read_bytes())
    first = struct.unpack_from(bo + fmt, c, counts.valueoffset)[0]
    struct.pack_into(bo + fmt, c, counts.valueoffset, first - 1)
    (tmp_path / "c.tiff").write_bytes(bytes(c))
    assert content_id(tmp_path / "c.tiff") != content_id(a)


def _sampled(offset: int, size: int, chunk: int = 1 << 20) -> bool:
    if offset < chunk or offset >= size - chunk:
        return True
    span = size - 2 * chunk - ID_SAMPLE_SIZE
    starts = [chunk + span * k // (ID_SAMPLES - 1) for k in range(ID_SAMPLES)]
    return any(s <= offset < s + ID_SAMPLE_SIZE for s in starts)


def test_id_is_the_same_through_every_source_kind(tmp_path):
    png = tmp_path / "one.png"
    Image.new("RGB", (40, 30), (10, 200, 30)).save(png)
    with open_source(png) as src:
        assert src.slide_id == content_id(png) and len(src.slide_id) == 20
    other = tmp_path / "two.png"
    Image.new("RGB", (40, 30), (10, 200, 31)).save(other)
    assert content_id(other) != content_id(png)
