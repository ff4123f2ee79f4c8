"""The review queue's rules: what a key does, the queue orders, what an action decides.

Pure functions over TileRecords, used by :class:`pvdesk.review.session.ReviewSession`.
"""

from __future__ import annotations

from pvdesk.review.blind_order import BLIND_ORDERS, blind_permutation
from pvdesk.review.types import CONFIRMED, CORRECTED, UNREVIEWED, TileRecord
from pvdesk.taxonomy import Taxonomy, label_for_key

NEXT, PREV, CONFIRM = "next", "prev", "confirm"
ORDERS = {  # the same orders as pvdesk.review.queue.ORDERS
    "entropy": lambda r: (-r.entropy, r.margin, r.tile_id),
    "margin": lambda r: (r.margin, -r.entropy, r.tile_id),
    "tile": lambda r: r.tile_id,
}


def key_command(token: str, taxonomy: Taxonomy | None = None
                ) -> tuple[str, str | None] | None:
    """What a review key does: ("correct", label), ("confirm", None), ("next"/"prev", None).

    ``token`` is the key's text ("1".."9" in ``taxonomy``'s class order (BreakHis by
    default), "0", "u") or a name: "enter", "space", "j", "k", "down", "right", "up", "left".
    None for other keys."""
    t = token.lower()
    if t in ("enter", "return", "space", " "):
        return CONFIRM, None
    if t in ("j", "down", "right"):
        return NEXT, None
    if t in ("k", "up", "left"):
        return PREV, None
    lookup = taxonomy.label_for_key if taxonomy is not None else label_for_key
    label = lookup(t) if len(t) == 1 else None
    return ("correct", label) if label else None


def status_matches(rec: TileRecord, status: str | None) -> bool:
    if status is None:
        return True
    if status == "reviewed":
        return rec.status in (CONFIRMED, CORRECTED)
    return rec.status == status


def decide(rec: TileRecord, action: str, label: str | None) -> tuple[str, str | None]:
    """The (status, label) an action gives a tile (the store applies the same rule)."""
    if action == "confirm":
        return CONFIRMED, rec.predicted
    return (CONFIRMED if label == rec.predicted else CORRECTED), label


def ordered_ids(order: str, recs: list[TileRecord], seed: int = 0, columns=None) -> list[int]:
    """The tile ids of ``recs`` in queue ``order`` (one of ORDERS, or a blinded order of
    BLIND_ORDERS with its ``seed``): one numpy sort, whatever the tile count. ``columns``:
    the records' (ids, entropy, margin) arrays when the caller keeps them
    (queue_state.OrderColumns), else they are read from the records."""
    import numpy as np

    n = len(recs)
    if columns is not None:
        ids, ent, mar = columns
    else:
        ids = np.fromiter((r.tile_id for r in recs), dtype=np.int64, count=n)
        ent = mar = None
    if order in BLIND_ORDERS:
        idx = blind_permutation(order, recs, ids, seed)
    elif order == "tile":
        idx = np.argsort(ids, kind="stable")
    else:
        if ent is None:
            ent = np.fromiter((r.entropy for r in recs), dtype=np.float64, count=n)
            mar = np.fromiter((r.margin for r in recs), dtype=np.float64, count=n)
        keys = (ids, mar, -ent) if order == "entropy" else (ids, -ent, mar)
        idx = np.lexsort(keys)  # the last key sorts first, as ORDERS says
    return ids[idx].tolist()


def next_after(entries: list[TileRecord], start: int, acted: set[int]) -> int | None:
    """Where the queue goes after an action: the first unreviewed tile from position
    ``start`` on that was not just acted on, else the first tile from there not acted on,
    else None."""
    fallback = None
    for e in entries[start:]:
        if e.tile_id in acted:
            continue
        if e.status == UNREVIEWED:
            return e.tile_id
        if fallback is None:
            fallback = e.tile_id
    return fallback
