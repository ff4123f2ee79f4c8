"""Float vectors as little-endian bytes in SQLite: probabilities as float64, embeddings as
float32 (or float16 for runs recorded with ``embedding_dtype: float16``, which needs numpy).
numpy is imported only when a caller hands numpy arrays in or asks for one back,
so opening a store (and `pvdesk review`) stays quick."""

from __future__ import annotations

import sys
from array import array

_NUMPY_DTYPES = {"d": "<f8", "f": "<f4", "e": "<f2"}


def to_blob(values, code: str) -> bytes | None:
    """``code`` is "d" (float64), "f" (float32) or "e" (float16)."""
    if values is None:
        return None
    if code == "e" or type(values).__module__.startswith("numpy"):
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
