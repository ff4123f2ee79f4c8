"""`pvdesk selftest [PATH]` (not in --help): start the window, open PATH (default: the sample
slide), close it, and print how long each step took, as JSON.

For packaging checks (packaging/check_frozen.sh runs it in the frozen app with
QT_QPA_PLATFORM=offscreen) and for measuring start-up. Exit status 0 when the slide opened,
2 when the window could not start or the slide not open (the message is printed, never shown
in a dialog that would wait for a click).
"""

from __future__ import annotations

import json
import sys
import time

from pvdesk.commands.common import real
from pvdesk.errors import PvdeskError


def register(sub) -> None:
    p = sub.add_parser("selftest",  # no help=: not listed by --help
                       description="Open PATH in the window, close it, print the timings.")
    p.add_argument("path", nargs="?", help="slide to open (default: the bundled sample)")
    p.add_argument("--timeout", type=real(0.1, 86400.0), default=120.0,
                   help="give up after this many seconds (default %(default)s)")
    p.set_defaults(func=run)


def run(args) -> int:
    t0 = time.perf_counter()
    from pvdesk.paths import sample_slide
    from pvdesk.qt_check import gui_problem

    problem = gui_problem()
    if problem:
        raise PvdeskError(problem)
    path = args.path or str(sample_slide())
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
            finish()

        window.opener.opened.connect(opened)
        window.opener.failed.connect(finish)
        limit.setSingleShot(True)
        limit.timeout.connect(lambda: finish(f"timed out after {args.timeout:g} s"))
        limit.start(int(args.timeout * 1000))
        window.open_path(path)
        app.exec()
    finally:  # in a test's process the application lives on: leave nothing behind
        limit.stop()
        dialogs.show_error = shown
    result["closed_s"] = time.perf_counter() - t0
    result["frozen"] = bool(getattr(sys, "frozen", False))
    print(json.dumps(result, indent=2))
    if "error" in result or "opened_s" not in result:
        raise PvdeskError(f"{path}: the window did not open it ({result.get('error')})")
    return 0
