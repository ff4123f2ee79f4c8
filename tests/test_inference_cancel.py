"""Cancel takes effect within a batch and leaves no reader thread behind."""

from __future__ import annotations

import threading
import time

import pytest
from inference_fakes import FakeClassifier, FlakySource, small_slide

from pvdesk.inference import InferenceEngine
from pvdesk.slides import open_source
from pvdesk.tiling import make_grid


def _readers():
    return [t for t in threading.enumerate() if t.name.startswith("pvdesk-reader")]


@pytest.fixture(scope="module")
def slide(tmp_path_factory):
    src = open_source(small_slide(tmp_path_factory.mktemp("cancel")))
    yield src, make_grid(src, tile_um=32, out_size=32)
    src.close()


def test_cancel_while_reading_stops_within_a_batch(slide):
    src, grid = slide
    slow = FlakySource(src, delay=0.02)  # 32 tiles per batch: >= 0.64 s per batch and thread
    engine = InferenceEngine(slow, grid, {"m": FakeClassifier()}, batch_size=32, workers=2)
    threading.Timer(0.05, engine.cancel).start()
    t0 = time.perf_counter()
    batches = list(engine.run())
    took = time.perf_counter() - t0
    assert engine.cancelled and not engine.finished
    assert sum(len(b) for b in batches) < len(grid)
    assert took < 0.5  # less than one batch's reading time
    assert engine.reader_threads == [] and _readers() == []


def test_cancel_from_progress_between_model_calls(slide):
    src, grid = slide
    clf = FakeClassifier(delay=0.05)
    box = {}

    def progress(p):
        if p.done >= 8:
            box["engine"].cancel()

    engine = InferenceEngine(src, grid, {"a": clf, "b": FakeClassifier()}, batch_size=8,
                             workers=2, progress=progress)
    box["engine"] = engine
    batches = list(engine.run())
    assert len(batches) == 1 and engine.cancelled
    assert _readers() == []


def test_external_event_and_early_break_join_threads(slide):
    src, grid = slide
    ev = threading.Event()
    engine = InferenceEngine(FlakySource(src, delay=0.002), grid, {"m": FakeClassifier()},
                             batch_size=4, workers=3, cancel_event=ev)
    it = engine.run()
    next(it)
    assert engine.reader_threads  # running while we hold the generator
    it.close()  # the consumer walks away
    assert engine.reader_threads == [] and _readers() == []
    ev.set()
    assert list(engine.run()) == [] and engine.cancelled
    assert _readers() == []
