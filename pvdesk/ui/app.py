"""`pvdesk [PATH]`: the desktop application."""

from __future__ import annotations

import argparse
import gc
import sys
import threading

DEMO_BUNDLES = ("demo-clip-rn50", "demo-resnet50")


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="pvdesk", description="pvdesk desktop application")
    p.add_argument("path", nargs="?", help="a slide, image or patch folder to open")
    p.add_argument("--reviewer", default=None, metavar="NAME",
                   help="review as NAME (kept in the settings, shown in the status bar; "
                   "Review > Switch reviewer changes it later)")
    return p.parse_args(argv)


GIL_SWITCH_S = 0.001  # the window's process hands the GIL over every 1 ms (Python: 5 ms)


def get_app(argv: list[str] | None = None):
    """The QApplication (created once). The process then switches the GIL between threads
    every millisecond: each callback of the GUI thread (a paint, a slot) must take the GIL
    from a run's threads, and waited up to 5 ms for it each time (the longest event-loop
    gap at run start, while the run builds its grid in Python, went from 36-44 to 26-29 ms
    in bench_gui_scale.py's window, at no cost to the run's speed)."""
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance()
    if app is None:
        app = QApplication([sys.argv[0] if sys.argv else "pvdesk"] + list(argv or []))
        app.setApplicationName("pvdesk")
        app.setOrganizationName("pvdesk")
        sys.setswitchinterval(GIL_SWITCH_S)
    return app


def start_demo(window, bundles=DEMO_BUNDLES) -> None:
    """Run the demo bundles as soon as the window's slide is open."""
    from pvdesk.ui.worker import RunRequest

    def go(_opened=None):
        window.opener.opened.disconnect(go)
        window.start_run(RunRequest(bundles=list(bundles),
                                    device=window.settings.default_device,
                                    model_folders=list(window.settings.model_folders),
                                    embeddings=True))  # S and text search work in the demo

    window.opener.opened.connect(go)


_prewarm: threading.Thread | None = None


def prewarm_ml() -> threading.Thread:
    """Import torch and the model libraries (pvdesk.heavy) in a background thread once the
    window is up.

    Loading libtorch's shared libraries holds the GIL for a few hundred milliseconds that no
    thread can avoid; doing it while the user is still opening a slide keeps those pauses
    out of the first run (when the user pans and watches the heatmap arrive). The objects
    imported are then frozen out of the garbage collector's full collections.
    """
    global _prewarm
    if _prewarm is None:
        def work():
            from pvdesk import heavy

            try:
                # The same locked import the run worker goes through: whichever thread comes
                # first imports, the other waits (never two half-imported torchvisions).
                heavy.ml()
            except Exception:
                pass  # the run reports a broken install itself, with its own message
            # Those libraries bring hundreds of thousands of long-lived objects; frozen, the
            # cyclic garbage collector stops walking them, so its full collections (which
            # stall every thread, the GUI's included) stay short.
            gc.collect()
            gc.freeze()

        _prewarm = threading.Thread(target=work, name="pvdesk-prewarm", daemon=True)
        _prewarm.start()
    return _prewarm


def make_window(path: str | None = None, demo: bool = False, reviewer: str | None = None):
    from pvdesk.paths import sample_slide
    from pvdesk.ui.main_window import MainWindow

    window = MainWindow()
    if reviewer is not None:  # before any slide opens: its queue is this reviewer's
        window.review.team.switch_reviewer(reviewer)
    if demo:
        path = path or str(sample_slide())
        start_demo(window)
    if path:
        window.open_path(path)
    return window


def run_app(argv: list[str] | None = None, demo: bool = False) -> int:
    args = parse_args(list(sys.argv[1:] if argv is None else argv))
    if args.reviewer is not None:
        from pvdesk.errors import StoreError
        from pvdesk.review.team import check_reviewer

        try:
            check_reviewer(args.reviewer, "--reviewer")
        except StoreError as exc:
            print(f"pvdesk: {exc}", file=sys.stderr)
            return 2
    app = get_app()
    window = make_window(args.path, demo=demo, reviewer=args.reviewer)
    window.show()
    from PySide6.QtCore import QTimer

    QTimer.singleShot(300, prewarm_ml)
    code = int(app.exec())
    if _prewarm is not None:
        _prewarm.join(timeout=30)
    return code
