"""Limits and value checks for reading CSV files that may be hostile or damaged.

A CSV given to pvdesk is read only when it is a regular file (never a FIFO, a device such
as /dev/zero, or a socket: opening those blocks or never ends), of a bounded size, in lines
of bounded length (a file without line breaks is not slurped whole), with a bounded number
of rows; every number is finite and in its column's range. Each error is an ExportError
naming the file and, where there is one, the line.
"""

from __future__ import annotations

import math
import os
import re
import stat

from pvdesk.export import ExportError

MAX_FILE_BYTES = 4 << 30  # 4 GiB
MAX_LINE_CHARS = 1 << 20  # one physical line (a row is ~1 KB)
MAX_ROWS = 5_000_000
COORD_LIMIT = 1 << 53  # |tile_x|, |tile_y|, tile_w, tile_h: whole pixels, exact in a float64


def open_text(path):
    """Open ``path`` for reading as UTF-8 text (BOM allowed) after checking it is a regular
    file of at most MAX_FILE_BYTES."""
    try:
        st = os.stat(path)
    except OSError as exc:
        raise ExportError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if stat.S_ISDIR(st.st_mode):
        raise ExportError(f"{path}: is a folder, not a CSV file")
    if not stat.S_ISREG(st.st_mode):
        raise ExportError(f"{path}: not a regular file (a pipe, device or socket); "
                          "give a CSV file")
    if st.st_size > MAX_FILE_BYTES:
        raise ExportError(f"{path}: {st.st_size / 2**30:.1f} GiB is more than the "
                          f"{MAX_FILE_BYTES >> 30} GiB a predictions CSV may have")
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        if not stat.S_ISREG(os.fstat(fd).st_mode):  # swapped since the check
            os.close(fd)
            raise ExportError(f"{path}: not a regular file; give a CSV file")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return open(fd, encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise ExportError(f"{path}: cannot read ({exc.strerror or exc})") from None


def bounded_lines(fh, path):
    """The file's lines, each at most MAX_LINE_CHARS long (ExportError naming the line
    otherwise), so a file without line breaks is never read into one string."""
    n = 0
    while True:
        line = fh.readline(MAX_LINE_CHARS + 1)
        if not line:
            return
        n += 1
        if len(line) > MAX_LINE_CHARS and not line.endswith(("\n", "\r")):
            raise ExportError(f"{path}: line {n}: longer than {MAX_LINE_CHARS} characters; "
                              "not a predictions CSV")
        yield line


def _at(path, line: int | None) -> str:
    return f"{path}: line {line}" if line is not None else str(path)


def check_int(path, line: int | None, col: str, value: int) -> int:
    """A coordinate (tile_x, tile_y) or size (tile_w, tile_h, > 0) within 2^53 pixels."""
    positive = col in ("tile_w", "tile_h")
    if positive and value <= 0:
        raise ExportError(f"{_at(path, line)}: {col} must be a positive number of pixels, "
                          f"got {value}")
    if abs(value) >= COORD_LIMIT:
        raise ExportError(f"{_at(path, line)}: {col} {str(value)[:30]} is out of range "
                          f"(at most 2^53 pixels)")
    return value


def check_float(path, line: int | None, col: str, value: float) -> float:
    """A finite number; a probability (confidence, p_*) in [0, 1]; an mpp in (0, 1e4]."""
    if not math.isfinite(value):
        raise ExportError(f"{_at(path, line)}: {col} must be a finite number, got {value}")
    if (col == "confidence" or col.startswith("p_")) and not 0.0 <= value <= 1.0:
        raise ExportError(f"{_at(path, line)}: {col} must be a probability in [0, 1], "
                          f"got {value:g}")
    if col == "mpp" and not 0.0 < value <= 1e4:
        raise ExportError(f"{_at(path, line)}: mpp must be a positive number of "
                          f"micrometres per pixel, got {value:g}")
    return value


SHA_CELL = re.compile(r"[0-9a-fA-F]{16}")


def check_sha(path, line: int | None, col: str, text: str) -> str:
    """A model_sha256 cell: empty (unknown) or 16 hex characters, returned lowercase."""
    if text == "":
        return ""
    if not SHA_CELL.fullmatch(text):
        raise ExportError(f"{_at(path, line)}: {col} must be 16 hex characters of a sha256 "
                          f"(or empty), got {text[:40]!r}")
    return text.lower()
