"""Queue orders that never look at the model: for blinded reading.

A blinded reader must not be led by the model, and ordering the queue by the model's
uncertainty is a way of showing its opinion. These orders use only where a tile is:

- ``random``: a shuffle fixed by the project's stored seed. Each tile's place comes from a
  hash of its position on the slide (its path for a patch image) and the seed, so the
  order does not depend on the store's row ids (every reader's copy of a project shuffles
  the same way) and a tile streaming in later lands where it always would.
- ``spatial``: reading order across the slide, row by row (top to bottom, left to right),
  patch images in their folder order.

Both are computed with numpy over the whole run at once, like the session's other orders.
"""

from __future__ import annotations

import zlib

BLIND_ORDERS = ("random", "spatial")
_MASK = (1 << 64) - 1


def _mix(v):
    """splitmix64's finaliser over a uint64 array (wrapping arithmetic)."""
    import numpy as np

    with np.errstate(over="ignore"):
        v = (v ^ (v >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        v = (v ^ (v >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return v ^ (v >> np.uint64(31))


def _position_keys(records):
    """A uint64 per record from where it is (x, y), or its source path for a patch."""
    import numpy as np

    out = np.empty(len(records), dtype=np.uint64)
    for i, r in enumerate(records):
        if r.tile_x is not None:
            out[i] = ((int(r.tile_x) & 0xFFFFFFFF) << 32) | (int(r.tile_y) & 0xFFFFFFFF)
        else:
            out[i] = zlib.crc32(str(r.source).encode("utf-8")) | (1 << 63)
    return out


def random_keys(records, seed: int):
    """The random order's sort key of each record (a uint64 array)."""
    import numpy as np

    salt = _mix(np.array([int(seed) & _MASK], dtype=np.uint64))[0]
    return _mix(_position_keys(records) ^ salt)


def blind_permutation(order: str, records, ids, seed: int):
    """Indices that put ``records`` (whose tile ids are the array ``ids``) in ``order``."""
    import numpy as np

    if order == "random":
        return np.lexsort((ids, random_keys(records, seed)))
    if order == "spatial":
        n = len(records)
        big = np.iinfo(np.int64).max  # patches (no position) after tiles, in id order
        ys = np.fromiter((big if r.tile_y is None else r.tile_y for r in records),
                         dtype=np.int64, count=n)
        xs = np.fromiter((big if r.tile_x is None else r.tile_x for r in records),
                         dtype=np.int64, count=n)
        return np.lexsort((ids, xs, ys))
    raise ValueError(f"unknown blinded queue order {order!r}; use one of "
                     f"{', '.join(BLIND_ORDERS)}")


def blind_key(order: str, seed: int):
    """A per-record sort key equal to :func:`blind_permutation`'s order (for the few tiles
    that stream in while a run is recorded)."""
    if order == "random":
        return lambda r: (int(random_keys([r], seed)[0]), r.tile_id)
    if order == "spatial":
        return lambda r: ((0, r.tile_y, r.tile_x, r.tile_id) if r.tile_x is not None
                          else (1, 0, 0, r.tile_id))
    raise ValueError(f"unknown blinded queue order {order!r}; use one of "
                     f"{', '.join(BLIND_ORDERS)}")
