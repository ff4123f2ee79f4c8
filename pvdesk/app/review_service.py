"""The review service: a ReviewSession whose writes happen on a writer thread.

A key press changes the session in memory at once (the queue row, counts, outlines,
the next tile) and queues the store write; the write is one transaction and one undo
step however many tiles it covers. When the writer finishes it puts an :class:`Ack` in
the service's inbox and fires ``ready`` (on the writer thread); the owner of the session
(the GUI thread, or a test) calls :meth:`ReviewService.poll` to take the acks in: a failed
write puts back the decisions the store really holds and reports the error, so the screen
never shows a decision that was not stored. ``pending`` counts writes not yet acknowledged.

Undo and redo ask the store what they changed, so they complete on ``poll`` too.
"""

from __future__ import annotations

import queue
from dataclasses import dataclass, field

from pvdesk.app.events import Event
from pvdesk.review.project import BackgroundWriter
from pvdesk.review.session import ReviewSession
from pvdesk.review.types import Decision


@dataclass
class Ack:
    kind: str  # "action", "undo" or "redo"
    ids: list[int]
    batch: int | None = None
    decisions: dict[int, Decision] = field(default_factory=dict)  # replays and failures
    error: str | None = None
    can_undo: bool = False
    can_redo: bool = False


class ReviewService(ReviewSession):
    def __init__(self, store, slide_id: str, run_id: int | None = None, load: bool = True,
                 writer: BackgroundWriter | None = None):
        self.writer = writer or BackgroundWriter("pvdesk-review-writer")
        self._own_writer = writer is None
        self._inbox: queue.SimpleQueue[Ack] = queue.SimpleQueue()
        self.ready = Event("review.ready")  # an ack is waiting: call poll() on your thread
        self.pending = 0
        self.acknowledged = 0
        self.last_error: str | None = None
        self.can_undo = self.can_redo = False
        super().__init__(store, slide_id, run_id, load=load)
        self._submit(lambda: Ack("state", []))  # learn can_undo / can_redo

    # -- writes ------------------------------------------------------------------------------
    def _submit(self, write, ids=()) -> None:
        store = self.store
        self.pending += 1

        def done(ack, error):
            if error is not None:
                ack = Ack("action", list(ids), error=f"{type(error).__name__}: {error}")
                try:
                    ack.decisions = {t: store.decision(t) for t in ids}
                except Exception as exc:  # the store is unreadable: say so with the first
                    ack.error += f" (and reading it back failed: {exc})"
            try:
                ack.can_undo, ack.can_redo = store.can_undo(), store.can_redo()
            except Exception as exc:
                ack.error = ack.error or f"{type(exc).__name__}: {exc}"
            self._inbox.put(ack)
            self.ready.emit()

        if not self.writer.submit(write, done=done):
            self.pending -= 1
            raise RuntimeError("the review writer is closed")

    def persist(self, action: str, ids: list[int], label: str | None):
        store, run_id = self.store, self.run_id

        def write():
            if action == "confirm":
                batch = store.confirm_many(ids, run_id)
            else:
                batch = store.correct_many(ids, label, run_id)
            return Ack("action", ids, batch)

        self._submit(write, ids)
        return self.pending

    def undo(self) -> list[int]:
        self._replay_async("undo")
        return []

    def redo(self) -> list[int]:
        self._replay_async("redo")
        return []

    def _replay_async(self, which: str) -> None:
        store = self.store

        def write():
            batch = store.undo() if which == "undo" else store.redo()
            ids = store.batch_tiles(batch) if batch is not None else []
            return Ack(which, ids, batch, {t: store.decision(t) for t in ids})

        self._submit(write)

    # -- acknowledgements --------------------------------------------------------------------
    def poll(self) -> list[Ack]:
        """Take in finished writes (call on the thread that owns the session)."""
        acks = []
        while True:
            try:
                ack = self._inbox.get_nowait()
            except queue.Empty:
                break
            acks.append(ack)
            self.pending -= 1
            self.can_undo, self.can_redo = ack.can_undo, ack.can_redo
            if ack.error is None:
                self.acknowledged += 1
            else:
                self.last_error = ack.error
            for tid, d in ack.decisions.items():
                self.set_decision(tid, d)
            if ack.kind in ("undo", "redo") and ack.ids:
                self.after_replay(ack.ids)
            self._delta.counts = True
        return acks

    def wait(self, timeout: float | None = None) -> list[Ack]:
        """Block until every queued write is acknowledged, then :meth:`poll`."""
        self.writer.flush()
        return self.poll()

    def close(self) -> None:
        """Finish the queued writes and stop the writer (when this service made it)."""
        if self._own_writer:
            self.writer.close()
        else:
            self.writer.flush()
        self.poll()
