"""Slide sources: ``open_source(path)`` returns the right Source for any input."""

from __future__ import annotations

import math
import os
import stat
from pathlib import Path

from pvdesk.errors import CorruptSlideError, SlideError, SlideNotFoundError, UnsupportedFormatError
from pvdesk.slides.base import PyramidSource, Source, Tile
from pvdesk.slides.breakhis import BreakHisName, parse_breakhis_name
from pvdesk.slides.folder_source import Patch, PatchFolderSource, scan_patches
from pvdesk.slides.image_source import ImageSource
from pvdesk.slides.limits import check_slide_file, file_kind
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
    Raises a SlideError subclass whose message names the file and the problem. Nothing is
    opened before it is known to be a regular file (or a folder), and no native reader sees
    a file before its header's sizes are checked (see ``pvdesk.slides.limits``).
    """
    p = Path(path).expanduser()
    if mpp is not None and not (0 < mpp < math.inf):
        raise SlideError(p, f"microns per pixel must be positive and finite, got {mpp}")
    try:
        st = os.stat(p)
    except FileNotFoundError:
        raise SlideNotFoundError(p, "no such file or folder") from None
    except OSError as exc:
        raise SlideError(p, f"cannot be read ({exc.strerror or exc})") from None
    if stat.S_ISDIR(st.st_mode):
        return _open_folder(p, mpp)
    if not stat.S_ISREG(st.st_mode):
        raise UnsupportedFormatError(p, f"is {file_kind(st.st_mode)}, not a regular file "
                                        "or folder")
    if st.st_size == 0:
        raise CorruptSlideError(p, "the file is empty (0 bytes)")
    check_slide_file(p)  # opens without blocking; refuses absurd sizes before any decoder
    vendor = detect_vendor(p)
    if vendor:
        return OpenSlideSource(p, mpp, vendor)
    if p.suffix.lower() in SLIDE_SUFFIXES:
        raise CorruptSlideError(p, f"OpenSlide does not recognise this {p.suffix} file as a slide "
                                   "(damaged, truncated or not really that format)")
    return ImageSource(p, mpp)


def _open_folder(p: Path, mpp: float | None) -> Source:
    """A folder of DICOM files is one slide; any other folder is a folder of patches."""
    dicom = []
    for candidate in sorted(p.glob("*.dcm")):
        try:
            mode = os.stat(candidate).st_mode
        except OSError:
            continue  # a dangling link
        if not stat.S_ISREG(mode):
            raise UnsupportedFormatError(candidate, f"is {file_kind(mode)}, not a regular file "
                                                    "(found while looking for a DICOM slide)")
        dicom.append(candidate)
    if dicom:
        check_slide_file(dicom[0])  # the whole folder's kinds, and the frame size
        if detect_vendor(dicom[0]):
            return OpenSlideSource(dicom[0], mpp)
    return PatchFolderSource(p, mpp)
