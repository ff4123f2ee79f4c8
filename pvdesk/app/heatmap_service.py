"""Heatmaps accumulated and rendered on their own thread; the window only draws frames.

``begin(info)`` makes one HeatmapGrid per bundle of a run; ``add(batch)`` queues a batch
(the caller never waits); ``set_params(...)`` picks the model, layer, colormap, opacity and
threshold. The thread folds batches in as they come and renders the shown layer at most
every ``interval`` seconds while results stream (at once when the parameters change or
the run finishes), emitting ``frame`` with a :class:`Frame`: a premultiplied RGBA array at
most ``max_px`` on its long side, ready to wrap in an image and draw. Rendering cost
depends on that size, not on the number of tiles.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass

import numpy as np

from pvdesk.app.events import Event
from pvdesk.colormaps import CLASS_COLOUR, colormap_layer
from pvdesk.heatmap import ARGMAX, HeatmapGrid, fit_to
from pvdesk.heatmap.render import render, tissue_alpha
from pvdesk.taxonomy import taxonomy_of

MAX_OVERLAY_PX = 1024
RENDER_INTERVAL_S = 0.25


@dataclass
class Frame:
    rgba: np.ndarray  # (h, w, 4) uint8, alpha-premultiplied
    model: str
    layer: str
    tiles: int  # tiles folded into this model's heatmap when it was rendered
    version: int


DEFAULT_PARAMS = {"model": None, "layer": ARGMAX, "colormap": CLASS_COLOUR, "opacity": 0.45,
                  "threshold": 0.0}


def premultiply(rgba: np.ndarray) -> np.ndarray:
    out = rgba.copy()
    a = rgba[..., 3:4].astype(np.uint16)
    out[..., :3] = ((rgba[..., :3].astype(np.uint16) * a + 127) // 255).astype(np.uint8)
    return out


class HeatmapService:
    def __init__(self, interval: float = RENDER_INTERVAL_S, max_px: int = MAX_OVERLAY_PX):
        self.interval = interval
        self.max_px = max_px
        self.frame = Event("heatmap.frame")
        self.failed = Event("heatmap.failed")
        self.heatmaps: dict[str, HeatmapGrid] = {}
        self.params = dict(DEFAULT_PARAMS)
        self.renders = 0
        self.render_s = 0.0  # how long the last frame took to render
        self._q: queue.SimpleQueue = queue.SimpleQueue()
        self._generation = 0  # bumps on begin/clear: frames of an older run are dropped
        self._lock = threading.Lock()
        self._tissue: dict[tuple, np.ndarray | None] = {}
        self._thread = threading.Thread(target=self._loop, name="pvdesk-heatmap", daemon=True)
        self._closed = False
        self._idle = threading.Event()
        self._idle.set()
        self._thread.start()

    # -- called from any thread ---------------------------------------------------------------
    def claim(self) -> int:
        """Clear the heatmaps and return a token: only calls carrying the newest token
        (or none) change what is shown, so a run that was discarded cannot come back."""
        with self._lock:
            self._generation += 1
            self.heatmaps = {}
            self._put(("begin", self._generation, {}))
            return self._generation

    def begin(self, grid, bundles, size: tuple[int, int] | None,
              token: int | None = None) -> None:
        """A run (or a reopened run) with this grid: one heatmap per bundle with a slide grid."""
        maps = {}
        if grid.stride is not None:
            for b in bundles:
                maps[b.name] = HeatmapGrid(grid, b.classes, size=size, taxonomy=taxonomy_of(b))
        with self._lock:
            if token is None:
                self._generation += 1
            elif token != self._generation:
                return  # claimed since: this run was discarded
            self.heatmaps = maps
            self._put(("begin", self._generation, maps))

    def clear(self) -> None:
        self.claim()

    def add(self, batch, token: int | None = None) -> None:
        self._put(("add", self._generation if token is None else token, batch))

    def finish(self) -> None:
        """Results are complete: render now."""
        self._put(("render", self._generation, None))

    def set_params(self, **params) -> None:
        self._put(("params", self._generation, params))

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything queued so far is folded in and rendered (tests, exports)."""
        done = threading.Event()
        self._put(("sync", self._generation, done))
        return done.wait(timeout)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._q.put(("stop", 0, None))
            if self._thread is not threading.current_thread():
                self._thread.join(timeout=5)

    def _put(self, item) -> None:
        if not self._closed:
            self._q.put(item)

    # -- the thread -------------------------------------------------------------------------
    def _loop(self) -> None:
        maps: dict[str, HeatmapGrid] = {}
        gen, dirty, last = 0, False, 0.0
        while True:
            # while results stream, frames take at most about a tenth of a core: a render
            # that took r seconds waits at least 10 r before the next
            gap = max(self.interval, 10 * self.render_s)
            timeout = None if not dirty else max(0.0, last + gap - time.monotonic())
            try:
                kind, g, arg = self._q.get(timeout=timeout)
            except queue.Empty:
                kind, g, arg = "render", gen, None
            try:
                if kind == "stop":
                    return
                if kind == "begin":
                    maps, gen, dirty = arg, g, False
                    self._emit_frame(maps, gen)
                    continue
                if kind == "sync":
                    if g == gen:
                        self._emit_frame(maps, gen)
                        dirty, last = False, time.monotonic()
                    arg.set()
                    continue
                if g != gen:
                    continue  # an older run's leftovers
                if kind == "add":
                    for name, hm in maps.items():
                        probs = arg.probs.get(name)
                        if probs is not None:
                            hm.add(arg.tiles, probs)
                    dirty = True
                    if time.monotonic() - last < max(self.interval, 10 * self.render_s):
                        continue
                elif kind == "params":
                    self.params.update(arg)
                # "render", "params", or an "add" after a quiet interval
                self._emit_frame(maps, gen)
                dirty, last = False, time.monotonic()
            except Exception as exc:  # reported; the thread keeps serving
                self.failed.emit(f"Heatmap not updated: {type(exc).__name__}: {exc}")
                dirty = False

    def _emit_frame(self, maps, gen) -> None:
        name = self.params.get("model")
        hm = maps.get(name) if name else None
        if hm is None:
            self.frame.emit(None)
            return
        t = time.perf_counter()
        rgba = self.render_array(hm, self.params)
        self.render_s = time.perf_counter() - t
        self.renders += 1
        self.frame.emit(Frame(rgba, name, self.params.get("layer") or ARGMAX, hm.tiles_added,
                              self.renders))

    def render_array(self, hm: HeatmapGrid, p: dict) -> np.ndarray:
        """The layer ``p`` asks for as premultiplied RGBA over the whole slide."""
        w, h = hm.size
        s = min(1.0, self.max_px / max(w, h))
        size = (max(1, round(w * s)), max(1, round(h * s)))
        key = (id(hm), size)
        if key not in self._tissue:
            self._tissue = {key: tissue_alpha(hm, size)}
        tissue = self._tissue[key]
        layer = p.get("layer") or ARGMAX
        if p.get("colormap", CLASS_COLOUR) != CLASS_COLOUR and layer != ARGMAX:
            cells = colormap_layer(hm.values(layer), p["colormap"], p["opacity"], p["threshold"])
            img = fit_to(hm, cells, size, tissue=tissue)
        else:
            img = render(hm, layer, opacity=p["opacity"], threshold=p["threshold"], size=size,
                         tissue=tissue)
        return premultiply(np.asarray(img.convert("RGBA")))
