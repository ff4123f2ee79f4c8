"""Opening a slide or patch folder off the GUI thread: the source and its thumbnail.

A slide whose overview must be built from a large pyramid level (a 100k px slide whose
coarsest level is 6,250 px square takes seconds to decode) is shown at once without it: the
view draws its display tiles as they load, and the overview follows (``thumbnail_ready``).
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QObject, Signal

from pvdesk.ui.background import Tasks, describe_error

THUMB_SIZE = 1024
# An overview drawn from a level up to 16 Mpx (a few tenths of a second) is read before the
# slide shows; from a larger level, after.
THUMB_NOW_PX = 1 << 24
SHUTDOWN_TIMEOUT_S = 2.0  # how long closing the window waits for an open in progress


@dataclass
class Opened:
    path: str
    source: object  # the Source the user opened
    view_source: object  # a PyramidSource the view shows (the contact sheet for a folder)
    thumbnail: object  # PIL image; None until ``thumbnail_ready`` when ``thumbnail_later``
    thumbnail_later: bool = False


def thumbnail_level_px(source) -> int:
    """Level pixels the overview of a pyramid source is drawn from."""
    lw, lh = source.level_dimensions[source.overview_level(THUMB_SIZE)]
    return lw * lh


def build_thumbnail(source):
    """The overview, read through a handle of its own (the view reads tiles meanwhile)."""
    handle = source.clone()
    try:
        return handle.thumbnail(THUMB_SIZE)
    finally:
        handle.close()


def open_for_view(path: str) -> Opened:
    """Qt-free: open ``path`` and prepare what the window shows."""
    from pvdesk.slides import ImageSource, PyramidSource, open_source

    source = open_source(path)
    try:
        if isinstance(source, PyramidSource) and thumbnail_level_px(source) > THUMB_NOW_PX:
            return Opened(str(path), source, source, None, thumbnail_later=True)
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
    """``open(path)``; emits ``opened(Opened)`` or ``failed(message)`` for the latest request,
    then ``thumbnail_ready(source, image)`` when its overview came later."""

    opened = Signal(object)
    failed = Signal(str)
    thumbnail_ready = Signal(object, object)  # the Opened.source, a PIL image

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
        if result.thumbnail_later:
            self.tasks.start(build_thumbnail, result.source,
                             on_done=lambda img: self._on_thumbnail(token, result, img),
                             on_error=lambda exc: self._on_failed(token, describe_error(
                                 exc, f"{result.path}: its overview cannot be drawn")))

    def _on_thumbnail(self, token: int, result: Opened, img) -> None:
        if token == self._token:
            result.thumbnail = img
            self.thumbnail_ready.emit(result.source, img)

    def _on_failed(self, token: int, message: str) -> None:
        if token == self._token:
            self.failed.emit(message)

    def shutdown(self, timeout: float = SHUTDOWN_TIMEOUT_S) -> None:
        """Closing the window: an open in progress only reads its own slide, so it is
        given a short while and then left to finish alone (a slow or stuck file system
        never holds the window open); its result is dropped."""
        self._token += 1
        self.tasks.shutdown(timeout)
