"""What the inference engine yields: per-batch arrays, viewable per tile.

Probabilities and embeddings are keyed by the name the caller gave each classifier
(usually the bundle name). Rows of unreadable tiles hold NaN probabilities and carry
their error message in ``errors``; ``to_tile_predictions`` turns a batch into the review
store's TilePrediction records (unreadable tiles left out).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from pvdesk.review.types import TilePrediction
from pvdesk.slides.base import Tile


@dataclass(frozen=True)
class TileResult:
    """One tile's outcome: probabilities per classifier, or the error that made it unreadable."""

    tile: Tile
    probs: dict[str, np.ndarray]  # key -> (C,) float32; empty when unreadable
    embeddings: dict[str, np.ndarray | None]
    error: str | None = None

    @property
    def unreadable(self) -> bool:
        return self.error is not None


@dataclass
class BatchResult:
    """A batch of tiles in grid order with every classifier's output for them."""

    tiles: list[Tile]
    probs: dict[str, np.ndarray]  # key -> (N, C) float32, NaN rows for unreadable tiles
    embeddings: dict[str, np.ndarray | None]  # key -> (N, D) float32 (NaN rows) or None
    errors: dict[int, str] = field(default_factory=dict)  # tile.index -> message

    def __len__(self) -> int:
        return len(self.tiles)

    @property
    def indices(self) -> np.ndarray:
        return np.array([t.index for t in self.tiles], dtype=np.int64)

    @property
    def readable(self) -> np.ndarray:
        return np.array([t.index not in self.errors for t in self.tiles], dtype=bool)

    def __iter__(self) -> Iterator[TileResult]:
        for i, tile in enumerate(self.tiles):
            err = self.errors.get(tile.index)
            if err is not None:
                yield TileResult(tile, {}, {}, err)
                continue
            emb = {k: (None if e is None else e[i]) for k, e in self.embeddings.items()}
            yield TileResult(tile, {k: p[i] for k, p in self.probs.items()}, emb)


def tile_source(tile: Tile, slide_path: str) -> str:
    """The CSV ``source`` cell of a tile: the patch image, or the slide."""
    return tile.patch or str(slide_path)


def to_tile_predictions(batch: BatchResult, key: str, slide_path: str,
                        mpp: float | None) -> list[TilePrediction]:
    """The batch's readable tiles as review-store records for classifier ``key``."""
    probs, emb = batch.probs[key], batch.embeddings.get(key)
    out = []
    for i, tile in enumerate(batch.tiles):
        if tile.index in batch.errors:
            continue
        out.append(TilePrediction(
            source=tile_source(tile, slide_path), tile_x=tile.x, tile_y=tile.y,
            tile_w=tile.w, tile_h=tile.h, mpp=mpp,
            probs=[float(v) for v in probs[i]],
            embedding=None if emb is None else emb[i],
            patch_path=tile.patch, folder_class=tile.folder_class))
    return out
