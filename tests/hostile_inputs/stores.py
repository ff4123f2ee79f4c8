"""Hostile review stores: empty, random, truncated, bit-flipped, not UTF-8, foreign or newer
SQLite, folders, FIFOs, /dev/zero."""

from __future__ import annotations

import os
import shutil
import sqlite3
from pathlib import Path

import numpy as np

from .common import HAS_FIFO, make_fifo


def good_store(path: Path, n_tiles: int = 12) -> Path:
    from pvdesk.review.sample import make_sample_store

    store, run, ids = make_sample_store(path, n_tiles=n_tiles)
    store.confirm(ids[0])
    store.close()
    return path


# Damage SQLite cannot see when it opens a store (a flipped bit inside a value, text that is
# not UTF-8 in a row no query reads): such a store may open, and then fails (one line) only
# when a damaged page is read. Without checksums a flipped value cannot be told from data.
MAY_OPEN = ("bitflip", "bad-utf8")


def store_inputs(root: Path) -> dict[str, Path]:
    """name -> a path given as a review store; none of them may be changed, and all but the
    MAY_OPEN ones are refused when opened."""
    root.mkdir(parents=True, exist_ok=True)
    out: dict[str, Path] = {}
    good = good_store(root / "_good.pvdb")
    data = good.read_bytes()

    def file(name: str, content: bytes) -> None:
        p = root / name
        p.write_bytes(content)
        out[name] = p

    file("empty.pvdb", b"")
    file("random.pvdb", np.random.default_rng(8).bytes(8192))
    file("text.pvdb", b"notes\n" * 200)
    file("header-only.pvdb", data[:100])
    file("truncated.pvdb", data[: len(data) // 3])
    magic = bytearray(data)
    magic[3] ^= 0xFF
    file("flipped-magic.pvdb", bytes(magic))
    rng = np.random.default_rng(9)
    for k in range(6):  # bit flips in the pages: the schema, the data, the indexes
        flipped = bytearray(data)
        for pos in rng.integers(100, len(data), 1 + k * 3):
            flipped[pos] ^= 1 << int(rng.integers(0, 8))
        file(f"bitflip{k}.pvdb", bytes(flipped))
    utf = bytearray(data)  # text cells that are not UTF-8 (the "Could not decode" case)
    i = utf.find(b"slide-1")
    if i > 0:
        utf[i:i + 7] = b"\xff\xfe\xfd\xfc\xfb\xfa\xf9"
    file("bad-utf8.pvdb", bytes(utf))
    foreign = root / "foreign.pvdb"
    con = sqlite3.connect(foreign)
    con.execute("CREATE TABLE t(x)")
    con.close()
    out["foreign.pvdb"] = foreign
    plain = root / "plain-sqlite.pvdb"
    con = sqlite3.connect(plain)
    con.execute("PRAGMA user_version=0")
    con.execute("VACUUM")
    con.close()
    out["plain-sqlite.pvdb"] = plain
    newer = root / "newer.pvdb"
    shutil.copy(good, newer)
    con = sqlite3.connect(newer)
    con.execute("PRAGMA user_version=99")
    con.execute("PRAGMA journal_mode=DELETE")
    con.close()
    out["newer.pvdb"] = newer
    folder = root / "folder.pvdb"
    folder.mkdir()
    out["folder.pvdb"] = folder
    if HAS_FIFO:
        out["fifo.pvdb"] = make_fifo(root / "fifo.pvdb")
    if os.path.exists("/dev/zero"):
        z = root / "devzero.pvdb"
        z.symlink_to("/dev/zero")
        out["devzero.pvdb"] = z
    return out
