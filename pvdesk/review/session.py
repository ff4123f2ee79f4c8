"""A review session over one slide (or patch folder) and one model run: the queue, the
current tile, a multi-selection, and reviewer actions that go straight to the store.

The GUI is a thin layer over this: it maps keys to :func:`key_command` tokens, calls
:meth:`ReviewSession.command`, and redraws from ``entries``, ``current`` and ``selection``.
After an action the session advances to the next unreviewed tile of the queue.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from pvdesk.review.types import CONFIRMED, CORRECTED, UNREVIEWED, Counts, TileRecord
from pvdesk.taxonomy import label_for_key

NEXT, PREV, CONFIRM = "next", "prev", "confirm"
ORDERS = {  # the same orders as pvdesk.review.queue.ORDERS
    "entropy": lambda r: (-r.entropy, r.margin, r.tile_id),
    "margin": lambda r: (r.margin, -r.entropy, r.tile_id),
    "tile": lambda r: r.tile_id,
}


def key_command(token: str) -> tuple[str, str | None] | None:
    """What a review key does: ("correct", label), ("confirm", None), ("next"/"prev", None).

    ``token`` is the key's text ("1".."8", "0", "u") or a name: "enter", "space", "j", "k",
    "down", "right", "up", "left". None for other keys."""
    t = token.lower()
    if t in ("enter", "return", "space", " "):
        return CONFIRM, None
    if t in ("j", "down", "right"):
        return NEXT, None
    if t in ("k", "up", "left"):
        return PREV, None
    label = label_for_key(t) if len(t) == 1 else None
    return ("correct", label) if label else None


def _matches(rec: TileRecord, status: str | None) -> bool:
    if status is None:
        return True
    if status == "reviewed":
        return rec.status in (CONFIRMED, CORRECTED)
    return rec.status == status


class ReviewSession:
    """Queue and actions for ``slide_id`` in ``run_id`` (default: the slide's latest run)."""

    def __init__(self, store, slide_id: str, run_id: int | None = None, load: bool = True):
        self.store = store
        self.slide_id = slide_id
        self.run_id = run_id if run_id is not None else store.latest_run(slide_id)
        self.predicted: str | None = None
        self.status: str | None = None
        self.disagree = False
        self.order = "entropy"
        self.entries: list[TileRecord] = []
        self.index = -1  # position of ``current`` in entries, -1 when outside the queue
        self.current: TileRecord | None = None
        self.selection: set[int] = set()
        self.all: dict[int, TileRecord] = {}  # every tile of the run on this slide
        self._pos: dict[int, int] = {}  # tile id -> position in entries
        if load:
            self.reload()

    # -- loading -----------------------------------------------------------------------
    def snapshot(self) -> dict[int, TileRecord]:
        """Every tile of the run on this slide, read from the store. Only reads: a GUI calls
        it on a background thread and hands the result to :meth:`apply`."""
        if self.run_id is None:
            return {}
        return {r.tile_id: r for r in self.store.tiles(self.slide_id, self.run_id)}

    def apply(self, tiles: dict[int, TileRecord]) -> None:
        """Use a :meth:`snapshot` (keeps the current tile and the selection)."""
        self.all = tiles
        self.selection &= set(tiles)
        self.refresh(self.current.tile_id if self.current else None)

    def reload(self) -> None:
        """Re-read the run's tiles (a run grew, or another run was chosen)."""
        self.apply(self.snapshot())

    def set_run(self, run_id: int | None) -> None:
        self.run_id = run_id
        self.current, self.index = None, -1
        self.selection.clear()
        self.reload()

    def set_filters(self, predicted=..., status=..., disagree=..., order=...) -> None:
        if predicted is not ...:
            self.predicted = predicted
        if status is not ...:
            self.status = status
        if disagree is not ...:
            self.disagree = bool(disagree)
        if order is not ...:
            if order not in ORDERS:
                raise ValueError(f"unknown queue order {order!r}; use one of {', '.join(ORDERS)}")
            self.order = order
        self.refresh(self.current.tile_id if self.current else None)

    def refresh(self, keep: int | None = None) -> None:
        """Rebuild the queue from ``all`` with the filters (the order and filters of
        ``ReviewStore.queue``, computed here so filtering needs no store round trip);
        keep tile ``keep`` current."""
        recs = [r for r in self.all.values()
                if (self.predicted is None or r.predicted == self.predicted)
                and _matches(r, self.status)
                and (not self.disagree or (r.folder_class is not None
                                           and r.folder_class != r.predicted))]
        recs.sort(key=ORDERS[self.order])
        self.entries = recs
        self._reindex()
        self.index = -1
        if keep is not None:
            self.goto_tile(keep)
        elif self.current is not None:
            self.current = self.all.get(self.current.tile_id)

    # -- navigation ----------------------------------------------------------------------
    def position(self, tile_id: int) -> int:
        return self._pos.get(tile_id, -1)

    def _reindex(self) -> None:
        self._pos = {e.tile_id: i for i, e in enumerate(self.entries)}

    def goto(self, i: int) -> TileRecord | None:
        if not self.entries:
            self.index = -1
            return self.current
        self.index = max(0, min(len(self.entries) - 1, i))
        self.current = self.entries[self.index]
        return self.current

    def goto_tile(self, tile_id: int) -> TileRecord | None:
        """Make a tile current (also one the filters hide, e.g. clicked in the view)."""
        self.index = self.position(tile_id)
        self.current = self.entries[self.index] if self.index >= 0 else self.all.get(tile_id)
        return self.current

    def next(self) -> TileRecord | None:
        return self.goto(self.index + 1 if self.index >= 0 else 0)

    def prev(self) -> TileRecord | None:
        return self.goto(self.index - 1 if self.index >= 0 else 0)

    def first(self) -> TileRecord | None:
        """The first unreviewed entry (or the first entry)."""
        for i, e in enumerate(self.entries):
            if e.status == UNREVIEWED:
                return self.goto(i)
        return self.goto(0)

    # -- selection ---------------------------------------------------------------------------
    def targets(self) -> list[int]:
        """What an action applies to: the multi-selection, else the current tile."""
        if self.selection:
            return sorted(self.selection)
        return [self.current.tile_id] if self.current else []

    def toggle(self, tile_ids) -> None:
        for t in tile_ids:
            self.selection.symmetric_difference_update({t})

    def tile_at(self, x: float, y: float) -> TileRecord | None:
        """The tile under a level-0 point (the one whose centre is nearest when tiles overlap)."""
        best, dist = None, None
        for r in self.all.values():
            if r.tile_x is None or not (r.tile_x <= x < r.tile_x + r.tile_w
                                        and r.tile_y <= y < r.tile_y + r.tile_h):
                continue
            d = (x - r.tile_x - r.tile_w / 2) ** 2 + (y - r.tile_y - r.tile_h / 2) ** 2
            if dist is None or d < dist:
                best, dist = r, d
        return best

    def tiles_in(self, x0: float, y0: float, x1: float, y1: float) -> list[int]:
        """Tiles whose centre lies in the level-0 rectangle (corners in any order)."""
        x0, x1 = sorted((x0, x1))
        y0, y1 = sorted((y0, y1))
        return [r.tile_id for r in self.all.values() if r.tile_x is not None
                and x0 <= r.tile_x + r.tile_w / 2 <= x1 and y0 <= r.tile_y + r.tile_h / 2 <= y1]

    # -- actions --------------------------------------------------------------------------
    def command(self, token: str) -> str | None:
        """Apply a review key; returns what it did ("confirm", "correct", "next", "prev")."""
        cmd = key_command(token)
        if cmd is None:
            return None
        what, label = cmd
        if what == NEXT:
            self.next()
        elif what == PREV:
            self.prev()
        elif what == CONFIRM:
            if self.confirm() is None:
                return None
        elif self.correct(label) is None:
            return None
        return what

    def confirm(self, tile_ids=None) -> int | None:
        ids = list(tile_ids) if tile_ids is not None else self.targets()
        if not ids or self.run_id is None:
            return None
        batch = self.store.confirm_many(ids, self.run_id)
        self._after_action(ids)
        return batch

    def correct(self, label: str, tile_ids=None) -> int | None:
        ids = list(tile_ids) if tile_ids is not None else self.targets()
        if not ids or self.run_id is None:
            return None
        batch = self.store.correct_many(ids, label, self.run_id)
        self._after_action(ids)
        return batch

    def undo(self) -> list[int]:
        return self._replay(self.store.undo())

    def redo(self) -> list[int]:
        return self._replay(self.store.redo())

    def _replay(self, batch: int | None) -> list[int]:
        if batch is None:
            return []
        ids = self.store.batch_tiles(batch)
        self._update(ids)
        self.refresh(ids[0] if ids else None)
        return ids

    def _update(self, ids) -> None:
        """Re-read the decisions of ``ids`` into ``all``, ``entries`` and ``current``."""
        for tid in ids:
            rec = self.all.get(tid)
            if rec is None:
                continue
            d = self.store.decision(tid)
            new = dataclasses.replace(rec, status=d.status, label=d.label, reviewer=d.reviewer,
                                      reviewed_at=d.reviewed_at)
            self.all[tid] = new
            i = self._pos.get(tid)
            if i is not None:
                self.entries[i] = new
            if self.current is not None and self.current.tile_id == tid:
                self.current = new

    def _after_action(self, ids) -> None:
        """Update the acted-on tiles in place, drop those the status filter now hides, and
        move to the next unreviewed tile after the current one (else the next one)."""
        acted = set(ids)
        start = self.index + 1 if self.index >= 0 else 0
        self._update(ids)
        self.selection.clear()
        target = fallback = None
        for i in range(start, len(self.entries)):
            e = self.entries[i]
            if e.tile_id in acted:
                continue
            if fallback is None:
                fallback = e.tile_id
            if e.status == UNREVIEWED:
                target = e.tile_id
                break
        gone = {t for t in acted if t in self._pos and not _matches(self.all[t], self.status)}
        if gone:
            self.entries = [e for e in self.entries if e.tile_id not in gone]
            self._reindex()
        target = target if target is not None else fallback
        if target is not None:
            self.goto_tile(target)
        else:
            self.goto_tile(self.current.tile_id) if self.current else self.goto(0)

    # -- reading ---------------------------------------------------------------------------
    def counts(self) -> Counts:
        """reviewed / total / corrected over the run's tiles on this slide (as loaded)."""
        reviewed = corrected = 0
        for r in self.all.values():
            if r.status != UNREVIEWED:
                reviewed += 1
                corrected += r.status == CORRECTED
        return Counts(reviewed, len(self.all), corrected)

    def reviewed(self) -> list[TileRecord]:
        """Reviewed tiles with coordinates (the view outlines them in their label's colour)."""
        return [r for r in self.all.values() if r.status != UNREVIEWED and r.tile_x is not None]

    def counts_text(self) -> str:
        """"12/52 reviewed · 3 corrected"."""
        c = self.counts()
        corrected = f" · {c.corrected} corrected" if c.corrected else ""
        return f"{c.reviewed}/{c.total} reviewed{corrected}"

    def status_text(self) -> str:
        return f"{self.counts_text()} · stored in {Path(self.store.path).name}"
