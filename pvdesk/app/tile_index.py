"""Spatial lookups over level-0 tile rectangles in time that does not grow with the slide.

Tiles are kept in square buckets (``bucket`` level-0 px a side, a few tile sides); a query
visits only the buckets its rectangle touches. Used for the tile under the cursor, a
rubber-band selection and the reviewed outlines inside the visible part of the view.
"""

from __future__ import annotations

from collections.abc import Iterable


class TileIndex:
    def __init__(self, bucket: int | None = None):
        self.bucket = int(bucket) if bucket else None  # chosen from the first tile if None
        self._cells: dict[tuple[int, int], set[int]] = {}
        self.rects: dict[int, tuple[int, int, int, int]] = {}

    def __len__(self) -> int:
        return len(self.rects)

    def __contains__(self, tile_id: int) -> bool:
        return tile_id in self.rects

    def _span(self, x0: float, y0: float, x1: float, y1: float):
        b = self.bucket
        for by in range(int(y0) // b, int(y1) // b + 1):
            for bx in range(int(x0) // b, int(x1) // b + 1):
                yield bx, by

    def add(self, tile_id: int, x: int, y: int, w: int, h: int) -> None:
        if tile_id in self.rects:
            self.remove(tile_id)
        if self.bucket is None:
            self.bucket = max(64, 4 * int(max(w, h)))
        self.rects[tile_id] = (int(x), int(y), int(w), int(h))
        for cell in self._span(x, y, x + max(w - 1, 0), y + max(h - 1, 0)):
            self._cells.setdefault(cell, set()).add(tile_id)

    def add_many(self, items: Iterable[tuple[int, int, int, int, int]]) -> None:
        for tid, x, y, w, h in items:
            self.add(tid, x, y, w, h)

    def remove(self, tile_id: int) -> None:
        r = self.rects.pop(tile_id, None)
        if r is None:
            return
        x, y, w, h = r
        for cell in self._span(x, y, x + max(w - 1, 0), y + max(h - 1, 0)):
            ids = self._cells.get(cell)
            if ids is not None:
                ids.discard(tile_id)
                if not ids:
                    del self._cells[cell]

    def overlapping(self, x0: float, y0: float, x1: float, y1: float,
                    limit: int | None = None) -> list[int]:
        """Tiles whose rectangle meets [x0, x1) x [y0, y1); at most ``limit`` (None: all).
        Visits only the buckets the rectangle touches, or every tile when that is fewer."""
        if self.bucket is None or not self.rects:
            return []
        x0, x1 = sorted((x0, x1))
        y0, y1 = sorted((y0, y1))
        n_cells = ((int(x1) // self.bucket - int(x0) // self.bucket + 1)
                   * (int(y1) // self.bucket - int(y0) // self.bucket + 1))
        if n_cells > len(self._cells):
            candidates: Iterable[int] = self.rects
        else:
            seen: set[int] = set()
            for cell in self._span(max(x0, 0), max(y0, 0), max(x1, 0), max(y1, 0)):
                ids = self._cells.get(cell)
                if ids:
                    seen.update(ids)
            candidates = seen
        out = []
        for tid in candidates:
            x, y, w, h = self.rects[tid]
            if x < x1 and x + w > x0 and y < y1 and y + h > y0:
                out.append(tid)
                if limit is not None and len(out) >= limit:
                    break
        return out

    def at(self, x: float, y: float) -> int | None:
        """The tile under a point (the one whose centre is nearest when tiles overlap)."""
        best, dist = None, None
        for tid in self.overlapping(x, y, x + 1e-6, y + 1e-6):
            tx, ty, w, h = self.rects[tid]
            if not (tx <= x < tx + w and ty <= y < ty + h):
                continue
            d = (x - tx - w / 2) ** 2 + (y - ty - h / 2) ** 2
            if dist is None or d < dist or (d == dist and tid < best):
                best, dist = tid, d
        return best

    def centres_in(self, x0: float, y0: float, x1: float, y1: float) -> list[int]:
        """Tiles whose centre lies in the rectangle (corners in any order, edges included)."""
        x0, x1 = sorted((x0, x1))
        y0, y1 = sorted((y0, y1))
        out = []
        for tid in self.overlapping(x0, y0, x1 + 1, y1 + 1):
            x, y, w, h = self.rects[tid]
            if x0 <= x + w / 2 <= x1 and y0 <= y + h / 2 <= y1:
                out.append(tid)
        return sorted(out)
