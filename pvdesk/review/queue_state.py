"""The review queue's bookkeeping: what changed since a view last looked (:class:`Delta`)
and where each tile stands in the queue (:class:`Positions`)."""

from __future__ import annotations

from dataclasses import dataclass, field


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
