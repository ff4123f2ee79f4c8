"""The inference engine: order, thread/batch independence, unreadable tiles, embeddings."""

from __future__ import annotations

import numpy as np
import pytest
from inference_fakes import CountingSource, FakeClassifier, FlakySource, small_slide

from pvdesk.inference import InferenceEngine, to_tile_predictions
from pvdesk.slides import open_source
from pvdesk.taxonomy import GROUPS
from pvdesk.tiling import make_grid


@pytest.fixture(scope="module")
def slide(tmp_path_factory):
    path = small_slide(tmp_path_factory.mktemp("inf"))
    src = open_source(path)
    grid = make_grid(src, tile_um=32, out_size=32)
    yield src, grid
    src.close()


def _collect(src, grid, clfs, batch, workers):
    batches = InferenceEngine(src, grid, clfs, batch_size=batch, workers=workers).run_all()
    idx = np.concatenate([b.indices for b in batches])
    probs = {k: np.concatenate([b.probs[k] for b in batches]) for k in clfs}
    return idx, probs, batches


def test_every_tile_once_in_order_and_independent_of_threads_and_batch(slide):
    src, grid = slide
    assert len(grid) > 40
    clfs = {"a": FakeClassifier(seed=1), "b": FakeClassifier(GROUPS, seed=2)}
    ref_idx, ref, _ = _collect(src, grid, clfs, batch=32, workers=1)
    assert ref_idx.tolist() == [t.index for t in grid.tiles]
    assert ref["a"].shape == (len(grid), 8) and ref["b"].shape == (len(grid), 2)
    np.testing.assert_allclose(ref["a"].sum(1), 1.0, atol=1e-5)
    for batch, workers in [(1, 3), (7, 2), (64, 4)]:
        idx, probs, _ = _collect(src, grid, clfs, batch, workers)
        assert idx.tolist() == ref_idx.tolist()
        for k in clfs:
            np.testing.assert_allclose(probs[k], ref[k], atol=1e-5)


def test_each_tile_read_once_for_several_classifiers(slide):
    src, grid = slide
    reads: list[int] = []

    clfs = {"a": FakeClassifier(), "b": FakeClassifier(seed=5), "c": FakeClassifier(seed=6)}
    InferenceEngine(CountingSource(src, reads), grid, clfs, batch_size=16, workers=2).run_all()
    assert sorted(reads) == [t.index for t in grid.tiles]


def test_unreadable_tiles_are_marked_and_the_run_continues(slide):
    src, grid = slide
    bad = {grid.tiles[0].index, grid.tiles[5].index, grid.tiles[-1].index}
    seen = []
    engine = InferenceEngine(FlakySource(src, bad), grid, {"m": FakeClassifier()},
                             batch_size=4, workers=2, progress=seen.append)
    batches = engine.run_all()
    results = [r for b in batches for r in b]
    assert len(results) == len(grid)
    marked = {r.tile.index for r in results if r.unreadable}
    assert marked == bad
    assert all("damaged" in r.error for r in results if r.unreadable)
    assert all(r.probs["m"].shape == (8,) for r in results if not r.unreadable)
    assert engine.finished and not engine.cancelled
    assert seen[-1].done == len(grid) and seen[-1].unreadable == 3
    assert seen[0].done == 0 and seen[-1].eta_s == 0
    preds = [p for b in batches for p in to_tile_predictions(b, "m", str(src.path), src.mpp)]
    assert len(preds) == len(grid) - 3
    assert preds[0].tile_w == grid.side and preds[0].mpp == src.mpp
    assert len(preds[0].probs) == 8 and preds[0].embedding.shape == (3,)


def test_a_batch_with_no_readable_tile_still_has_the_right_shape(slide):
    src, grid = slide
    bad = {t.index for t in grid.tiles[:4]}
    b = next(iter(InferenceEngine(FlakySource(src, bad), grid, {"m": FakeClassifier()},
                                  batch_size=4, workers=1).run()))
    assert b.probs["m"].shape == (4, 8) and np.isnan(b.probs["m"]).all()
    assert not b.readable.any()


def test_embeddings_kept_or_none(slide):
    src, grid = slide
    clfs = {"e": FakeClassifier(), "n": FakeClassifier(embeddings=False)}
    b = next(iter(InferenceEngine(src, grid, clfs, batch_size=8).run()))
    assert b.embeddings["e"].shape == (8, 3) and b.embeddings["n"] is None
    b = next(iter(InferenceEngine(src, grid, clfs, batch_size=8, embeddings=False).run()))
    assert b.embeddings["e"] is None


def test_an_unexpected_reader_error_reaches_the_caller(slide):
    src, grid = slide

    class Broken(FlakySource):
        def read_tile(self, tile, g):
            raise ZeroDivisionError("bug")

        def clone(self):
            return Broken(self.inner.clone())

    with pytest.raises(ZeroDivisionError):
        InferenceEngine(Broken(src), grid, {"m": FakeClassifier()}).run_all()


def test_read_ahead_is_bounded_while_the_consumer_waits(slide):
    import time

    src, grid = slide
    reads: list[int] = []
    engine = InferenceEngine(CountingSource(src, reads), grid, {"m": FakeClassifier()},
                             batch_size=4, workers=2, prefetch=1)
    it = engine.run()
    next(it)  # hold the first batch and stop consuming
    time.sleep(0.3)
    assert len(grid) > 20 and len(reads) <= (2 + 1 + 1) * 4  # slots + the batch held
    it.close()
    assert engine.reader_threads == []
