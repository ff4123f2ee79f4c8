"""Terminal progress: a tqdm bar that appears only when work takes more than a second, and
only on a terminal (piped or logged, stderr keeps to messages: a bar's carriage returns
would otherwise run into the error line that follows)."""

from __future__ import annotations

import sys


class TerminalProgress:
    """Callable ``(done, total)`` for core functions that report progress."""

    def __init__(self, desc: str, unit: str = "it"):
        self.desc, self.unit = desc, unit
        self._bar = None

    def __call__(self, done: int, total: int) -> None:
        if self._bar is None:
            if not _is_terminal(sys.stderr):
                return
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=self.desc, unit=self.unit, delay=1.0,
                             file=sys.stderr, leave=False, dynamic_ncols=True)
        if self._bar.total != total:
            self._bar.reset(total=total)
        self._bar.update(done - self._bar.n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _is_terminal(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False
