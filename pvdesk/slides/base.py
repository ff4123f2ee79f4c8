"""The one interface over every kind of input: whole slides, single images, patch folders.

Coordinates are level-0 pixels everywhere. ``read_tile`` is what the tiling and
inference layers call; each source knows how to produce a tile image of its own kind.
Label and macro images (they can carry patient names) are reachable only through
``associated_image(name)``; they never appear in thumbnails, ``properties`` or exports.
"""

from __future__ import annotations

import hashlib
import math
import os
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from pvdesk.errors import RegionReadError, SlideError

WHITE = (255, 255, 255)

# Thumbnails are built from reads of at most READ_BLOCK_PX level pixels, each box-filtered
# into its part of the output at once: memory is the output plus one block, whatever the
# level's size. A level up to FULL_READ_PX pixels is read whole (an exact box filter); a
# larger one (a big image without a usable pyramid) is sampled: a band of rows at the
# middle of each output row, averaged along the row. Past MAX_READ_PX (even one level
# row per output row) the thumbnail is refused: the file needs a pyramid.
READ_BLOCK_PX = 1 << 23  # 8 Mpx: 32 MiB as RGBA
FULL_READ_PX = 1 << 26  # 64 Mpx
MAX_READ_PX = 1 << 31
MAX_REGION_PX = 1 << 28  # one read_region call: 1 GiB as RGBA
# A block that cannot be read is retried in halves down to this many level px a side, so
# the unreadable area found is close to the damaged tiles' own.
MIN_FAILED_BLOCK = 64


@dataclass(frozen=True)
class Tile:
    """One tile: a level-0 square of a slide, or one image of a patch folder."""

    index: int
    x: int | None = None
    y: int | None = None
    w: int | None = None
    h: int | None = None
    tissue: float = 1.0
    patch: str | None = None  # path of the patch image (patch folders only)
    folder_class: str | None = None  # class given by the folder or file name, if any
    unknown: float = 0.0  # share of the tile the overview could not read (damaged data)

    @property
    def source_key(self) -> tuple:
        return (self.patch,) if self.patch else (self.x, self.y, self.w, self.h)


ID_VERSION = b"pvdesk-content-id/2\0"
ID_SAMPLES = 64  # evenly spaced content samples in a file too large to hash whole
ID_SAMPLE_SIZE = 1 << 16
ID_HEADER_CAP = 1 << 28  # bytes of TIFF directories and tag values hashed at most


def content_id(path: Path, chunk: int = 1 << 20, samples: int = ID_SAMPLES,
               sample_size: int = ID_SAMPLE_SIZE) -> str:
    """A stable id from a file's content, not its path: 20 hex digits of a SHA-256.

    A file up to ``2 * chunk + samples * sample_size`` bytes (6 MiB by default) is hashed
    whole. A larger one contributes its size, its first and last ``chunk`` bytes and
    ``samples`` blocks of ``sample_size`` bytes spread evenly between them; a TIFF-based
    file (SVS, generic TIFF, SCN, BIF ...) also its whole header: every image directory and
    every tag value, the tile offset and byte-count tables included, so two slides differ
    as soon as one tag or the compressed length of one tile does. An MRXS slide adds its
    Slidedat.ini and Index.dat. Raises SlideError when the path is not a readable regular
    file.
    """
    from pvdesk.slides.limits import TIFF_MAGIC, open_regular, tiff_header_chunks

    path = Path(path)
    h = hashlib.sha256(ID_VERSION)
    with open_regular(path) as fh:
        size = os.fstat(fh.fileno()).st_size
        h.update(f"{size}:{chunk}:{samples}:{sample_size}\0".encode())
        if size <= 2 * chunk + samples * sample_size:
            while block := fh.read(1 << 20):
                h.update(block)
        else:
            head = fh.read(chunk)
            h.update(head)
            span = size - 2 * chunk - sample_size
            for k in range(samples):
                fh.seek(chunk + span * k // max(1, samples - 1))
                h.update(fh.read(sample_size))
            fh.seek(size - chunk)
            h.update(fh.read(chunk))
            if head[:4] in TIFF_MAGIC:
                h.update(b"\0tiff-header\0")
                for part in tiff_header_chunks(path, fh, size, ID_HEADER_CAP):
                    h.update(part)
    if path.suffix.lower() == ".mrxs":
        for name in ("Slidedat.ini", "Index.dat"):
            companion = path.with_suffix("") / name
            if companion.is_file():
                h.update(f"\0{name}\0".encode())
                h.update(content_id(companion, chunk, samples, sample_size).encode())
    return h.hexdigest()[:20]


class Source(ABC):
    """Anything pvdesk can tile and classify."""

    kind: str = "source"

    def __init__(self, path: str | os.PathLike, mpp: float | None = None):
        self.path = Path(path)
        self._mpp_override = mpp

    # identity and metadata -------------------------------------------------
    @property
    @abstractmethod
    def slide_id(self) -> str: ...

    @property
    def vendor(self) -> str:
        return self.kind

    @property
    def native_mpp(self) -> float | None:
        return None

    @property
    def mpp(self) -> float | None:
        """Microns per level-0 pixel: the user's statement wins over the file's."""
        return self._mpp_override if self._mpp_override else self.native_mpp

    def set_mpp(self, mpp: float | None) -> None:
        self._mpp_override = mpp

    @property
    def objective_power(self) -> float | None:
        return None

    def properties(self) -> dict:
        """Non-identifying facts only: safe to store, show and export."""
        return {
            "kind": self.kind,
            "vendor": self.vendor,
            "mpp": self.mpp,
            "mpp_source": "user" if self._mpp_override else ("file" if self.native_mpp else None),
            "objective_power": self.objective_power,
        }

    @abstractmethod
    def thumbnail(self, max_size: int = 1024, progress=None) -> Image.Image: ...

    @abstractmethod
    def read_tile(self, tile: Tile, grid) -> Image.Image:
        """The tile's image at the grid's output size (RGB). Raises RegionReadError."""

    @abstractmethod
    def clone(self) -> Source:
        """A new, independent handle on the same input (one per reader thread)."""

    def associated_image_names(self) -> list[str]:
        return []

    def associated_image(self, name: str) -> Image.Image:
        raise KeyError(f"{self.path}: no associated image {name!r}")

    def close(self) -> None:  # noqa: B027 - sources without a handle have nothing to close
        return None

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.path}>"


class PyramidSource(Source):
    """A source with levels of one continuous image (a slide or a single large image)."""

    @property
    @abstractmethod
    def level_dimensions(self) -> list[tuple[int, int]]: ...

    @property
    @abstractmethod
    def level_downsamples(self) -> list[float]: ...

    @abstractmethod
    def read_region(self, location: tuple[int, int], level: int,
                    size: tuple[int, int]) -> Image.Image:
        """RGB pixels; ``location`` in level-0 px, ``size`` in level px; outside is white."""

    @property
    def dimensions(self) -> tuple[int, int]:
        return self.level_dimensions[0]

    @property
    def level_count(self) -> int:
        return len(self.level_dimensions)

    def best_level_for_downsample(self, downsample: float) -> int:
        """The finest level not finer than needed: largest downsample <= requested."""
        best = 0
        for i, ds in enumerate(self.level_downsamples):
            if ds <= downsample * 1.0001:
                best = i
        return best

    def properties(self) -> dict:
        props = super().properties()
        props.update(
            width=self.dimensions[0],
            height=self.dimensions[1],
            levels=self.level_count,
            level_dimensions=[list(d) for d in self.level_dimensions],
            level_downsamples=[round(d, 4) for d in self.level_downsamples],
        )
        return props

    def thumbnail(self, max_size: int = 1024, progress=None) -> Image.Image:
        """The whole slide in at most ``max_size`` px, from the pyramid level nearest above.

        Never the file's associated 'thumbnail' image. Built block by block (see
        READ_BLOCK_PX), so memory stays about the output's size whatever the level's.
        Parts that cannot be read are white: :meth:`thumbnail_and_unknown` says where.
        """
        return self.thumbnail_and_unknown(max_size, progress)[0]

    def overview_level(self, max_size: int = 1024) -> int:
        """The pyramid level a ``max_size`` px overview is drawn from (the nearest above)."""
        w0, h0 = self.dimensions
        return self.best_level_for_downsample(max(max(w0, h0) / max_size, 1.0))

    def thumbnail_and_unknown(self, max_size: int = 1024,
                              progress=None) -> tuple[Image.Image, np.ndarray]:
        """:meth:`thumbnail` and a bool array of its shape (rows, columns), True where an
        output pixel draws on level pixels that could not be read (painted white): what is
        there is unknown, not background."""
        if max_size < 1:
            raise ValueError(f"thumbnail size must be at least 1 px, got {max_size}")
        level = self.overview_level(max_size)
        lw, lh = self.level_dimensions[level]
        scale = max_size / max(lw, lh)
        out = (lw, lh) if scale >= 1 else (max(1, round(lw * scale)), max(1, round(lh * scale)))
        try:
            unknown = np.zeros((out[1], out[0]), bool)
            img = self.read_level_resized(level, (0, 0, lw, lh), out, progress, unknown=unknown)
        except MemoryError:
            raise SlideError(self.path, f"not enough memory to build its {max_size} px "
                                        f"overview from a {lw} x {lh} px level") from None
        return img, unknown

    def read_level_resized(self, level: int, box: tuple[int, int, int, int],
                           out_size: tuple[int, int], progress=None,
                           unknown: np.ndarray | None = None) -> Image.Image:
        """Level pixels ``box`` = (x, y, w, h), in level px, box-filtered to ``out_size``.

        Reads blocks of at most READ_BLOCK_PX; samples rows when the box is larger than
        FULL_READ_PX (see the module constants). Unreadable blocks stay white; ``unknown``
        (a bool array of the output's shape, rows x columns) is set True on every output
        pixel that draws on one.
        """
        x, y, w, h = box
        tw, th = out_size
        fx, fy = w / tw, h / th
        out = Image.new("RGB", (tw, th), WHITE)
        if w * h <= FULL_READ_PX or fy <= 1:
            band, rows = fy, max(1, int(READ_BLOCK_PX // max(1.0, w * fy)))
        else:
            if w * th > MAX_READ_PX:
                raise SlideError(
                    self.path, f"has no pyramid level small enough to draw a {tw} x {th} px "
                               f"overview (the nearest is {w} x {h} px, and sampling it would "
                               f"mean reading {w * th / 1e9:.1f} Gpx); convert it to a "
                               "pyramidal TIFF")
            band, rows = max(1, min(int(fy), FULL_READ_PX // (w * th))), 1
        cols = tw if w * band * rows <= READ_BLOCK_PX else max(1, int(READ_BLOCK_PX // (fx * band)))
        for v0 in range(0, th, rows):
            v1 = min(th, v0 + rows)
            if band == fy:  # exact: the output rows' whole source band
                sy0, sy1 = v0 * fy, v1 * fy
                ry0, ry1 = math.floor(sy0), min(h, math.ceil(sy1))
            else:  # sampled: ``band`` level rows at the middle of output row v0
                ry0 = min(h - band, max(0, round((v0 + 0.5) * fy - band / 2)))
                ry1, sy0, sy1 = ry0 + band, ry0, ry0 + band
            for u0 in range(0, tw, cols):
                u1 = min(tw, u0 + cols)
                sx0, sx1 = u0 * fx, u1 * fx
                rx0, rx1 = math.floor(sx0), min(w, math.ceil(sx1))
                region, failed = self._read_level_block(level, x + rx0, y + ry0, rx1 - rx0,
                                                        ry1 - ry0)
                if unknown is not None:
                    for bx, by, bw, bh in failed:  # block px -> the output pixels they feed
                        c0 = max(u0, math.floor((rx0 + bx - sx0) / fx) + u0)
                        c1 = min(u1, math.ceil((rx0 + bx + bw - sx0) / fx) + u0)
                        if band == fy:
                            r0 = max(v0, math.floor((ry0 + by - sy0) / fy) + v0)
                            r1 = min(v1, math.ceil((ry0 + by + bh - sy0) / fy) + v0)
                        else:
                            r0, r1 = v0, v1
                        unknown[r0:r1, c0:c1] = True
                part = region.resize((u1 - u0, v1 - v0), Image.Resampling.BOX,
                                     box=(sx0 - rx0, sy0 - ry0, sx1 - rx0, sy1 - ry0))
                out.paste(part, (u0, v0))
            if progress:
                progress(v1, th)
        return out

    def _read_level_block(self, level: int, x: int, y: int, w: int, h: int, block: int = 256,
                          smallest: int = MIN_FAILED_BLOCK) -> tuple[Image.Image, list]:
        """Level pixels (x, y, w, h), and the rectangles (bx, by, bw, bh; block px) that
        could not be read. A failed read is retried in ``block`` px squares, and a failed
        square in halves down to ``smallest`` px, so one damaged tile of the file costs
        about its own area, not the block's."""
        lds = self.level_downsamples[level]

        def read(bx, by, bw, bh):
            try:
                return self.read_region((round((x + bx) * lds), round((y + by) * lds)),
                                        level, (bw, bh))
            except RegionReadError:
                return None

        whole = read(0, 0, w, h)
        if whole is not None:
            return whole, []
        out = Image.new("RGB", (w, h), WHITE)
        failed: list[tuple[int, int, int, int]] = []

        def fill(bx, by, bw, bh, step):
            for sy in range(by, by + bh, step):
                for sx in range(bx, bx + bw, step):
                    sw, sh = min(step, bx + bw - sx), min(step, by + bh - sy)
                    part = read(sx, sy, sw, sh)
                    if part is not None:
                        out.paste(part, (sx, sy))
                    elif step // 2 >= smallest and max(sw, sh) > smallest:
                        fill(sx, sy, sw, sh, step // 2)
                    else:
                        failed.append((sx, sy, sw, sh))

        fill(0, 0, w, h, block)
        return out, failed

    def read_tile(self, tile: Tile, grid) -> Image.Image:
        lds = self.level_downsamples[grid.level]
        size = (max(1, round(tile.w / lds)), max(1, round(tile.h / lds)))
        if size[0] * size[1] > READ_BLOCK_PX:  # a huge tile (no pyramid): read it in blocks
            x, y = round(tile.x / lds), round(tile.y / lds)
            unknown = np.zeros((grid.out_size, grid.out_size), bool)
            try:
                img = self.read_level_resized(grid.level, (x, y, *size),
                                              (grid.out_size, grid.out_size), unknown=unknown)
            except MemoryError:
                raise RegionReadError(self.path, f"not enough memory to read the tile at "
                                                 f"({tile.x}, {tile.y})") from None
            if unknown.any():  # a tile is classified whole or not at all
                raise RegionReadError(self.path, f"part of the tile at ({tile.x}, {tile.y}) "
                                                 "cannot be read")
            return img
        img = self.read_region((tile.x, tile.y), grid.level, size)
        if img.size != (grid.out_size, grid.out_size):
            img = img.resize((grid.out_size, grid.out_size), Image.Resampling.BILINEAR)
        return img
