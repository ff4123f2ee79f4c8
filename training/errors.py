"""Typed errors of the training package: one line naming the file and the problem.

They subclass :class:`pvdesk.errors.PvdeskError`, so ``training.cli.main`` prints them as
``pvdesk-train: error: <message>`` and exits with status 2 (never a traceback).
"""

from __future__ import annotations

from pvdesk.errors import PvdeskError


class TrainingError(PvdeskError):
    """Training or evaluation cannot go on (bad configuration, missing checkpoint, ...)."""


class DataError(TrainingError):
    """A dataset, split manifest or review export cannot be used."""
