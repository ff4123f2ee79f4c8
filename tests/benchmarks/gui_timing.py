"""Timing helpers for the GUI benchmarks: paints counted and timed, the event loop run until
a condition (sleeping between events as the application does), and a review store's own
write time per key press."""

from __future__ import annotations

import time


class PaintCounter:
    def __init__(self, view):
        self.n = 0
        self.ms: list[float] = []
        original = view.paintEvent

        def paint(event):
            t = time.perf_counter()
            original(event)
            self.ms.append((time.perf_counter() - t) * 1000)
            self.n += 1

        view.paintEvent = paint


def spin_until(app, cond, timeout=30.0) -> bool:
    """Run the event loop until ``cond()``: sleeping between events as the application's own
    loop does (a busy loop would take the GIL from the threads being measured)."""
    from PySide6.QtCore import QEventLoop, QTimer

    end = time.perf_counter() + timeout
    waker = QTimer(interval=2)  # wakes the wait so cond() is checked at least every 2 ms
    waker.start()
    try:
        while not cond():
            app.processEvents(QEventLoop.ProcessEventsFlag.WaitForMoreEvents)
            if time.perf_counter() > end:
                return False
        return True
    finally:
        waker.stop()


def settle(app, seconds: float = 0.3) -> None:
    """Let the event loop run for a while (what the window does between a reviewer's
    actions), so the first key measured does not also pay for the repaints and layouts
    that opening a run or entering review mode left queued."""
    end = time.perf_counter() + seconds
    spin_until(app, lambda: time.perf_counter() >= end, timeout=seconds + 1)


def timed_store_writes(store, writes: list[float]) -> None:
    """Add the duration (ms) of each of ``store``'s review writes (on the writer thread:
    the transaction and its fsync) to ``writes[-1]``: the disk's share of a slow press."""
    for name in ("confirm_many", "correct_many", "undo", "redo"):
        def timed(*args, _write=getattr(store, name), **kwargs):
            t = time.perf_counter()
            try:
                return _write(*args, **kwargs)
            finally:
                if writes:
                    writes[-1] += (time.perf_counter() - t) * 1000
        setattr(store, name, timed)
