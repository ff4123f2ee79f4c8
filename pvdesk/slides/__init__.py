"""Slide sources: ``open_source(path)`` returns the right Source for any input."""

from __future__ import annotations

import os
from pathlib import Path

from pvdesk.errors import CorruptSlideError, SlideError, SlideNotFoundError, UnsupportedFormatError
from pvdesk.slides.base import PyramidSource, Source, Tile
from pvdesk.slides.breakhis import BreakHisName, parse_breakhis_name
from pvdesk.slides.folder_source import Patch, PatchFolderSource, scan_patches
from pvdesk.slides.image_source import ImageSource
from pvdesk.slides.openslide_source import OpenSlideSource, detect_vendor

__all__ = [
    "BreakHisName", "ImageSource", "OpenSlideSource", "Patch", "PatchFolderSource",
    "PyramidSource", "Source", "Tile", "open_source", "parse_breakhis_name", "scan_patches",
]

# Suffixes that only whole-slide formats use: failing OpenSlide there means a damaged file.
SLIDE_SUFFIXES = {".svs", ".ndpi", ".mrxs", ".scn", ".vms", ".vmu", ".bif", ".svslide", ".dcm"}


def open_source(path: str | os.PathLike, mpp: float | None = None) -> Source:
    """Open a slide file, a single image or a folder of patch images.

    ``mpp`` states the microns per pixel when the file does not (or overrides it).
    Raises a SlideError subclass whose message names the file and the problem.
    """
    p = Path(path).expanduser()
    if mpp is not None and not (mpp > 0):
        raise SlideError(p, f"microns per pixel must be positive, got {mpp}")
    if not p.exists():
        raise SlideNotFoundError(p, "no such file or folder")
    if p.is_dir():
        dicom = sorted(p.glob("*.dcm"))
        if dicom and detect_vendor(dicom[0]):
            return OpenSlideSource(dicom[0], mpp)
        return PatchFolderSource(p, mpp)
    if not p.is_file():
        raise UnsupportedFormatError(p, "not a regular file or folder")
    try:
        size = p.stat().st_size
        with open(p, "rb") as fh:
            fh.read(1)
    except OSError as exc:
        raise SlideError(p, f"cannot be read ({exc.strerror or exc})") from None
    if size == 0:
        raise CorruptSlideError(p, "the file is empty (0 bytes)")
    vendor = detect_vendor(p)
    if vendor:
        return OpenSlideSource(p, mpp, vendor)
    if p.suffix.lower() in SLIDE_SUFFIXES:
        raise CorruptSlideError(p, f"OpenSlide does not recognise this {p.suffix} file as a slide "
                                   "(damaged, truncated or not really that format)")
    return ImageSource(p, mpp)
