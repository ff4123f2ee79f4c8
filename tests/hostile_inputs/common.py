"""What every kind of hostile input uses: whether FIFOs can be made here, and making one."""

from __future__ import annotations

import os
from pathlib import Path

HAS_FIFO = hasattr(os, "mkfifo")


def make_fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path
