"""The window's one way to run work in the background and hear back on the GUI thread.

``Relay.wrap(fn)`` gives a callable that any thread may call; ``fn`` then runs on the
thread that owns the relay (the GUI thread), in call order, through a queued signal.
Application-layer services (pvdesk.app) announce events on their own threads; the window
connects ``relay.wrap(handler)`` to them. ``run_in_background(fn, ...)`` runs ``fn`` on a
daemon thread and relays its result or error the same way (napari's ``thread_worker`` in
miniature). After ``close()`` nothing more is delivered.
"""

from __future__ import annotations

import sys
import threading
import time
import traceback
from collections.abc import Callable

from PySide6.QtCore import QObject, Signal


class Relay(QObject):
    _call = Signal(object, object)  # fn, args
    error = Signal(str)  # a handler raised: one line for the status bar

    def __init__(self, parent=None):
        super().__init__(parent)
        self._closed = False
        self._call.connect(self._deliver)

    def wrap(self, fn: Callable) -> Callable:
        def relayed(*args):
            if not self._closed:
                self._call.emit(fn, args)
        return relayed

    def _deliver(self, fn, args) -> None:
        if self._closed:
            return
        try:
            fn(*args)
        except Exception as exc:  # reported in the window and on stderr, never lost
            traceback.print_exception(exc, file=sys.stderr)
            self.error.emit(f"{type(exc).__name__}: {exc}")

    def close(self) -> None:
        self._closed = True


def run_in_background(relay: Relay, fn: Callable, *args, on_done: Callable | None = None,
                      on_error: Callable | None = None, name: str = "pvdesk-task"
                      ) -> threading.Thread:
    """``fn(*args)`` on a daemon thread; ``on_done(result)`` or ``on_error(exc)`` on the
    relay's thread (an error with no ``on_error`` goes to ``relay.error``)."""
    done = relay.wrap(on_done) if on_done is not None else None
    fail = relay.wrap(on_error) if on_error is not None else relay.wrap(
        lambda exc: relay.error.emit(f"{type(exc).__name__}: {exc}"))

    def work():
        try:
            result = fn(*args)
        except Exception as exc:
            fail(exc)
            return
        if done is not None:
            done(result)

    t = threading.Thread(target=work, name=name, daemon=True)
    t.start()
    return t


def describe_error(exc: BaseException, context: str) -> str:
    """One line for the user: a pvdesk error says it all; anything else gets its context."""
    from pvdesk.errors import PvdeskError

    if isinstance(exc, PvdeskError):
        return str(exc)
    return f"{context}: {type(exc).__name__}: {exc}"


class Tasks(QObject):
    """Jobs off the GUI thread, one at a time or many, through one relay; ``busy`` while
    any runs; ``shutdown()`` drops what they still send and waits (with a timeout)."""

    def __init__(self, parent=None, name: str = "pvdesk-task"):
        super().__init__(parent)
        self.name = name
        self.relay = Relay(self)
        self._threads: list[threading.Thread] = []

    @property
    def busy(self) -> bool:
        self._threads = [t for t in self._threads if t.is_alive()]
        return bool(self._threads)

    def start(self, fn: Callable, *args, on_done: Callable | None = None,
              on_error: Callable | None = None) -> threading.Thread:
        t = run_in_background(self.relay, fn, *args, on_done=on_done, on_error=on_error,
                              name=self.name)
        self._threads.append(t)
        return t

    def shutdown(self, timeout: float = 30.0) -> None:
        """Drop what the jobs still send and wait for them, ``timeout`` seconds in all
        (however many there are); a job still running then is left to finish alone (its
        thread is a daemon)."""
        self.relay.close()
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
        left = [t for t in self._threads if t.is_alive()]
        if left:
            print(f"pvdesk: {self.name} did not finish within {timeout:g} s; "
                  "closing anyway", file=sys.stderr)
        self._threads = []
