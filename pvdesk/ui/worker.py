"""The window's side of a model run: a :class:`pvdesk.app.run_session.RunSession` whose
events arrive on the GUI thread as Qt signals.

``RunController.start(request, source, target)`` starts the session (loading, tissue,
engine, store and heatmap all happen off the GUI thread). ``cancel()`` stops it (what it
finished stays); ``discard()`` also drops what it still sends; ``shutdown()`` cancels and
waits (with a timeout) when the window closes.
"""

from __future__ import annotations

import gc
import sys

from PySide6.QtCore import SIGNAL, QObject, Signal

from pvdesk.app.run_session import RunInfo, RunRequest, RunSession, describe_failure
from pvdesk.ui.background import Relay

__all__ = ["RunController", "RunInfo", "RunRequest", "describe_failure"]

SHUTDOWN_TIMEOUT_S = 30.0


class RunController(QObject):
    """Owns at most one running session."""

    status = Signal(str)
    started = Signal(object)  # RunInfo
    batch = Signal(object)  # BatchResult
    tiles = Signal(object, object)  # store run id, [TileRecord]
    progress = Signal(object)  # Progress
    store_failed = Signal(str)
    failed = Signal(str)
    finished = Signal(str)  # "done", "cancelled" or "failed"

    def __init__(self, heatmaps=None, parent=None):
        super().__init__(parent)
        self.heatmaps = heatmaps
        self.relay: Relay | None = None  # the running session's events
        self._final = Relay(self)  # outlives discard(): ``finished`` always arrives
        self.session: RunSession | None = None
        self._shut = False
        self._gc_paused = False

    @property
    def running(self) -> bool:
        return self.session is not None

    def start(self, request: RunRequest, source, target=None) -> None:
        if self.running:
            raise RuntimeError("a run is already in progress")
        session = RunSession(request, source, target, self.heatmaps)
        relay = Relay(self)  # one per session: discard() closes it, dropping what is queued
        session.status.connect(relay.wrap(self.status.emit))
        session.started.connect(relay.wrap(self.started.emit))
        if self.receivers(SIGNAL("batch(PyObject)")) > 0:  # batches cross threads only when wanted
            session.batch.connect(relay.wrap(self.batch.emit))
        session.tiles.connect(relay.wrap(self.tiles.emit))
        session.progress.connect(relay.wrap(self.progress.emit))
        session.store_failed.connect(relay.wrap(self.store_failed.emit))
        session.failed.connect(relay.wrap(self.failed.emit))
        session.finished.connect(self._final.wrap(self._on_finished))
        self.session, self.relay = session, relay
        # No automatic cyclic GC while the run lasts: a full collection holds the GIL and,
        # started from a (low-priority) worker thread, stalls the GUI thread as long as that
        # thread waits for a CPU. Tensors are freed by reference counting.
        self._gc_paused = gc.isenabled()
        gc.disable()
        session.start()

    def cancel(self) -> None:
        if self.session is not None:
            self.session.cancel()

    def discard(self) -> None:
        """Stop the run and drop whatever it still sends (another slide is being opened);
        only ``finished`` still comes, so the window can reset its controls."""
        if self.relay is not None:
            self.relay.close()
        self.cancel()

    def _on_finished(self, state: str) -> None:
        session, self.session = self.session, None
        if session is not None:
            session.join(SHUTDOWN_TIMEOUT_S)
        self._resume_gc()
        if not self._shut:
            self.finished.emit(state)

    def _resume_gc(self) -> None:
        if self._gc_paused:
            # What the run left alive (its review records, the grid's tiles: hundreds of
            # thousands of objects at slide scale) is long-lived: frozen out of the cyclic
            # collector, as a loaded session's records are. Otherwise the first collections
            # after this scan them all, on whichever thread allocates next.
            gc.freeze()
            gc.enable()
            self._gc_paused = False

    def shutdown(self) -> None:
        """Cancel and wait for the run (closing the window); nothing is emitted after."""
        self._shut = True
        if self.relay is not None:
            self.relay.close()
        session, self.session = self.session, None
        if session is not None:
            session.cancel()
            if not session.join(SHUTDOWN_TIMEOUT_S):
                print("pvdesk: the model run did not stop within "
                      f"{SHUTDOWN_TIMEOUT_S:.0f} s; closing anyway", file=sys.stderr)
        self._resume_gc()
