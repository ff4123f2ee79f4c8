"""A review session over one slide (or patch folder) and one model run: the queue, the
current tile, a multi-selection, and reviewer actions.

Every cost here is per action, not per tile of the slide: the queue is kept in memory and
updated in place, counts are kept as running totals, and spatial questions (the tile under
the cursor, tiles in a rubber band, reviewed tiles in view) go through a
:class:`~pvdesk.app.tile_index.TileIndex`. What changed since the last look is collected in
a :class:`Delta` (rows changed, rows appended, queue reset, outlines changed) for a view to
repaint only that.

Actions decide the new decision in memory (the rule the store applies: confirming keeps the
prediction; a correction to the predicted class is a confirmation) and hand the write to
:meth:`ReviewSession.persist`. Here it writes at once and reads the store's exact decision
back; :class:`pvdesk.app.review_service.ReviewService` writes on a writer thread instead.
After an action the session advances to the next unreviewed tile of the queue.
"""

from __future__ import annotations

import dataclasses

from pvdesk.app.tile_index import TileIndex
from pvdesk.review.blind_order import BLIND_ORDERS, blind_key
from pvdesk.review.queue_rules import (
    CONFIRM,
    NEXT,
    ORDERS,
    PREV,
    decide,
    key_command,
    next_after,
    ordered_ids,
    status_matches,
)
from pvdesk.review.queue_state import Delta, OrderColumns, Positions, Tally
from pvdesk.review.types import (
    UNREVIEWED,
    Counts,
    Decision,
    TileRecord,
    utc_now,
)
from pvdesk.taxonomy import Taxonomy


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
        self.order_seed = 0  # the blinded "random" order's seed (a project setting)
        self.only: set[int] | None = None  # e.g. the disputed tiles an adjudicator resolves
        self.blinded = False  # blinded reading: counts say nothing of the model (no "corrected")
        self.entries: list[TileRecord] = []
        self.index = -1  # position of ``current`` in entries, -1 when outside the queue
        self.current: TileRecord | None = None
        self.selection: set[int] = set()
        self.all: dict[int, TileRecord] = {}  # every tile of the run on this slide
        self.frozen = False  # a run is streaming in: new tiles join the end of the queue
        self._pos = Positions()  # tile id -> position in entries
        self._sorted: tuple | None = None  # ((order, tiles), tile ids in queue order)
        self._tiles = TileIndex()  # every tile with coordinates
        self._tally = Tally()  # reviewed / corrected totals, reviewed tiles (outlines)
        self._cols = OrderColumns()  # what the queue is sorted by, in the order of ``all``
        self._delta = Delta(reset=True)
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
        self.all = {}
        self._tiles, self._tally, self._cols = TileIndex(), Tally(), OrderColumns()
        for rec in tiles.values():
            self._admit(rec)
        self.selection &= set(self.all)
        self.refresh(self.current.tile_id if self.current else None)

    def _admit(self, rec: TileRecord) -> None:
        self.all[rec.tile_id] = rec
        self._cols.add(rec)
        if rec.tile_x is not None:
            self._tiles.add(rec.tile_id, rec.tile_x, rec.tile_y, rec.tile_w, rec.tile_h)
        self._tally.count(rec, +1)

    def add_records(self, records) -> int:
        """New tiles of the run (a run streaming in): they join ``all`` and, when the
        filters pass them, the queue. While ``frozen`` they are appended at the end, sorted
        among themselves, so rows never move under the reviewer; otherwise the queue is
        re-sorted (keeping the current tile). Returns the number of new tiles."""
        new = [r for r in records if r.tile_id not in self.all]
        for rec in new:
            self._admit(rec)
        if not new:
            return 0
        self._delta.counts = True
        if not self.frozen:
            self.refresh(self.current.tile_id if self.current else None)
            return len(new)
        shown = sorted((r for r in new if self._passes(r)), key=ORDERS.get(self.order)
                       or blind_key(self.order, self.order_seed))
        start = len(self.entries)
        self.entries.extend(shown)
        self._pos.extend([r.tile_id for r in shown], start)
        self._delta.appended += len(shown)
        return len(new)

    def settle(self) -> None:
        """The run ended: sort the tiles that streamed in into the queue (one reset)."""
        self.frozen = False
        self.refresh(self.current.tile_id if self.current else None)

    def reload(self) -> None:
        """Re-read the run's tiles (another run was chosen)."""
        self.apply(self.snapshot())

    @property
    def taxonomy(self) -> Taxonomy:
        """The run's taxonomy (its classes' names, keys and colours; BreakHis without a run)."""
        if self.run_id is None:
            return Taxonomy.breakhis()
        if getattr(self, "_taxonomy", (None,))[0] != self.run_id:  # cached per run
            self._taxonomy = (self.run_id, Taxonomy.of_run(self.store.run(self.run_id)))
        return self._taxonomy[1]

    def set_run(self, run_id: int | None) -> None:
        self.run_id = run_id
        self.current, self.index = None, -1
        self.selection.clear()
        self.reload()

    def set_filters(self, predicted=..., status=..., disagree=..., order=..., only=...,
                    seed=...) -> None:
        """``order``: one of ORDERS or the blinded BLIND_ORDERS (``seed`` for "random");
        ``only``: a set of tile ids the queue is limited to (None: every tile)."""
        if only is not ...:
            self.only = None if only is None else set(only)
        if seed is not ...:
            self.order_seed = int(seed)
        if predicted is not ...:
            self.predicted = predicted
        if status is not ...:
            self.status = status
        if disagree is not ...:
            self.disagree = bool(disagree)
        if order is not ...:
            if order not in ORDERS and order not in BLIND_ORDERS:
                raise ValueError(f"unknown queue order {order!r}; use one of {', '.join(ORDERS)}")
            self.order = order
        self.refresh(self.current.tile_id if self.current else None)

    def _passes(self, r: TileRecord) -> bool:
        return ((self.predicted is None or r.predicted == self.predicted)
                and status_matches(r, self.status)
                and (self.only is None or r.tile_id in self.only)
                and (not self.disagree or (r.folder_class is not None
                                           and r.folder_class != r.predicted)))

    def _ordered_ids(self) -> list[int]:
        """Every tile id in queue order (cached until tiles are added or the order changes;
        a run's probabilities never change, so neither does the order)."""
        key = (self.order, self.order_seed, len(self.all))
        if self._sorted is None or self._sorted[0] != key:
            self._sorted = (key, ordered_ids(self.order, list(self.all.values()),
                                             self.order_seed, self._cols.arrays()))
        return self._sorted[1]

    def refresh(self, keep: int | None = None) -> None:
        """Rebuild the queue from ``all`` with the filters (the order and filters of
        ``ReviewStore.queue``, computed here so filtering needs no store round trip);
        keep tile ``keep`` current."""
        all_ = self.all
        ids = self._ordered_ids()
        if (self.predicted is None and self.status is None and not self.disagree
                and self.only is None):
            self.entries = list(map(all_.__getitem__, ids))
            self._reindex(ids)
        else:
            self.entries = [r for r in (all_[t] for t in ids) if self._passes(r)]
            self._reindex()
        self.index = -1
        self._delta.reset = self._delta.current = self._delta.counts = True
        if keep is not None:
            self.goto_tile(keep)
        elif self.current is not None:
            self.current = self.all.get(self.current.tile_id)

    def take_delta(self) -> Delta:
        d, self._delta = self._delta, Delta()
        return d

    # -- navigation ----------------------------------------------------------------------
    def position(self, tile_id: int) -> int:
        return self._pos.get(tile_id)

    def _reindex(self, ids: list[int] | None = None) -> None:
        self._pos.rebuild(ids if ids is not None else [e.tile_id for e in self.entries])

    def goto(self, i: int) -> TileRecord | None:
        self._delta.current = True
        if not self.entries:
            self.index = -1
            return self.current
        self.index = max(0, min(len(self.entries) - 1, i))
        self.current = self.entries[self.index]
        return self.current

    def goto_tile(self, tile_id: int) -> TileRecord | None:
        """Make a tile current (also one the filters hide, e.g. clicked in the view)."""
        self._delta.current = True
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
        self._delta.current = True

    def tile_at(self, x: float, y: float) -> TileRecord | None:
        """The tile under a level-0 point (the one whose centre is nearest when tiles overlap)."""
        tid = self._tiles.at(x, y)
        return None if tid is None else self.all.get(tid)

    def tiles_in(self, x0: float, y0: float, x1: float, y1: float) -> list[int]:
        """Tiles whose centre lies in the level-0 rectangle (corners in any order)."""
        return self._tiles.centres_in(x0, y0, x1, y1)

    # -- actions --------------------------------------------------------------------------
    def command(self, token: str) -> str | None:
        """Apply a review key; returns what it did ("confirm", "correct", "next", "prev")."""
        cmd = key_command(token, self.taxonomy)
        if cmd is None:
            return None
        what, label = cmd
        if what == NEXT:
            self.next()
        elif what == PREV:
            self.prev()
        elif (self.confirm() if what == CONFIRM else self.correct(label)) is None:
            return None
        return what

    def confirm(self, tile_ids=None):
        return self._act("confirm", None, tile_ids)

    def correct(self, label: str, tile_ids=None):
        return self._act("correct", label, tile_ids)

    def _act(self, action: str, label: str | None, tile_ids):
        ids = list(dict.fromkeys(tile_ids if tile_ids is not None else self.targets()))
        ids = [t for t in ids if t in self.all]
        if not ids or self.run_id is None:
            return None
        now = utc_now()
        reviewer = getattr(self.store, "reviewer", None)
        for tid in ids:
            status, lab = decide(self.all[tid], action, label)
            self.set_decision(tid, Decision(status, lab, reviewer, now))
        result = self.persist(action, ids, label)
        self._after_action(ids)
        return result

    def persist(self, action: str, ids: list[int], label: str | None):
        """Write an action to the store (one transaction, one undo step). Here: at once,
        then the store's exact decisions are read back; returns the audit batch id."""
        if action == "confirm":
            batch = self.store.confirm_many(ids, self.run_id)
        else:
            batch = self.store.correct_many(ids, label, self.run_id)
        self._update(ids)
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
        self.after_replay(ids)
        return ids

    def after_replay(self, ids) -> None:
        """An undo or redo changed ``ids``: drop those the filter now hides, bring back
        those it shows again (a rebuild: rare, only under a status filter), go to the first."""
        if any(t in self.all and self.position(t) < 0 and self._passes(self.all[t]) for t in ids):
            self.refresh(ids[0])
            return
        self._drop_hidden(ids)
        if ids:
            self.goto_tile(ids[0])

    def _update(self, ids) -> None:
        """Re-read the decisions of ``ids`` from the store."""
        for tid in ids:
            if tid in self.all:
                self.set_decision(tid, self.store.decision(tid))

    def set_decision(self, tid: int, d: Decision) -> None:
        """A tile's decision changed: update ``all``, its queue row, counts and outlines."""
        rec = self.all.get(tid)
        if rec is None:
            return
        new = dataclasses.replace(rec, status=d.status, label=d.label, reviewer=d.reviewer,
                                  reviewed_at=d.reviewed_at)
        self._tally.count(rec, -1)
        self.all[tid] = new
        self._tally.count(new, +1)
        i = self.position(tid)
        if i >= 0:
            self.entries[i] = new
            self._delta.rows.add(i)
        if self.current is not None and self.current.tile_id == tid:
            self.current = new
        self._delta.outlines.add(tid)
        self._delta.counts = True

    def _drop_hidden(self, ids) -> None:
        gone = {t for t in ids if self.position(t) >= 0 and not self._passes(self.all[t])}
        if gone:
            self.entries = [e for e in self.entries if e.tile_id not in gone]
            self._reindex()
            if self.current is not None:
                self.index = self.position(self.current.tile_id)
            self._delta.reset = True

    def _after_action(self, ids) -> None:
        """Drop the acted-on tiles the status filter now hides and move to the next
        unreviewed tile after the current one (else the next one)."""
        acted = set(ids)
        self.selection.clear()
        target = next_after(self.entries, self.index + 1 if self.index >= 0 else 0, acted)
        self._drop_hidden(acted)
        if target is not None:
            self.goto_tile(target)
        else:
            self.goto_tile(self.current.tile_id) if self.current else self.goto(0)

    # -- reading ---------------------------------------------------------------------------
    def counts(self) -> Counts:
        """reviewed / total / corrected over the run's tiles on this slide (as loaded)."""
        return Counts(self._tally.n_reviewed, len(self.all), self._tally.n_corrected)

    def reviewed(self) -> list[TileRecord]:
        """Reviewed tiles with coordinates (the view outlines them in their label's colour)."""
        return [self.all[t] for t in self._tally.reviewed.rects]

    def reviewed_in(self, x0: float, y0: float, x1: float, y1: float,
                    limit: int | None = None) -> list[TileRecord]:
        """Reviewed tiles meeting a level-0 rectangle (the visible part of the view)."""
        return [self.all[t] for t in self._tally.reviewed.overlapping(x0, y0, x1, y1, limit)]

    @property
    def reviewed_count_with_coords(self) -> int:
        return len(self._tally.reviewed)

    def counts_text(self) -> str:
        """"12/52 reviewed · 3 corrected"."""
        c = self.counts()
        corrected = f" · {c.corrected} corrected" if c.corrected and not self.blinded else ""
        return f"{c.reviewed}/{c.total} reviewed{corrected}"
