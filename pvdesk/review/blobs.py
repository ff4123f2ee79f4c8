"""Float vectors as little-endian bytes in SQLite: probabilities as float64, embeddings as
float32. numpy is imported only when a caller hands numpy arrays in or asks for one back,
so opening a store (and `pvdesk review`) stays quick."""

from __future__ import annotations

import sys
from array import array

_NUMPY_DTYPES = {"d": "<f8", "f": "<f4"}


def to_blob(values, code: str) -> bytes | None:
    """``code`` is "d" (float64) or "f" (float32)."""
    if values is None:
        return None
    if type(values).__module__.startswith("numpy"):
        import numpy as np

        return np.asarray(values, dtype=_NUMPY_DTYPES[code]).ravel().tobytes()
    a = array(code, [float(v) for v in values])
    if sys.byteorder == "big":
        a.byteswap()
    return a.tobytes()


def from_blob(blob: bytes, code: str) -> list[float]:
    a = array(code)
    a.frombytes(blob)
    if sys.byteorder == "big":
        a.byteswap()
    return a.tolist()
