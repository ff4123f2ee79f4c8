"""The slides of a cohort: command-line paths, folders searched recursively, globs and list
files, expanded into one ordered, de-duplicated list of inputs.

    inputs = expand_inputs(["cohort/", "extra/*.svs"], list_file="more.txt")

- A file is one input (a slide or a single image).
- A folder whose tree holds patch images but no whole-slide file is one patch folder (as
  ``pvdesk predict FOLDER`` always took it; BreakHis trees included). A folder holding
  ``.dcm`` files is one DICOM slide.
- Any other folder is searched recursively: each whole-slide file in it is an input, each
  subfolder is taken by the same two rules. Hidden files and folders are skipped; patch
  images lying loose beside slides are skipped and counted in the notes.
- A path with ``*``, ``?`` or ``[`` that does not exist as written is a glob (``**``
  recursive); each match is taken as above.
- ``--list FILE``: one path per line (``#`` comments and blank lines skipped), relative to
  the list file's folder; a listed path that is missing becomes an input that fails (the
  cohort records it), a missing command-line path refuses the run.

Order: the arguments in the order given, each folder's and glob's inputs sorted; the same
input reached twice is kept once (first place). Qt-free, no slide is opened.
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass, field
from pathlib import Path

from pvdesk.errors import PvdeskError
from pvdesk.slides import SLIDE_SUFFIXES

PATCH_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp"}
TIFF_SUFFIXES = {".tif", ".tiff"}
WHOLE_SLIDE = (SLIDE_SUFFIXES - {".dcm"}) | TIFF_SUFFIXES
MAX_LIST_BYTES = 64 << 20
MAX_INPUTS = 1_000_000


@dataclass
class Inputs:
    paths: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _hidden(p: Path) -> bool:
    return p.name.startswith(".")


def _tree_kinds(folder: Path) -> tuple[bool, bool, bool]:
    """(holds whole-slide files, holds patch images, holds .dcm directly) for ``folder``."""
    slides = patches = False
    dicom = any(p.suffix.lower() == ".dcm" for p in folder.iterdir() if not _hidden(p))
    for _root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for f in files:
            if f.startswith("."):
                continue
            suffix = os.path.splitext(f)[1].lower()
            slides = slides or suffix in WHOLE_SLIDE or suffix == ".dcm"
            patches = patches or suffix in PATCH_SUFFIXES
        if slides:
            break
    return slides, patches, dicom


def _walk(folder: Path, out: Inputs, top: bool) -> None:
    slides, patches, dicom = _tree_kinds(folder)
    if dicom:
        out.paths.append(folder)
        return
    if not slides:
        if patches or top:  # an empty folder named on the command line fails as a source
            out.paths.append(folder)
        return
    loose = 0
    for p in sorted(folder.iterdir()):
        if _hidden(p):
            continue
        if p.is_dir():
            _walk(p, out, top=False)
        elif p.suffix.lower() in WHOLE_SLIDE:
            out.paths.append(p)
        elif p.suffix.lower() in PATCH_SUFFIXES:
            loose += 1
    if loose:
        out.notes.append(f"{folder}: {loose} image(s) beside slides skipped (name a folder "
                         "of patches, or the image itself, to run them)")


def _take(p: Path, out: Inputs) -> None:
    if p.is_dir():
        _walk(p, out, top=True)
    else:
        out.paths.append(p)


def _is_glob(arg: str) -> bool:
    return any(ch in arg for ch in "*?[")


def read_list(list_file: str | os.PathLike) -> list[Path]:
    """The paths a list file names (relative ones resolved against its folder)."""
    lf = Path(list_file).expanduser()
    try:
        if not lf.is_file():
            raise PvdeskError(f"{lf}: no such list file")
        if lf.stat().st_size > MAX_LIST_BYTES:
            raise PvdeskError(f"{lf}: larger than {MAX_LIST_BYTES >> 20} MiB; not a list of paths")
        text = lf.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise PvdeskError(f"{lf}: not UTF-8 text (one path per line expected)") from None
    except OSError as exc:
        raise PvdeskError(f"{lf}: cannot be read ({exc.strerror or exc})") from None
    paths = []
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if "\x00" in line:
            raise PvdeskError(f"{lf}: line {n}: a path cannot hold a NUL character")
        p = Path(line).expanduser()
        paths.append(p if p.is_absolute() else lf.parent / p)
    return paths


def expand_inputs(args: list[str], list_file: str | None = None) -> Inputs:
    """Every input of a cohort, in order (see the module docstring). PvdeskError when a
    command-line path is missing, a glob matches nothing or nothing is left at all."""
    out = Inputs()
    for arg in args:
        p = Path(arg).expanduser()
        if os.path.lexists(p):
            _take(p, out)
        elif _is_glob(arg):
            matches = sorted(glob.glob(os.path.expanduser(arg), recursive=True))
            if not matches:
                raise PvdeskError(f"{arg}: the pattern matches no file or folder")
            for m in matches:
                if not _hidden(Path(m)):
                    _take(Path(m), out)
        else:
            raise PvdeskError(f"{arg}: no such file or folder")
    if list_file is not None:
        for p in read_list(list_file):
            if p.is_dir():
                _walk(p, out, top=True)
            else:
                out.paths.append(p)  # a missing one fails as a slide of the cohort
    seen: set[str] = set()
    unique = []
    for p in out.paths:
        key = os.path.realpath(p)
        if key not in seen:
            seen.add(key)
            unique.append(p)
        if len(unique) > MAX_INPUTS:
            raise PvdeskError(f"more than {MAX_INPUTS} inputs; split the cohort")
    out.paths = unique
    if not unique:
        raise PvdeskError("no slide or patch folder found in "
                          + ", ".join([*args, *([list_file] if list_file else [])]))
    return out
