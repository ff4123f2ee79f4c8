"""The review queue's bookkeeping: what changed since a view last looked (:class:`Delta`),
where each tile stands in the queue (:class:`Positions`), the running totals of
reviewed tiles (:class:`Tally`) and the columns the queue is sorted by
(:class:`OrderColumns`)."""

from __future__ import annotations

from array import array
from dataclasses import dataclass, field

from pvdesk.app.tile_index import TileIndex
from pvdesk.review.types import CORRECTED, UNREVIEWED, TileRecord


@dataclass
class Delta:
    """What changed since the last :meth:`ReviewSession.take_delta`."""

    reset: bool = False  # the queue was rebuilt: redraw all rows
    rows: set[int] = field(default_factory=set)  # queue positions whose record changed
    appended: int = 0  # rows added at the end of the queue
    outlines: set[int] = field(default_factory=set)  # tile ids whose decision changed
    current: bool = False  # the current tile or the selection moved
    counts: bool = False

    def __bool__(self) -> bool:
        return bool(self.reset or self.rows or self.appended or self.outlines or self.current
                    or self.counts)


class Positions:
    """Tile id -> queue position, in a numpy array indexed by tile id (store row ids are
    small dense integers): rebuilt for 100k tiles in a few milliseconds, unlike a dict."""

    def __init__(self):
        import numpy as np

        self._np = np
        self._a = np.full(0, -1, dtype=np.int64)

    def _fit(self, top: int) -> None:
        if top >= len(self._a):
            grown = self._np.full(max(top + 1, 2 * len(self._a)), -1, dtype=self._np.int64)
            grown[:len(self._a)] = self._a
            self._a = grown

    def rebuild(self, ids: list[int]) -> None:
        np = self._np
        arr = np.asarray(ids, dtype=np.int64)
        self._a = np.full(int(arr.max()) + 1 if len(arr) else 0, -1, dtype=np.int64)
        self._a[arr] = np.arange(len(arr), dtype=np.int64)

    def extend(self, ids: list[int], start: int) -> None:
        if ids:
            arr = self._np.asarray(ids, dtype=self._np.int64)
            self._fit(int(arr.max()))
            self._a[arr] = self._np.arange(start, start + len(arr), dtype=self._np.int64)

    def get(self, tile_id: int) -> int:
        return int(self._a[tile_id]) if 0 <= tile_id < len(self._a) else -1


class Tally:
    """Reviewed and corrected counts as running totals, and the reviewed tiles with
    coordinates in a :class:`TileIndex` (the outlines a view draws)."""

    def __init__(self):
        self.reviewed = TileIndex()
        self.n_reviewed = self.n_corrected = 0

    def count(self, rec: TileRecord, sign: int) -> None:
        """Add (``sign`` +1) or take away (-1) a record's decision."""
        if rec.status == UNREVIEWED:
            return
        self.n_reviewed += sign
        self.n_corrected += sign * (rec.status == CORRECTED)
        if rec.tile_x is None:
            return
        if sign > 0:
            self.reviewed.add(rec.tile_id, rec.tile_x, rec.tile_y, rec.tile_w, rec.tile_h)
        else:
            self.reviewed.remove(rec.tile_id)


class OrderColumns:
    """Each admitted tile's id, entropy and margin, appended in admission order (the order
    of ``ReviewSession.all``: a changed decision replaces a record in place, and a run's
    probabilities never change), so sorting the queue when a run ends reads no record."""

    def __init__(self):
        self.ids, self.entropy, self.margin = array("q"), array("d"), array("d")

    def add(self, rec: TileRecord) -> None:
        self.ids.append(rec.tile_id)
        self.entropy.append(rec.entropy)
        self.margin.append(rec.margin)

    def arrays(self):
        """(ids int64, entropy float64, margin float64): numpy copies."""
        import numpy as np

        return np.array(self.ids), np.array(self.entropy), np.array(self.margin)
