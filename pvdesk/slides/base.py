"""The one interface over every kind of input: whole slides, single images, patch folders.

Coordinates are level-0 pixels everywhere. ``read_tile`` is what the tiling and
inference layers call; each source knows how to produce a tile image of its own kind.
Label and macro images (they can carry patient names) are reachable only through
``associated_image(name)``; they never appear in thumbnails, ``properties`` or exports.
"""

from __future__ import annotations

import hashlib
import os
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from pvdesk.errors import RegionReadError

WHITE = (255, 255, 255)


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

    @property
    def source_key(self) -> tuple:
        return (self.patch,) if self.patch else (self.x, self.y, self.w, self.h)


def content_id(path: Path, chunk: int = 1 << 20) -> str:
    """A stable id from a file's content (size, first and last MiB), not its path."""
    h = hashlib.sha256()
    size = path.stat().st_size
    h.update(str(size).encode())
    with open(path, "rb") as fh:
        h.update(fh.read(chunk))
        if size > 2 * chunk:
            fh.seek(size - chunk)
            h.update(fh.read(chunk))
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
        """Read from the pyramid (never the file's associated 'thumbnail'), in strips."""
        w0, h0 = self.dimensions
        ds = max(w0, h0) / max_size
        level = self.best_level_for_downsample(max(ds, 1.0))
        lw, lh = self.level_dimensions[level]
        lds = self.level_downsamples[level]
        out = Image.new("RGB", (lw, lh), WHITE)
        strip = max(1, min(lh, (1 << 24) // max(lw, 1)))  # ~16 Mpx per read
        for y in range(0, lh, strip):
            hh = min(strip, lh - y)
            try:
                out.paste(self.read_region((0, int(round(y * lds))), level, (lw, hh)), (0, y))
            except RegionReadError:
                self._paste_blocks(out, level, y, hh)  # keep what can be read, white elsewhere
            if progress:
                progress(min(y + hh, lh), lh)
        scale = max_size / max(lw, lh)
        if scale < 1:
            out = out.resize((max(1, round(lw * scale)), max(1, round(lh * scale))),
                             Image.Resampling.BOX)
        return out

    def _paste_blocks(self, out: Image.Image, level: int, y: int, height: int,
                      block: int = 256) -> None:
        lds = self.level_downsamples[level]
        for by in range(y, y + height, block):
            for bx in range(0, out.width, block):
                size = (min(block, out.width - bx), min(block, y + height - by))
                try:
                    region = self.read_region((round(bx * lds), round(by * lds)), level, size)
                except RegionReadError:
                    continue
                out.paste(region, (bx, by))

    def read_tile(self, tile: Tile, grid) -> Image.Image:
        lds = self.level_downsamples[grid.level]
        size = (max(1, round(tile.w / lds)), max(1, round(tile.h / lds)))
        img = self.read_region((tile.x, tile.y), grid.level, size)
        if img.size != (grid.out_size, grid.out_size):
            img = img.resize((grid.out_size, grid.out_size), Image.Resampling.BILINEAR)
        return img
