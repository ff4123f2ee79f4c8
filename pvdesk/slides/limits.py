"""Checks made before a file reaches a decoder: what kind of file it is, and sizes it claims.

Native readers trust a file's header. OpenSlide allocates one tile buffer from a TIFF's
own TileWidth x TileLength (65536 x 65536 px is a 16 GiB request, and its allocator aborts
the process when that fails); opening a FIFO blocks until something writes to it; the
DICOM reader opens every file in the slide's folder. So, before any native open:

- ``regular_stat`` / ``open_regular``: the path must be a regular file (following
  symlinks); FIFOs, devices, sockets and folders are refused by name, and the open itself
  never blocks.
- ``check_slide_file``: walks a TIFF's image directories (classic and BigTIFF, both byte
  orders) and refuses tile sides over ``MAX_TILE_SIDE``, tags whose values would not fit
  in the file, and more than ``MAX_IFDS`` directories; scans a DICOM header for its frame
  size; checks that the companion files a format reads (an MRXS folder, the DICOM folder,
  the files a VMS names) are regular files.

Every refusal is a SlideError subclass whose message names the file and what is wrong.
A header this walk cannot follow (offsets past the end, as in NDPI files over 4 GiB) is
left to the reader: only sizes actually read are judged.
"""

from __future__ import annotations

import os
import stat
import struct
from pathlib import Path

from pvdesk.errors import CorruptSlideError, SlideError, UnsupportedFormatError

MAX_TILE_SIDE = 16384  # px; real slides use 240 to 2048, OpenSlide allocates side^2 * 4 bytes
MAX_IFDS = 4096  # image directories in one TIFF (a pyramid has a few dozen at most)
MAX_IFD_ENTRIES = 65536
MAX_COMPANIONS = 100_000  # files checked in a companion folder

TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")

_TILE_WIDTH, _TILE_LENGTH, _SUB_IFDS = 322, 323, 330
# TIFF field type -> bytes per value
_TYPE_SIZE = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8,
              13: 4, 16: 8, 17: 8, 18: 8}
_INT_FORMAT = {3: "H", 4: "I", 13: "I", 16: "Q", 18: "Q"}


def file_kind(mode: int) -> str:
    """Plain words for what a stat mode is."""
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISREG(mode):
        return "a regular file"
    return "not a regular file"


def regular_stat(path) -> os.stat_result:
    """``os.stat`` of a path that must be a regular file (symlinks followed), or SlideError."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        from pvdesk.errors import SlideNotFoundError

        raise SlideNotFoundError(path, "no such file or folder") from None
    except OSError as exc:
        raise SlideError(path, f"cannot be read ({exc.strerror or exc})") from None
    if not stat.S_ISREG(st.st_mode):
        raise UnsupportedFormatError(path, f"is {file_kind(st.st_mode)}, not a regular file")
    return st


def open_regular(path):
    """A binary file object for a regular file; never blocks on a FIFO or device.

    Opens without blocking, then checks the opened descriptor, so a path swapped for a
    FIFO between a check and the open is refused too.
    """
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except FileNotFoundError:
        from pvdesk.errors import SlideNotFoundError

        raise SlideNotFoundError(path, "no such file or folder") from None
    except OSError as exc:
        raise SlideError(path, f"cannot be read ({exc.strerror or exc})") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise UnsupportedFormatError(path, f"is {file_kind(mode)}, not a regular file")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


# -- TIFF -----------------------------------------------------------------------------------

class _TiffWalker:
    """Reads only what it needs from a TIFF: directory entries and a few tag values."""

    def __init__(self, path: Path, fh, size: int):
        self.path, self.fh, self.size = path, fh, size
        head = self._read(0, 16)
        self.bo = "<" if head[:2] == b"II" else ">"
        self.big = struct.unpack(self.bo + "H", head[2:4])[0] == 43
        if self.big:
            self.first = struct.unpack(self.bo + "Q", head[8:16])[0]
        else:
            self.first = struct.unpack(self.bo + "I", head[4:8])[0]
        self.seen: set[int] = set()

    def _read(self, offset: int, n: int) -> bytes:
        self.fh.seek(offset)
        return self.fh.read(n)

    def entries(self, offset: int):
        """(tag, type, count, value field bytes) of one IFD, and the next IFD's offset."""
        cfmt, csize, esize, nfmt = ("Q", 8, 20, "Q") if self.big else ("H", 2, 12, "I")
        raw = self._read(offset, csize)
        if len(raw) < csize:
            return [], 0
        n = struct.unpack(self.bo + cfmt, raw)[0]
        if n > MAX_IFD_ENTRIES:
            raise CorruptSlideError(self.path, f"a TIFF directory claims {n} entries "
                                               f"(at most {MAX_IFD_ENTRIES} are plausible)")
        body = self._read(offset + csize, n * esize + (8 if self.big else 4))
        out = []
        for k in range(min(n, len(body) // esize)):
            e = body[k * esize:(k + 1) * esize]
            if self.big:
                tag, typ, count = struct.unpack(self.bo + "HHQ", e[:12])
                field = e[12:20]
            else:
                tag, typ, count = struct.unpack(self.bo + "HHI", e[:8])
                field = e[8:12]
            out.append((tag, typ, count, field))
        tail = body[n * esize:]
        nxt = struct.unpack(self.bo + nfmt, tail)[0] if len(tail) == (8 if self.big else 4) else 0
        return out, nxt

    def values(self, typ: int, count: int, field: bytes, limit: int = 4096) -> list[int]:
        """Integer values of an entry (at most ``limit``), inline or at their offset."""
        fmt = _INT_FORMAT.get(typ)
        if fmt is None or count == 0:
            return []
        count = min(count, limit)
        nbytes = count * _TYPE_SIZE[typ]
        if nbytes <= len(field):
            data = field[:nbytes]
        else:
            offset = struct.unpack(self.bo + ("Q" if self.big else "I"), field)[0]
            data = self._read(offset, nbytes)
            if len(data) < nbytes:
                return []
        return list(struct.unpack(f"{self.bo}{count}{fmt}", data))

    def check(self) -> None:
        queue = [self.first]
        sub_ifds: list[int] = []
        while queue or sub_ifds:
            offset = queue.pop() if queue else sub_ifds.pop()
            while offset and offset not in self.seen and offset < self.size:
                self.seen.add(offset)
                if len(self.seen) > MAX_IFDS:
                    raise CorruptSlideError(self.path, f"the TIFF holds more than {MAX_IFDS} "
                                                       "images (directories)")
                entries, nxt = self.entries(offset)
                self._check_entries(entries, len(self.seen) - 1, sub_ifds)
                offset = nxt

    def _check_entries(self, entries, index: int, sub_ifds: list[int]) -> None:
        tile = {}
        for tag, typ, count, field in entries:
            nbytes = count * _TYPE_SIZE.get(typ, 1)
            if nbytes > self.size:
                raise CorruptSlideError(
                    self.path, f"TIFF tag {tag} of image {index} claims {count} values "
                               f"({nbytes} bytes) in a file of {self.size} bytes")
            if tag in (_TILE_WIDTH, _TILE_LENGTH):
                vals = self.values(typ, count, field, limit=1)
                if vals:
                    tile[tag] = vals[0]
            elif tag == _SUB_IFDS:
                sub_ifds.extend(v for v in self.values(typ, count, field, limit=256) if v)
        w, h = tile.get(_TILE_WIDTH), tile.get(_TILE_LENGTH)
        for name, v in (("width", w), ("height", h)):
            if v is not None and not 0 < v <= MAX_TILE_SIDE:
                raise CorruptSlideError(
                    self.path, f"tile {name} of {v} px in TIFF image {index} is not plausible "
                               f"(at most {MAX_TILE_SIDE} px; refused before decoding, as "
                               f"one {w} x {h} px tile would need "
                               f"{_gib((w or 1) * (h or 1) * 4)} of memory)")


def tiff_header_chunks(path: Path, fh, size: int, cap: int):
    """The bytes of a TIFF's header, for hashing: each directory's entries and the values
    they point to (tile offset and byte-count tables included), at most ``cap`` bytes.

    Walks the directory chain and SubIFDs in file order of discovery; stops quietly where
    the header cannot be followed (the walk is for identity, not for checking).
    """
    try:
        walker = _TiffWalker(path, fh, size)
        yield walker._read(0, 16)
        queue, budget = [walker.first], cap
        while queue and budget > 0:
            offset = queue.pop(0)
            while offset and offset not in walker.seen and offset < size and budget > 0:
                walker.seen.add(offset)
                if len(walker.seen) > MAX_IFDS:
                    return
                entries, nxt = walker.entries(offset)
                yield struct.pack("<QQ", offset, len(entries))
                for tag, typ, count, field in entries:
                    yield struct.pack("<HHQ", tag, typ, count) + field
                    nbytes = count * _TYPE_SIZE.get(typ, 1)
                    if nbytes > len(field) and budget > 0:
                        at = struct.unpack(walker.bo + ("Q" if walker.big else "I"), field)[0]
                        data = walker._read(at, min(nbytes, budget))
                        budget -= len(data)
                        yield data
                    if tag == _SUB_IFDS:
                        queue.extend(v for v in walker.values(typ, count, field, 256) if v)
                offset = nxt
    except (struct.error, OverflowError, ValueError, OSError):
        return


def _gib(nbytes: int) -> str:
    return f"{nbytes / 2**30:.1f} GiB" if nbytes >= 2**30 else f"{nbytes / 2**20:.0f} MiB"


def check_tiff(path: Path, fh, size: int) -> None:
    try:
        _TiffWalker(path, fh, size).check()
    except (struct.error, OverflowError, ValueError):
        return  # a header this walk cannot follow: left to the reader


# -- DICOM ----------------------------------------------------------------------------------

_DICOM_HEADER_SCAN = 4 << 20
# (0028,0010) Rows and (0028,0011) Columns: explicit VR "US" then a 2-byte length of 2, or
# implicit VR with a 4-byte length of 2; little endian either way.
_DICOM_PATTERNS = {
    "height": (b"\x28\x00\x10\x00US\x02\x00", b"\x28\x00\x10\x00\x02\x00\x00\x00"),
    "width": (b"\x28\x00\x11\x00US\x02\x00", b"\x28\x00\x11\x00\x02\x00\x00\x00"),
}


def is_dicom(head: bytes) -> bool:
    return len(head) >= 132 and head[128:132] == b"DICM"


def check_dicom(path: Path, fh) -> None:
    """Refuse a DICOM whose frames (tiles) are over MAX_TILE_SIDE per side."""
    fh.seek(0)
    header = fh.read(_DICOM_HEADER_SCAN)
    end = header.find(b"\xe0\x7f\x10\x00")  # (7FE0,0010) pixel data: the header ends there
    if end > 0:
        header = header[:end]
    for name, patterns in _DICOM_PATTERNS.items():
        for pat in patterns:
            start = 0
            while (at := header.find(pat, start)) >= 0:
                start = at + 1
                raw = header[at + len(pat):at + len(pat) + 2]
                if len(raw) == 2:
                    v = struct.unpack("<H", raw)[0]
                    if v > MAX_TILE_SIDE:
                        raise CorruptSlideError(
                            path, f"DICOM frame {name} of {v} px is not plausible "
                                  f"(at most {MAX_TILE_SIDE} px; refused before decoding)")


# -- companions -----------------------------------------------------------------------------

def check_folder_entries(path: Path, folder: Path, why: str) -> None:
    """Every entry of ``folder`` must be a regular file or a folder (it will be opened)."""
    try:
        with os.scandir(folder) as it:
            for k, entry in enumerate(it):
                if k >= MAX_COMPANIONS:
                    raise UnsupportedFormatError(
                        path, f"{folder} holds more than {MAX_COMPANIONS} files ({why})")
                try:
                    mode = os.stat(entry.path).st_mode
                except OSError:
                    continue  # a dangling link: the reader skips what it cannot open
                if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                    raise UnsupportedFormatError(
                        Path(entry.path), f"is {file_kind(mode)}, not a regular file ({why})")
    except OSError as exc:
        raise SlideError(folder, f"cannot be listed ({exc.strerror or exc})") from None


def check_companions(path: Path, head: bytes) -> None:
    suffix = path.suffix.lower()
    if suffix == ".mrxs":
        data = path.with_suffix("")
        if data.is_dir():
            check_folder_entries(path, data, "the MRXS slide reads the files of this folder")
    elif suffix in (".vms", ".vmu"):
        try:
            text = path.read_bytes()[:1 << 20].decode("latin-1")
        except OSError:
            return
        for line in text.splitlines():
            _, sep, value = line.partition("=")
            name = value.strip()
            if sep and name and "/" not in name and "\\" not in name:
                other = path.parent / name
                if os.path.lexists(other):
                    regular_stat(other)
    if is_dicom(head) or suffix == ".dcm":
        check_folder_entries(path, path.parent,
                             "OpenSlide opens every file in a DICOM slide's folder")


def check_slide_file(path: Path) -> bytes:
    """Run every pre-open check on a slide file; returns its first 256 bytes."""
    with open_regular(path) as fh:
        size = os.fstat(fh.fileno()).st_size
        head = fh.read(256)
        if head[:4] in TIFF_MAGIC:
            check_tiff(path, fh, size)
        elif is_dicom(head):
            check_dicom(path, fh)
    check_companions(path, head)
    return head
