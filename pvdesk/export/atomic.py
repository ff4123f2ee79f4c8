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
        try:
            yield Path(tmp)
        except OSError as exc:  # the writer's own failure (disk full, quota) names ``path``
            raise ExportError(f"{path}: cannot write ({exc.strerror or exc})") from exc
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


def make_folder(folder) -> Path:
    """``mkdir -p`` whose failure (a file in the way, no permission, disk full) is an
    ExportError naming the folder."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise ExportError(f"{folder}: exists and is not a folder") from None
    except OSError as exc:
        raise ExportError(f"{folder}: cannot create the folder ({exc.strerror or exc})"
                          ) from None
    return folder


def image_format(path) -> str:
    """The Pillow format an output image path names by its extension (ExportError when it
    names none Pillow writes)."""
    from PIL import Image

    path = Path(path)
    ext = path.suffix.lower()
    fmt = Image.registered_extensions().get(ext)
    if not ext or fmt is None or fmt not in Image.SAVE:
        raise ExportError(f"{path}: unknown image type {ext or '(no extension)'!r}; "
                          "use .png (or .jpg, .tif)")
    return fmt


def check_output_file(path) -> Path:
    """Refuse, before any work, an output file that could not be written: its folder is
    missing or not a folder, or the path is a folder or not a regular file."""
    import stat

    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise ExportError(f"{path}: the folder {folder} does not exist")
    try:
        st = path.stat()
    except FileNotFoundError:
        return path
    except OSError as exc:
        raise ExportError(f"{path}: cannot write ({exc.strerror or exc})") from None
    if stat.S_ISDIR(st.st_mode):
        raise ExportError(f"{path}: is a folder; give a file name")
    if not stat.S_ISREG(st.st_mode):
        raise ExportError(f"{path}: not a regular file (a pipe or device); give a file name")
    return path


def save_image(image, path, format: str | None = None) -> Path:
    """Save a Pillow image atomically (format from the extension unless given)."""
    fmt = format or image_format(path)
    if fmt == "JPEG" and image.mode not in ("RGB", "L"):
        image = image.convert("RGB")
    with atomic_path(path) as tmp:
        try:
            image.save(tmp, format=fmt)
        except (ValueError, KeyError) as exc:
            raise ExportError(f"{path}: cannot write this image as {fmt} ({exc})") from None
    return Path(path)


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
    except OSError:  # a filesystem that cannot sync a folder: the rename itself is done
        pass
    finally:
        os.close(dfd)
