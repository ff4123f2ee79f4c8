"""A window's first size: what it asks for, shrunk to the free area of the screen it opens on.

``fit_to_screen(widget, w, h)`` remembers the asked-for size as ``widget.default_size`` (tests
size a window as a 1366 x 768 or 1280 x 720 screen would, whatever screen they run on).
"""

from __future__ import annotations

from PySide6.QtGui import QGuiApplication

TITLE_BAR_H = 32  # what the window manager's frame takes of the free height


def fit_to_screen(widget, width: int, height: int) -> None:
    widget.default_size = (width, height)
    screen = widget.screen() or QGuiApplication.primaryScreen()
    if screen is not None:
        free = screen.availableGeometry()
        width = min(width, free.width())
        height = min(height, free.height() - TITLE_BAR_H)
    widget.resize(width, height)
