"""Test doubles for the inference engine: a tiny classifier and a source with bad regions.

FakeClassifier implements the TileClassifier interface of pvdesk.models (``predict`` on a
uint8 (N, 3, H, W) tensor -> an object with ``probs`` and ``embeddings``) with a fixed
linear map of each tile's mean colour, so its output depends on the tile alone.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from slide_factory import paint, write_pyramid

from pvdesk.errors import RegionReadError
from pvdesk.slides.base import PyramidSource
from pvdesk.taxonomy import CLASS_NAMES


@dataclass
class FakeOutput:
    probs: object
    embeddings: object


class FakeClassifier:
    def __init__(self, classes=CLASS_NAMES, seed: int = 0, delay: float = 0.0,
                 embeddings: bool = True):
        import torch

        self.classes = list(classes)
        g = torch.Generator().manual_seed(seed)
        self.weight = torch.randn(3, len(self.classes), generator=g) * 8
        self.delay = delay
        self.with_embeddings = embeddings
        self.calls = 0

    def predict(self, batch):
        import torch

        assert batch.dtype == torch.uint8 and batch.ndim == 4 and batch.shape[1] == 3
        self.calls += 1
        if self.delay:
            time.sleep(self.delay)
        mean = batch.float().mean(dim=(2, 3)) / 255.0
        probs = torch.softmax(mean @ self.weight, dim=1)
        return FakeOutput(probs, mean.clone() if self.with_embeddings else None)


class FlakySource(PyramidSource):
    """Wraps a pyramid; tiles whose index is in ``bad`` raise RegionReadError; reads can be slow."""

    kind = "slide"

    def __init__(self, inner: PyramidSource, bad=(), delay: float = 0.0):
        super().__init__(inner.path)
        self.inner, self.bad, self.delay = inner, set(bad), delay
        self.closed = False

    @property
    def slide_id(self) -> str:
        return self.inner.slide_id

    @property
    def native_mpp(self):
        return self.inner.mpp

    @property
    def level_dimensions(self):
        return self.inner.level_dimensions

    @property
    def level_downsamples(self):
        return self.inner.level_downsamples

    def read_region(self, location, level, size):
        return self.inner.read_region(location, level, size)

    def thumbnail(self, max_size: int = 1024, progress=None):
        return self.inner.thumbnail(max_size, progress)

    def read_tile(self, tile, grid):
        if self.delay:
            time.sleep(self.delay)
        if tile.index in self.bad:
            raise RegionReadError(self.path, f"region at ({tile.x}, {tile.y}) is damaged")
        return self.inner.read_tile(tile, grid)

    def clone(self):
        return FlakySource(self.inner.clone(), self.bad, self.delay)

    def close(self):
        self.closed = True
        self.inner.close()


class CountingSource(FlakySource):
    """Records the index of every tile read, across all clones, in ``reads``."""

    def __init__(self, inner: PyramidSource, reads: list | None = None):
        super().__init__(inner)
        self.reads = [] if reads is None else reads

    def read_tile(self, tile, grid):
        self.reads.append(tile.index)
        return super().read_tile(tile, grid)

    def clone(self):
        return CountingSource(self.inner.clone(), self.reads)


def small_slide(folder: Path) -> Path:
    """A 1200 x 900 px pyramid at 0.5 um/px with two tissue blocks of different colours."""
    img = paint(1200, 900, [(100, 100, 700, 500), (750, 300, 1100, 800)], seed=3)
    img[300:800, 750:1100] = np.clip(img[300:800, 750:1100].astype(int) - 60, 0, 255)
    return write_pyramid(folder / "small.tif", img, levels=3, mpp=0.5)
