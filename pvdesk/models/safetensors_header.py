"""Reading and checking a safetensors file's header without torch and without trusting it.

A safetensors file is an 8-byte little-endian header length, a JSON header naming every
tensor's dtype, shape and byte range, then the data. :func:`read_header` refuses, with a
one-line ModelError naming the file: a file that is not regular (FIFO, device), empty or
shorter than its header says; a header length beyond the file or over MAX_HEADER_BYTES (a
"huge header" would otherwise be allocated); a header that is not bounded JSON (safe_json);
unknown dtypes; shapes or byte ranges that do not agree with each other or with the file's
size. A pickle or any other file renamed to .safetensors fails one of these checks.
"""

from __future__ import annotations

import math
import os
import stat
import struct
from dataclasses import dataclass
from pathlib import Path

from pvdesk import safe_json
from pvdesk.errors import ModelError

MAX_HEADER_BYTES = 64 << 20  # 64 MiB (safetensors itself allows 100 MB); ViT-L/14 needs ~0.1
MAX_TENSORS = 100_000
DTYPE_BYTES = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "I16": 2, "U16": 2,
               "F16": 2, "BF16": 2, "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8,
               "F64": 8}


@dataclass(frozen=True)
class TensorInfo:
    """What the header says about one tensor (enough for shape checks without torch)."""

    dtype: str
    shape: tuple[int, ...]
    start: int
    end: int

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def numel(self) -> int:
        return math.prod(self.shape)


@dataclass(frozen=True)
class Header:
    tensors: dict[str, TensorInfo]
    metadata: dict[str, str]
    data_offset: int  # where the tensor data begins in the file
    size: int  # the file's size


def check_regular_file(path: Path, what: str = "weights file") -> os.stat_result:
    """The file's stat; ModelError when it is missing, a folder, or not a regular file."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise ModelError(f"{path}: {what} not found") from None
    except OSError as exc:
        raise ModelError(f"{path}: cannot read the {what} ({exc.strerror or exc})") from None
    if stat.S_ISDIR(st.st_mode):
        raise ModelError(f"{path}: is a folder, not a {what}")
    if not stat.S_ISREG(st.st_mode):
        raise ModelError(f"{path}: not a regular file (a pipe, device or socket); refused")
    if st.st_size == 0:
        raise ModelError(f"{path}: the {what} is empty")
    return st


def read_header(path) -> Header:
    path = Path(path)
    st = check_regular_file(path)
    size = st.st_size
    bad = f"{path}: not a safetensors file"
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with open(fd, "rb") as fh:
            head = fh.read(8)
            if len(head) < 8:
                raise ModelError(f"{bad} ({size} bytes, shorter than a header)")
            (n,) = struct.unpack("<Q", head)
            if n > MAX_HEADER_BYTES:
                raise ModelError(f"{bad} (its header claims {n} bytes; at most "
                                 f"{MAX_HEADER_BYTES >> 20} MiB)")
            if n < 2 or n > size - 8:
                raise ModelError(f"{bad} (its header claims {n} bytes in a file of {size})")
            raw = fh.read(n)
    except OSError as exc:
        raise ModelError(f"{path}: cannot read the weights file ({exc.strerror or exc})"
                         ) from None
    if len(raw) != n:
        raise ModelError(f"{bad} (the file is shorter than its header)")
    try:
        doc = safe_json.loads(raw.decode("utf-8"), max_depth=8)
    except (UnicodeDecodeError, safe_json.JSONProblem) as exc:
        raise ModelError(f"{bad} (header: {exc})") from None
    if not isinstance(doc, dict):
        raise ModelError(f"{bad} (the header is not a JSON object)")
    meta = doc.pop("__metadata__", None) or {}
    if not isinstance(meta, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                             for k, v in meta.items()):
        raise ModelError(f"{bad} (__metadata__ must map strings to strings)")
    if len(doc) > MAX_TENSORS:
        raise ModelError(f"{bad} ({len(doc)} tensors; at most {MAX_TENSORS})")
    data = size - 8 - n
    tensors: dict[str, TensorInfo] = {}
    for name, entry in doc.items():
        tensors[name] = _entry(path, name, entry, data)
    return Header(tensors, meta, 8 + n, size)


def _entry(path: Path, name: str, entry, data: int) -> TensorInfo:
    where = f"{path}: tensor {name[:80]!r}"
    if not isinstance(entry, dict):
        raise ModelError(f"{where}: not a tensor entry")
    dtype, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
    if dtype not in DTYPE_BYTES:
        raise ModelError(f"{where}: unknown dtype {str(dtype)[:20]!r}")
    if (not isinstance(shape, list) or len(shape) > 8 or not all(
            isinstance(d, int) and not isinstance(d, bool) and 0 <= d < 1 << 40 for d in shape)):
        raise ModelError(f"{where}: the shape must be a list of at most 8 sizes")
    if (not isinstance(offsets, list) or len(offsets) != 2 or not all(
            isinstance(o, int) and not isinstance(o, bool) for o in offsets)):
        raise ModelError(f"{where}: data_offsets must be [begin, end]")
    start, end = offsets
    if not 0 <= start <= end <= data:
        raise ModelError(f"{where}: bytes {start}-{end} lie outside the file's {data} bytes "
                         "of data (truncated or not a safetensors file)")
    if end - start != math.prod(shape) * DTYPE_BYTES[dtype]:
        raise ModelError(f"{where}: {end - start} bytes for shape {tuple(shape)} of {dtype}")
    return TensorInfo(dtype, tuple(shape), start, end)
