"""Opening a slide or patch folder off the GUI thread: the source and its thumbnail."""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QObject, Signal

from pvdesk.ui.background import Tasks, describe_error

THUMB_SIZE = 1024
SHUTDOWN_TIMEOUT_S = 2.0  # how long closing the window waits for an open in progress


@dataclass
class Opened:
    path: str
    source: object  # the Source the user opened
    view_source: object  # a PyramidSource the view shows (the contact sheet for a folder)
    thumbnail: object  # PIL image


def open_for_view(path: str) -> Opened:
    """Qt-free: open ``path`` and prepare what the window shows."""
    from pvdesk.slides import ImageSource, PyramidSource, open_source

    source = open_source(path)
    try:
        thumb = source.thumbnail(THUMB_SIZE)
        if isinstance(source, PyramidSource):
            view = source
        else:  # a patch folder: its contact sheet, as a one-level image
            view = ImageSource(source.path, None, image=thumb)
        return Opened(str(path), source, view, thumb)
    except BaseException:
        source.close()
        raise


class SlideOpener(QObject):
    """``open(path)``; emits ``opened(Opened)`` or ``failed(message)`` for the latest request."""

    opened = Signal(object)
    failed = Signal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.tasks = Tasks(self, "pvdesk-open")
        self._token = 0

    @property
    def busy(self) -> bool:
        return self.tasks.busy

    def open(self, path: str) -> None:
        self._token += 1
        token, path = self._token, str(path)
        self.tasks.start(open_for_view, path,
                         on_done=lambda result: self._on_opened(token, result),
                         on_error=lambda exc: self._on_failed(token, describe_error(
                             exc, f"{path}: cannot be opened")))

    def _on_opened(self, token: int, result: Opened) -> None:
        if token != self._token:  # superseded by a newer request
            result.source.close()
            return
        self.opened.emit(result)

    def _on_failed(self, token: int, message: str) -> None:
        if token == self._token:
            self.failed.emit(message)

    def shutdown(self, timeout: float = SHUTDOWN_TIMEOUT_S) -> None:
        """Closing the window: an open in progress only reads its own slide, so it is
        given a short while and then left to finish alone (a slow or stuck file system
        never holds the window open); its result is dropped."""
        self._token += 1
        self.tasks.shutdown(timeout)
