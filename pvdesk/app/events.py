"""A minimal observer: services announce what happened; listeners decide which thread acts.

``Event.emit`` calls every listener in the emitting thread, in connection order. A listener
that raises does not stop the others: the error is passed to ``Event.on_error`` (by default
printed to stderr with the event's name), never swallowed.
"""

from __future__ import annotations

import sys
import threading
import traceback
from collections.abc import Callable


def _report(name: str, exc: BaseException) -> None:
    print(f"pvdesk: a listener of {name!r} failed: {type(exc).__name__}: {exc}", file=sys.stderr)
    traceback.print_exception(exc, file=sys.stderr)


class Event:
    def __init__(self, name: str = "event",
                 on_error: Callable[[str, BaseException], None] = _report):
        self.name = name
        self.on_error = on_error
        self._listeners: list[Callable] = []
        self._lock = threading.Lock()

    def connect(self, fn: Callable) -> Callable:
        with self._lock:
            self._listeners.append(fn)
        return fn

    def disconnect(self, fn: Callable) -> None:
        with self._lock:
            if fn in self._listeners:
                self._listeners.remove(fn)

    def clear(self) -> None:
        with self._lock:
            self._listeners.clear()

    def emit(self, *args) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for fn in listeners:
            try:
                fn(*args)
            except Exception as exc:
                self.on_error(self.name, exc)
