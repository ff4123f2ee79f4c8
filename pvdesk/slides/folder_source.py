"""A folder of patch images (recursive): every image is one tile.

A ``<class>/<image>`` tree gives each image its folder's class; BreakHis file names give
class, patient and magnification. The folder class wins when both are present.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from pvdesk.errors import EmptyFolderError
from pvdesk.slides.base import Source, Tile, content_id
from pvdesk.slides.breakhis import BreakHisName, parse_breakhis_name
from pvdesk.slides.image_source import load_rgb
from pvdesk.taxonomy import normalise_name

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp"}


@dataclass(frozen=True)
class Patch:
    path: Path
    folder_class: str | None = None
    breakhis: BreakHisName | None = field(default=None, compare=False)

    @property
    def label(self) -> str | None:
        return self.folder_class or (self.breakhis.subtype if self.breakhis else None)

    @property
    def patient(self) -> str | None:
        return self.breakhis.patient if self.breakhis else None


def _folder_class(root: Path, image: Path) -> str | None:
    for part in reversed(image.relative_to(root).parts[:-1]):
        try:
            return normalise_name(part)
        except KeyError:
            continue
    return None


def scan_patches(root: Path) -> list[Patch]:
    """Every image under ``root`` (sorted, hidden files skipped) with what its path tells."""
    patches = []
    for p in sorted(root.rglob("*")):
        if p.suffix.lower() not in IMAGE_SUFFIXES or not p.is_file():
            continue
        if any(part.startswith(".") for part in p.relative_to(root).parts):
            continue
        patches.append(Patch(p, _folder_class(root, p), parse_breakhis_name(p.stem)))
    return patches


class PatchFolderSource(Source):
    kind = "folder"

    def __init__(self, path, mpp: float | None = None, patches: list[Patch] | None = None):
        super().__init__(path, mpp)
        self.patches = patches if patches is not None else scan_patches(self.path)
        if not self.patches:
            raise EmptyFolderError(self.path, "the folder holds no images "
                                              f"({', '.join(sorted(IMAGE_SUFFIXES))})")
        self._id: str | None = None

    @property
    def slide_id(self) -> str:
        if self._id is None:
            # each image whole up to 64 KiB, else 64 KiB of it (first and last 16 KiB and
            # eight 4 KiB samples): a folder of thousands of patches stays quick to identify
            h = hashlib.sha256()
            for p in self.patches:
                h.update(p.path.relative_to(self.path).as_posix().encode())
                h.update(content_id(p.path, chunk=1 << 14, samples=8,
                                    sample_size=1 << 12).encode())
            self._id = h.hexdigest()[:20]
        return self._id

    @property
    def vendor(self) -> str:
        return "patch-folder"

    def properties(self) -> dict:
        props = super().properties()
        classes = sorted({p.label for p in self.patches if p.label})
        props.update(images=len(self.patches), classes=classes)
        return props

    def tiles(self) -> list[Tile]:
        return [Tile(index=i, patch=str(p.path), folder_class=p.label)
                for i, p in enumerate(self.patches)]

    def thumbnail(self, max_size: int = 1024, progress=None) -> Image.Image:
        """A contact sheet of the first images (up to 64)."""
        shown = self.patches[:64]
        cols = max(1, int(len(shown) ** 0.5 + 0.999))
        rows = (len(shown) + cols - 1) // cols
        cell = max(8, max_size // cols)
        sheet = Image.new("RGB", (cols * cell, rows * cell), (255, 255, 255))
        for i, p in enumerate(shown):
            try:
                im = load_rgb(p.path)
            except Exception:
                continue
            im.thumbnail((cell, cell))
            sheet.paste(im, ((i % cols) * cell, (i // cols) * cell))
            if progress:
                progress(i + 1, len(shown))
        return sheet

    def read_tile(self, tile: Tile, grid) -> Image.Image:
        img = load_rgb(tile.patch)
        return img.resize((grid.out_size, grid.out_size), Image.Resampling.BILINEAR)

    def clone(self) -> PatchFolderSource:
        return PatchFolderSource(self.path, self._mpp_override, self.patches)
