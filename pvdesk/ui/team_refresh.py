"""When the Team panel recomputes: by itself, while it is visible, after what it shows may
have changed (a merge, a decision stored, another reviewer or store), at most one computation
at a time, ``delay_ms`` after the last change (a reviewer pressing keys quickly gets one
computation, not one per key); changes during a computation get exactly one more after it.
While the panel is hidden nothing runs: it is marked stale and computed when shown.

Widget-free: ``start`` (launch one computation, off the GUI thread, and call ``finished``
when it ends) and ``on_pending`` (a computation is now wanted or not) are the owner's.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject, QTimer

DELAY_MS = 1500


class Refresher(QObject):
    def __init__(self, start: Callable[[], bool], on_pending: Callable[[bool], None],
                 parent=None, delay_ms: int = DELAY_MS):
        super().__init__(parent)
        self._start = start
        self._on_pending = on_pending
        self.visible = False
        self.stale = False  # what the panel shows may be out of date
        self.running = False
        self._again = False  # a change came during the running computation
        self.delay_ms = delay_ms
        self.timer = QTimer(self)
        self.timer.setSingleShot(True)
        self.timer.timeout.connect(self._due)

    @property
    def pending(self) -> bool:
        """A newer computation is waiting or running (the panel says "updating…")."""
        return self.running or (self.visible and self.stale)

    def changed(self) -> None:
        """What the panel shows may have changed: compute ``delay_ms`` after the last change
        (now hidden: when shown)."""
        self.stale = True
        if self.visible:
            self.timer.start(self.delay_ms)  # restarted by each change (start(ms) sets the
            # interval: each start says its own)
        self._on_pending(self.pending)

    def set_visible(self, visible: bool) -> None:
        self.visible = visible
        if not visible:
            self.timer.stop()
        elif self.stale and not self.timer.isActive():
            self.timer.start(0)  # shown: computed now (the changes are already past)
        self._on_pending(self.pending)

    def force(self) -> None:
        """Compute now (the Compute button); running: once more right after it."""
        self.stale = True
        self.timer.stop()
        self._due(forced=True)

    def _due(self, forced: bool = False) -> None:
        if not (self.visible or forced or self.running):
            return  # hidden since: stays stale until shown
        if self.running:
            self._again = True
            return
        self.stale = False
        self.running = bool(self._start())
        self._on_pending(self.pending)

    def finished(self) -> None:
        """The owner's computation ended (figures or an error shown)."""
        self.running = False
        if self._again:
            self._again = False
            self.stale = True
            if self.visible and not self.timer.isActive():
                self._due()  # the changes' delay ran out during the computation
        self._on_pending(self.pending)
