"""JSON from files that may be hostile: bounded size, nesting and numbers.

``json.loads`` alone accepts ``NaN`` and ``Infinity``, turns ``1e999`` into infinity, spends
quadratic time on (and, past 4300 digits, refuses with a bare ValueError) huge integers, and
recurses once per nesting level. :func:`load_file` and :func:`loads` refuse all of that with
a :class:`JSONProblem` (a ValueError) whose message says what is wrong; callers turn it into
their own typed error naming the file.
"""

from __future__ import annotations

import json
import math
import os
import stat

MAX_DEPTH = 64
MAX_INT_DIGITS = 30
MAX_NUMBER_CHARS = 400


class JSONProblem(ValueError):
    """The text is not acceptable JSON (message: what is wrong, one line)."""


def _parse_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise JSONProblem(f"an integer with {len(text)} digits (at most {MAX_INT_DIGITS})")
    return int(text)


def _parse_float(text: str) -> float:
    if len(text) > MAX_NUMBER_CHARS:
        raise JSONProblem(f"a number written with {len(text)} characters")
    v = float(text)
    if not math.isfinite(v):
        raise JSONProblem(f"the number {text[:40]} is out of range")
    return v


def _parse_constant(name: str):
    raise JSONProblem(f"{name} is not a number JSON allows")


def _depth(obj, limit: int) -> None:
    stack = [(obj, 1)]
    while stack:
        node, d = stack.pop()
        if d > limit:
            raise JSONProblem(f"nested more than {limit} levels deep")
        if isinstance(node, dict):
            stack.extend((v, d + 1) for v in node.values())
        elif isinstance(node, list):
            stack.extend((v, d + 1) for v in node)


def loads(text: str, max_depth: int = MAX_DEPTH):
    """Parse ``text``; JSONProblem for invalid JSON, NaN/Infinity, numbers out of range or
    with too many digits, and nesting deeper than ``max_depth``."""
    try:
        obj = json.loads(text, parse_int=_parse_int, parse_float=_parse_float,
                         parse_constant=_parse_constant)
    except JSONProblem:
        raise
    except json.JSONDecodeError as exc:
        raise JSONProblem(f"not valid JSON (line {exc.lineno}: {exc.msg})") from None
    except RecursionError:
        raise JSONProblem(f"nested more than {max_depth} levels deep") from None
    except (ValueError, OverflowError, MemoryError) as exc:
        raise JSONProblem(f"not valid JSON ({str(exc)[:80]})") from None
    _depth(obj, max_depth)
    return obj


def read_text(path, max_bytes: int) -> str:
    """A regular file's UTF-8 text (BOM allowed), at most ``max_bytes``; OSError for what
    cannot be read, JSONProblem for a FIFO, device, socket, a file too large or not UTF-8."""
    st = os.stat(path)
    if stat.S_ISDIR(st.st_mode):
        raise JSONProblem("is a folder, not a file")
    if not stat.S_ISREG(st.st_mode):
        raise JSONProblem("not a regular file (a pipe, device or socket)")
    if st.st_size > max_bytes:
        raise JSONProblem(f"{st.st_size} bytes is more than the {max_bytes} allowed")
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    with open(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
            raise JSONProblem("not a regular file")
        data = fh.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise JSONProblem(f"more than the {max_bytes} bytes allowed")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise JSONProblem(f"not UTF-8 text (byte {exc.start})") from None


def load_file(path, max_bytes: int, max_depth: int = MAX_DEPTH):
    """:func:`read_text` then :func:`loads`."""
    return loads(read_text(path, max_bytes), max_depth)
