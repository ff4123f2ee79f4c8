"""Opening a slide or patch folder off the GUI thread: the source and its thumbnail."""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

from pvdesk.errors import PvdeskError

THUMB_SIZE = 1024


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


class _Signals(QObject):
    opened = Signal(int, object)
    failed = Signal(int, str)


class _OpenJob(QRunnable):
    def __init__(self, token: int, path: str, signals: _Signals):
        super().__init__()
        self.token, self.path, self.signals = token, path, signals

    def run(self) -> None:
        try:
            result = open_for_view(self.path)
        except PvdeskError as exc:
            self.signals.failed.emit(self.token, str(exc))
            return
        except Exception as exc:  # never a traceback in the user's face
            self.signals.failed.emit(self.token, f"{self.path}: cannot be opened ({exc})")
            return
        self.signals.opened.emit(self.token, result)


class SlideOpener(QObject):
    """``open(path)``; emits ``opened(Opened)`` or ``failed(message)`` for the latest request."""

    opened = Signal(object)
    failed = Signal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(1)
        self._signals = _Signals(self)
        self._signals.opened.connect(self._on_opened)
        self._signals.failed.connect(self._on_failed)
        self._token = 0

    @property
    def busy(self) -> bool:
        return self.pool.activeThreadCount() > 0

    def open(self, path: str) -> None:
        self._token += 1
        self.pool.start(_OpenJob(self._token, str(path), self._signals))

    def _on_opened(self, token: int, result: Opened) -> None:
        if token != self._token:  # superseded by a newer request
            result.source.close()
            return
        self.opened.emit(result)

    def _on_failed(self, token: int, message: str) -> None:
        if token == self._token:
            self.failed.emit(message)

    def shutdown(self) -> None:
        self._token += 1
        self.pool.clear()
        self.pool.waitForDone()
