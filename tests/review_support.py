"""Helpers for the review session and review UI tests: stores filled without a model."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np

from pvdesk.inference.results import BatchResult
from pvdesk.slides.base import Tile
from pvdesk.taxonomy import CLASS_NAMES


def fake_bundle(name: str = "fake-model", classes=CLASS_NAMES, trained: bool = False):
    return SimpleNamespace(name=name, version="1", manifest_hash="0" * 8, classes=tuple(classes),
                           trained=trained)


def grid_tiles(cols: int, rows: int, side: int, x0: int = 0, y0: int = 0) -> list[Tile]:
    return [Tile(index=r * cols + c, x=x0 + c * side, y=y0 + r * side, w=side, h=side)
            for r in range(rows) for c in range(cols)]


def fake_probs(n: int, classes: int = len(CLASS_NAMES), seed: int = 0) -> np.ndarray:
    """Distinct, peaked-to-flat probability rows (so the queue order is well defined)."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, classes)) * np.linspace(0.2, 4.0, n)[:, None]
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


def record_fake_run(store, source, tiles, key: str = "fake-model", seed: int = 0,
                    side: int | None = None):
    """A run of ``fake_bundle`` over ``tiles`` recorded through the app's RunRecorder."""
    from pvdesk.review.project import RunRecorder

    grid = SimpleNamespace(describe=lambda: "fake grid", tile_um=112.0, side=side,
                           stride=side, level=0, out_size=224)
    rec = RunRecorder(store, source)
    runs = rec.begin({key: fake_bundle(key)}, grid, "cpu")
    probs = fake_probs(len(tiles), seed=seed)
    rec.add(BatchResult(list(tiles), {key: probs}, {key: None}))
    return runs[key]


def fake_source(path: Path, slide_id: str = "slide-1", mpp: float | None = 0.5):
    return SimpleNamespace(path=Path(path), slide_id=slide_id, mpp=mpp, properties=lambda: {})
