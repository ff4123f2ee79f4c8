"""`pvdesk [PATH]`: the desktop application."""

from __future__ import annotations

import argparse
import sys

DEMO_BUNDLES = ("demo-clip-rn50", "demo-resnet50")


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="pvdesk", description="pvdesk desktop application")
    p.add_argument("path", nargs="?", help="a slide, image or patch folder to open")
    return p.parse_args(argv)


def get_app(argv: list[str] | None = None):
    """The QApplication (created once)."""
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance()
    if app is None:
        app = QApplication([sys.argv[0] if sys.argv else "pvdesk"] + list(argv or []))
        app.setApplicationName("pvdesk")
        app.setOrganizationName("pvdesk")
    return app


def start_demo(window, bundles=DEMO_BUNDLES) -> None:
    """Run the demo bundles as soon as the window's slide is open."""
    from pvdesk.ui.worker import RunRequest

    def go(_opened=None):
        window.opener.opened.disconnect(go)
        window.start_run(RunRequest(bundles=list(bundles),
                                    device=window.settings.default_device,
                                    model_folders=list(window.settings.model_folders)))

    window.opener.opened.connect(go)


def make_window(path: str | None = None, demo: bool = False):
    from pvdesk.paths import sample_slide
    from pvdesk.ui.main_window import MainWindow

    window = MainWindow()
    if demo:
        path = path or str(sample_slide())
        start_demo(window)
    if path:
        window.open_path(path)
    return window


def run_app(argv: list[str] | None = None, demo: bool = False) -> int:
    args = parse_args(list(sys.argv[1:] if argv is None else argv))
    app = get_app()
    window = make_window(args.path, demo=demo)
    window.show()
    return int(app.exec())
