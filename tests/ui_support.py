"""The main window as the UI tests open it, in one place.

``show_window`` makes a MainWindow that qtbot owns, gives it a size, shows it and waits until it
is exposed; ``open_slide`` opens a slide in it and waits until it is ready (by default: the slide
shown and its review context made); ``open_window`` does both. A test that needs a different
size, no wait for exposure or a different readiness says so with a parameter.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

# window sizes the UI tests use: a laptop screen and a roomier desktop window
LAPTOP = (1366, 768)
DESKTOP = (1400, 860)


def slide_shown(w) -> bool:
    return w.source is not None


def review_ready(w) -> bool:
    """The slide is shown and its review context (store, slide id) is made."""
    return w.source is not None and w.review.ctx is not None


def show_window(qtbot, size: tuple[int, int] | None = LAPTOP, *,
                fit: Callable | None = None, exposed: bool = True):
    """A MainWindow registered with qtbot, resized to ``size`` (``None``: its own default size;
    ``fit``: ``fit(w)`` places it instead), shown and, with ``exposed``, waited on until exposed.
    """
    from pvdesk.ui.main_window import MainWindow

    w = MainWindow()
    qtbot.addWidget(w)
    if fit is not None:
        fit(w)
    elif size is not None:
        w.resize(*size)
    w.show()
    if exposed:
        qtbot.waitExposed(w)
    return w


def open_slide(qtbot, w, path: str | Path, *, ready: Callable | None = review_ready,
               timeout: int = 20000) -> None:
    """``w.open_path(path)``, then wait until ``ready(w)`` (``None``: do not wait)."""
    w.open_path(path)
    if ready is not None:
        qtbot.waitUntil(lambda: ready(w), timeout=timeout)


def open_window(qtbot, path: str | Path, size: tuple[int, int] | None = DESKTOP, *,
                fit: Callable | None = None, exposed: bool = True,
                ready: Callable | None = review_ready, timeout: int = 20000):
    """``show_window`` then ``open_slide``: the window with ``path`` open and ready."""
    w = show_window(qtbot, size, fit=fit, exposed=exposed)
    open_slide(qtbot, w, path, ready=ready, timeout=timeout)
    return w


def run_and_wait(qtbot, w, *, batch_size: int = 4, rows: str = "entries") -> None:
    """Run demo-resnet50 (a test's patched model) on the open slide; wait until it is done
    and the review session holds a row per tissue tile (``rows``: "entries", the queue, or
    "all", every tile of the run)."""
    from pvdesk.ui.worker import RunRequest

    states: list[str] = []
    w.runs.finished.connect(states.append)
    assert w.start_run(RunRequest(["demo-resnet50"], device="cpu", tile_um=112.0,
                                  batch_size=batch_size))
    qtbot.waitUntil(lambda: bool(states), timeout=60000)
    assert states == ["done"]
    n = len(w.overlay.info.grid.tiles)
    qtbot.waitUntil(lambda: w.review.session is not None
                    and len(getattr(w.review.session, rows)) == n, timeout=20000)
