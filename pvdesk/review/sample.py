"""A small synthetic review store, for tests, demos and GUI development."""

from __future__ import annotations

import random

from pvdesk.review.store import ReviewStore
from pvdesk.review.types import TilePrediction
from pvdesk.taxonomy import CLASS_NAMES


def random_probs(rng: random.Random, n: int) -> list[float]:
    raw = [rng.random() ** 3 for _ in range(n)]
    total = sum(raw) or 1.0
    return [v / total for v in raw]


def make_sample_store(path, n_tiles: int = 24, seed: int = 0, reviewer: str = "tester",
                      slide_id: str = "slide-1", source: str = "/data/slide-1.svs",
                      tile: int = 512, classes=CLASS_NAMES, patches: int = 0,
                      embedding_dim: int = 0) -> tuple[ReviewStore, int, list[int]]:
    """(open store, run id, tile ids) with ``n_tiles`` grid tiles on one slide (and
    ``patches`` patch images on a second "slide", a folder) from one random run."""
    rng = random.Random(seed)
    store = ReviewStore(path, reviewer=reviewer)
    store.add_slide(slide_id, source, {"vendor": "synthetic", "width": 8 * tile * 4,
                                       "height": 8 * tile * 4, "mpp": 0.25})
    run = store.add_run("sample-model", "1.0", "sha256:0", list(classes), "cpu", {"seed": seed})
    cols = 8
    rows = [TilePrediction(source, (i % cols) * tile, (i // cols) * tile, tile, tile, 0.25,
                           random_probs(rng, len(classes)),
                           embedding=[rng.random() for _ in range(embedding_dim)] or None)
            for i in range(n_tiles)]
    store.add_predictions(run, slide_id, rows)
    if patches:
        folder = "/data/patches"
        store.add_slide(folder, folder, {})
        store.add_predictions(run, folder, [
            TilePrediction(f"{folder}/{classes[i % len(classes)]}/img{i}.png", None, None, None,
                           None, None, random_probs(rng, len(classes)),
                           folder_class=classes[i % len(classes)]) for i in range(patches)])
    ids = [r.tile_id for r in store.tiles(run_id=run)]
    return store, run, ids
