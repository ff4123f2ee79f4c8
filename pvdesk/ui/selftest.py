"""The window's side of `pvdesk selftest`: open a slide in a real window, close it, time it."""

from __future__ import annotations

import time


def open_and_time(path: str, timeout: float, t0: float) -> dict:
    """Start the window, open ``path``, close; the timings (seconds since ``t0``) and any
    error, which is recorded instead of shown in a dialog nobody is there to click."""
    from PySide6.QtCore import QTimer

    from pvdesk.ui import dialogs
    from pvdesk.ui.app import get_app, make_window

    result: dict = {"path": path, "import_s": time.perf_counter() - t0}
    shown = dialogs.show_error
    dialogs.show_error = lambda parent, message, title="", *a, **k: result.setdefault(
        "error", message)  # no modal dialog: nobody is there to click it
    limit = QTimer()
    try:
        app = get_app()
        window = make_window(None)
        window.show()
        app.processEvents()
        result["window_s"] = time.perf_counter() - t0

        def finish(error: str | None = None) -> None:
            if error and "error" not in result:
                result["error"] = error
            QTimer.singleShot(0, window.close)

        def opened(o) -> None:
            result["opened_s"] = time.perf_counter() - t0
            result["dimensions"] = list(o.source.dimensions) if hasattr(
                o.source, "dimensions") else None
            result["title"] = window.windowTitle()
            if not o.thumbnail_later:  # else the overview is part of opening: wait for it
                finish()

        def overview(source, image) -> None:
            result["overview_s"] = time.perf_counter() - t0
            finish()

        window.opener.opened.connect(opened)
        window.opener.thumbnail_ready.connect(overview)
        window.opener.failed.connect(finish)
        limit.setSingleShot(True)
        limit.timeout.connect(lambda: finish(f"timed out after {timeout:g} s"))
        limit.start(int(timeout * 1000))
        window.open_path(path)
        app.exec()
    finally:  # in a test's process the application lives on: leave nothing behind
        limit.stop()
        dialogs.show_error = shown
    return result
