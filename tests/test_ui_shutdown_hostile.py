"""Closing the window never hangs: an open that never ends (a file system that stalls, as a
FIFO would), a stuck tile read or store write is waited for only a bounded time."""

from __future__ import annotations

import os
import threading
import time

import pytest
from ui_support import show_window

from pvdesk.errors import SlideError
from pvdesk.ui import opener as opener_mod


@pytest.fixture(autouse=True)
def home(monkeypatch, pvdesk_home):
    from pvdesk.ui import dialogs

    # errors are shown in a modal dialog that waits for a click: record them instead
    monkeypatch.setattr(dialogs, "show_error", lambda *a, **k: None)


def test_closing_while_opening_a_stalled_file_does_not_hang(qtbot, monkeypatch, tmp_path):
    release = threading.Event()
    entered = threading.Event()

    def stalled(path):  # what opening a FIFO did before FIFOs were refused: block forever
        entered.set()
        release.wait(120)
        raise SlideError(path, "released")

    monkeypatch.setattr(opener_mod, "open_for_view", stalled)
    w = show_window(qtbot, None, exposed=False)
    w.open_path(str(tmp_path / "stalled.dcm"))
    assert entered.wait(10)
    assert w.opener.busy
    t0 = time.monotonic()
    w.close()
    took = time.monotonic() - t0
    release.set()
    assert took < opener_mod.SHUTDOWN_TIMEOUT_S + 5, f"closing took {took:.1f} s"


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_opening_a_fifo_fails_at_once_and_the_window_closes(qtbot, tmp_path):
    folder = tmp_path / "dicom"
    folder.mkdir()
    os.mkfifo(folder / "a.dcm")
    fifo = tmp_path / "slide.svs"
    os.mkfifo(fifo)
    w = show_window(qtbot, None, exposed=False)
    for target in (folder, fifo):
        failures = []
        w.opener.failed.connect(failures.append)
        w.open_path(str(target))
        qtbot.waitUntil(lambda failures=failures: bool(failures), timeout=15000)
        assert "\n" not in failures[0]
        w.opener.failed.disconnect(failures.append)
    t0 = time.monotonic()
    w.close()
    assert time.monotonic() - t0 < 5


def test_store_writer_flush_and_close_are_bounded():
    from pvdesk.review.project import BackgroundWriter

    release = threading.Event()
    writer = BackgroundWriter("test-writer")
    writer.submit(lambda: release.wait(60))
    t0 = time.monotonic()
    assert writer.flush(0.3) is False
    assert writer.close(0.3) is False
    assert time.monotonic() - t0 < 3
    release.set()
    assert writer.close(10) is True


def test_stuck_tile_read_does_not_hold_the_window(qtbot, monkeypatch):
    from pvdesk.ui import tile_loader

    monkeypatch.setattr(tile_loader, "SHUTDOWN_TIMEOUT_MS", 300)
    release = threading.Event()

    class Stuck(tile_loader.QRunnable):
        def run(self):
            release.wait(60)

    loader = tile_loader.TileLoader()
    loader.pool.start(Stuck())
    time.sleep(0.1)
    t0 = time.monotonic()
    loader.shutdown()
    assert time.monotonic() - t0 < 3
    release.set()
