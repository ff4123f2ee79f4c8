"""Atomic file writes: a reader sees the old file or the whole new one, never a half.

    with atomic_write(path, "w", newline="") as fh:
        fh.write(...)

writes a temporary file in the same folder, flushes and fsyncs it, then ``os.replace``s it
over ``path`` (and fsyncs the folder where the platform allows). If the block raises, the
temporary file is removed and ``path`` is left as it was. A file that cannot be created or
replaced (no such folder, no permission, disk full) raises ExportError naming ``path``.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from pvdesk.export import ExportError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path in ``path``'s folder for a writer that wants a file name
    (safetensors, PIL); on success it is fsynced, given normal permissions (not mkstemp's
    0600) and moved over ``path``; on failure it is removed and ``path`` is untouched."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
        os.close(fd)
    except OSError as exc:
        raise ExportError(f"{path}: cannot write ({exc.strerror or exc})") from exc
    try:
        yield Path(tmp)
        try:
            _fsync_file(tmp)
            os.chmod(tmp, 0o666 & ~_umask())
            os.replace(tmp, path)
        except OSError as exc:
            raise ExportError(f"{path}: cannot write ({exc.strerror or exc})") from exc
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(folder)


@contextlib.contextmanager
def atomic_write(path, mode: str = "w", encoding: str | None = "utf-8", newline: str | None = None):
    if mode not in ("w", "wb", "wt"):
        raise ValueError(f"atomic_write mode must be 'w' or 'wb', not {mode!r}")
    binary = "b" in mode
    with atomic_path(path) as tmp:
        try:
            fh = open(tmp, mode, encoding=None if binary else encoding,
                      newline=None if binary else newline)
        except OSError as exc:
            raise ExportError(f"{path}: cannot write ({exc.strerror or exc})") from exc
        with fh:
            yield fh


def _fsync_file(name) -> None:
    fd = os.open(name, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(folder: Path) -> None:
    if os.name != "posix":
        return
    try:
        dfd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dfd)
    except OSError:
        pass
    finally:
        os.close(dfd)
