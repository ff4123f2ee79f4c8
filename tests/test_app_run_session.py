"""A run session, headless: engine -> store -> review records and heatmap frames, off the
caller's thread, with the events a window listens to, in order."""

from __future__ import annotations

import threading
from types import SimpleNamespace

import numpy as np
import pytest
from inference_fakes import FakeClassifier, small_slide

from pvdesk.app.heatmap_service import HeatmapService
from pvdesk.app.run_session import RunRequest, RunSession, StoreTarget
from pvdesk.heatmap import ARGMAX
from pvdesk.heatmap.render import render
from pvdesk.review.store import ReviewStore
from pvdesk.slides import open_source
from pvdesk.taxonomy import CLASS_NAMES


def bundle(name="fake"):
    return SimpleNamespace(name=name, version="1", label=f"{name}@1", manifest_hash="0" * 16,
                           classes=tuple(CLASS_NAMES), trained=False, tile_um=32.0,
                           input_size=32)


def loader(delay=0.0, fail=None):
    def load(req, status, cancel):
        if fail:
            raise fail
        status("Loading fake…")
        return [bundle()], {"fake": FakeClassifier(delay=delay, embeddings=False)}, "cpu"
    return load


@pytest.fixture
def slide(tmp_path):
    src = open_source(small_slide(tmp_path))
    yield src
    src.close()


class Recorder:
    def __init__(self, session):
        self.events: list[tuple] = []
        self.done = threading.Event()
        self.threads: set[str] = set()
        for name in ("status", "started", "progress", "tiles", "store_failed", "failed",
                     "finished"):
            getattr(session, name).connect(lambda *a, n=name: self._on(n, a))

    def _on(self, name, args):
        self.threads.add(threading.current_thread().name)
        self.events.append((name, args))
        if name == "finished":
            self.done.set()

    def names(self):
        return [n for n, _ in self.events]

    def of(self, name):
        return [a for n, a in self.events if n == name]


def test_a_run_records_streams_records_and_draws_off_the_callers_thread(tmp_path, slide):
    store = ReviewStore(tmp_path / "s.pvdb", reviewer="t")
    heat = HeatmapService(interval=0.01)
    frames = []
    heat.frame.connect(frames.append)
    target = StoreTarget(lambda: store, slide)
    s = RunSession(RunRequest(["fake"], batch_size=8, workers=2), slide, target, heat,
                   tiles_interval=0.0, load_classifiers=loader())
    rec = Recorder(s)
    s.start()
    assert rec.done.wait(60) and s.join(10)
    heat.flush()
    names = rec.names()
    assert names[-1] == "finished" and rec.of("finished") == [("done",)]
    assert names.index("started") < names.index("tiles")
    assert rec.threads == {"pvdesk-run"}  # never the caller's thread
    info = rec.of("started")[0][0]
    n = len(info.grid.tiles)
    run_id = info.runs["fake"]
    streamed = [r for run, recs in rec.of("tiles") for r in recs if run == run_id]
    assert len(streamed) == n == len({r.tile_id for r in streamed})
    stored = {r.tile_id: r for r in store.tiles(run_id=run_id)}
    assert {r.tile_id: (r.predicted, r.probs) for r in streamed} == {
        t: (r.predicted, r.probs) for t, r in stored.items()}
    hm = heat.heatmaps["fake"]
    assert hm.tiles_added == n
    # the last frame is the service's render of the complete heatmap
    heat.set_params(model="fake", layer=ARGMAX)
    heat.flush()
    last = frames[-1]
    want = np.asarray(render(hm, ARGMAX, opacity=heat.params["opacity"],
                             size=last.rgba.shape[1::-1]))
    assert last.tiles == n and last.rgba.shape == want.shape
    np.testing.assert_array_equal(last.rgba[..., 3], want[..., 3])
    heat.close()
    store.close()


def test_cancel_stops_promptly_and_keeps_what_finished(tmp_path, slide):
    store = ReviewStore(tmp_path / "s.pvdb", reviewer="t")
    s = RunSession(RunRequest(["fake"], batch_size=2, workers=1), slide,
                   StoreTarget(lambda: store, slide), None, load_classifiers=loader(0.05))
    rec = Recorder(s)
    s.start()
    while not rec.of("tiles") and not rec.done.is_set():
        rec.done.wait(0.01)
    s.cancel()
    assert rec.done.wait(20) and rec.of("finished") == [("cancelled",)]
    info = rec.of("started")[0][0]
    kept = store.counts(info.runs["fake"]).total
    assert 0 < kept < len(info.grid.tiles)
    store.close()


def test_a_store_that_fails_is_reported_and_the_run_goes_on(tmp_path, slide):
    class Broken:
        def begin(self, bundles, grid, device):
            return {"fake": 1}

        def add(self, batch):
            raise OSError(28, "No space left on device")

    s = RunSession(RunRequest(["fake"], batch_size=8), slide, Broken(), None,
                   load_classifiers=loader())
    rec = Recorder(s)
    s.start()
    assert rec.done.wait(60)
    assert rec.of("finished") == [("done",)]
    assert len(rec.of("store_failed")) == 1 and "No space" in rec.of("store_failed")[0][0]
    assert rec.of("tiles") == []


def test_a_failure_is_one_message_then_finished(slide):
    from pvdesk.errors import ModelError

    s = RunSession(RunRequest(["nope"]), slide, None, None,
                   load_classifiers=loader(fail=ModelError("no bundle named 'nope'")))
    rec = Recorder(s)
    s.start()
    assert rec.done.wait(20)
    assert rec.names()[-2:] == ["failed", "finished"]
    assert rec.of("failed")[0][0] == "no bundle named 'nope'"
    assert rec.of("finished") == [("failed",)]


def test_heatmap_frames_follow_the_parameters_and_drop_older_runs(slide):
    from pvdesk.tiling import make_grid

    grid = make_grid(slide, tile_um=32, out_size=32)
    heat = HeatmapService(interval=10.0)  # no timed renders: only asked-for ones
    frames = []
    heat.frame.connect(frames.append)
    heat.begin(grid, [bundle()], slide.dimensions)
    heat.set_params(model="fake", layer="ductal_carcinoma", opacity=0.5)
    heat.flush()
    assert frames[-1].layer == "ductal_carcinoma" and frames[-1].tiles == 0
    assert frames[-1].rgba[..., 3].max() == 0  # nothing classified: fully transparent
    from pvdesk.inference.results import BatchResult

    probs = np.full((len(grid.tiles), 8), 1 / 8, dtype=np.float32)
    heat.add(BatchResult(grid.tiles, {"fake": probs}, {"fake": None}))
    heat.clear()  # a new slide: the batch above belongs to an older run
    heat.flush()
    assert frames[-1] is None and heat.heatmaps == {}
    heat.close()


def test_regions_imported_from_qupath_limit_the_windows_run(tmp_path, slide):
    from pvdesk.regions import set_regions

    store = ReviewStore(tmp_path / "s.pvdb", reviewer="t")
    store.add_slide(slide.slide_id, str(slide.path), {})
    box = [[100, 100], [700, 100], [700, 500], [100, 500], [100, 100]]  # the first block
    set_regions(store, slide.slide_id, [{"geometry": {"type": "Polygon", "coordinates": [box]},
                                         "label": "tumor"}], origin="test.geojson")
    full = RunSession(RunRequest(["fake"], batch_size=8, use_regions=False), slide,
                      StoreTarget(lambda: store, slide), None, load_classifiers=loader())
    limited = RunSession(RunRequest(["fake"], batch_size=8), slide,
                         StoreTarget(lambda: store, slide), None, load_classifiers=loader())
    counts = []
    for s in (full, limited):
        rec = Recorder(s)
        s.start()
        assert rec.done.wait(60) and rec.of("finished") == [("done",)]
        tiles = rec.of("started")[0][0].grid.tiles
        counts.append(len(tiles))
        if s is limited:
            assert all(100 <= t.x + t.w / 2 <= 700 and 100 <= t.y + t.h / 2 <= 500
                       for t in tiles)
            assert any("region" in a[0] for a in rec.of("status"))
    assert 0 < counts[1] < counts[0]
    store.close()
