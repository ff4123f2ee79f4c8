"""Typed errors. Each message names the file (or field) and what is wrong, in one line.

The CLI prints ``str(err)`` and exits with status 2; the GUI shows it in a message box.
"""

from __future__ import annotations


class PvdeskError(Exception):
    """Base class for every error meant for a user, not a traceback."""


class SlideError(PvdeskError):
    """A slide, image or patch folder cannot be opened or read."""

    def __init__(self, path, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class SlideNotFoundError(SlideError):
    pass


class UnsupportedFormatError(SlideError):
    pass


class CorruptSlideError(SlideError):
    pass


class EmptyFolderError(SlideError):
    pass


class RegionReadError(SlideError):
    """One region could not be read; the rest of the slide may still be fine."""


class ModelError(PvdeskError):
    """A model bundle is invalid, refused or its weights cannot be had."""


class StoreError(PvdeskError):
    """A review store cannot be opened, migrated or written."""


class GridError(PvdeskError, ValueError):
    """A tile grid that cannot be made: tiles too small in pixels, too many positions."""
