"""A model run off the caller's thread: bundles -> tile grid -> engine -> store -> deltas.

``RunSession(request, source, target, heatmaps).start()`` runs on its own thread:

1. loads the bundles and builds the tile grid (tissue detection reads pixels);
2. ``started(RunInfo)``; the target (a :class:`StoreTarget`, or None) records the run;
3. for every engine batch: the target stores it and returns the stored tiles as review
   records, the heatmap service folds the batch in, and ``tiles(records)`` hands the new
   records on, coalesced to at most one call per ``tiles_interval`` seconds;
4. ``finished(state)`` with "done", "cancelled" or "failed" (after ``failed(message)``).

Nothing here waits on the caller: a GUI relays the events to its thread and only ever
receives small deltas and ready-to-draw heatmap frames. ``cancel()`` works from any thread;
``join(timeout)`` waits for the thread.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from dataclasses import dataclass, field

from pvdesk.app.events import Event
from pvdesk.errors import PvdeskError

TILES_INTERVAL_S = 0.1


@dataclass
class RunRequest:
    bundles: list[str]
    device: str = "auto"
    tile_um: float | None = None  # None: the first bundle's manifest value
    model_folders: list[str] = field(default_factory=list)
    batch_size: int | None = None  # None: the engine's default for the device (32 CPU, 128 CUDA)
    workers: int | None = None  # None: reader threads by the device and core count
    min_tissue: float = 0.25
    weights: str | None = None  # a local backbone weights file for bundles lacking theirs
    use_regions: bool = True  # limit to the slide's regions of interest (QuPath) when it has any
    embeddings: bool = False  # store each tile's image embedding (float16; CLIP kinds)


@dataclass
class RunInfo:
    """What a viewer needs before the first batch arrives."""

    bundles: list  # Bundle objects, in request order
    grid: object  # TileGrid
    device: str
    slide_size: tuple[int, int]
    runs: dict = field(default_factory=dict)  # bundle name -> store run id (when stored)

    @property
    def untrained(self) -> list[str]:
        return [b.name for b in self.bundles if not b.trained]

    @property
    def unreadable_area(self) -> str | None:
        """"0.21 mm² (12.9% of the slide)" that could not be read, or None."""
        mask = getattr(self.grid, "mask", None)
        if mask is None or mask.unknown is None:
            return None
        mm2 = mask.unknown_mm2
        share = f"{mask.unknown_fraction_total:.1%} of the slide"
        return f"{mm2:.3g} mm² ({share})" if mm2 is not None else share

    def slide_facts(self) -> dict[str, str]:
        """Rows for the Slide panel: what tissue detection kept, dropped and could not read."""
        mask = getattr(self.grid, "mask", None)
        if mask is None:
            return {}
        grid = self.grid
        facts = {"Tissue": f"{mask.fraction_total:.1%} of the slide; "
                           f"{len(grid.tiles)} of {grid.total_positions} tiles kept",
                 "Tissue rule": f"fragments {mask.min_object_rule} dropped"
                                + (f" ({mask.dropped_objects} dropped)"
                                   if mask.dropped_objects else "")}
        area = self.unreadable_area
        facts["Unreadable"] = (f"{area}: unknown, not background; {grid.unknown_tiles} "
                               "tiles overlap it and are tried" if area else "none")
        return facts


def describe_failure(exc: BaseException) -> str:
    """One clear line for an error that stopped a run."""
    if isinstance(exc, PvdeskError):
        text = str(exc)
        if "weights" in text and "--weights" in text:
            text += (" — in the app: Analysis ▸ Run model… ▸ Backbone weights file, or add "
                     "the folder under File ▸ Settings ▸ Model folders.")
        return text
    if isinstance(exc, MemoryError) or "out of memory" in str(exc).lower():
        return ("Out of memory while running the model: try a smaller batch, the CPU, or "
                "close other programs.")
    return f"The run failed: {type(exc).__name__}: {exc}"


def lower_thread_priority(niceness: int | None = None) -> None:
    """Make the calling thread (and the threads it starts: torch's pool, tile readers)
    yield the CPU to an interactive thread. Linux sets niceness per thread; elsewhere a
    no-op. PVDESK_WORKER_NICE overrides the default of 10 (0 turns it off)."""
    if niceness is None:
        try:
            niceness = int(os.environ.get("PVDESK_WORKER_NICE", "10"))
        except ValueError:
            niceness = 10
    if niceness and sys.platform.startswith("linux") and hasattr(os, "setpriority"):
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), niceness)
        except OSError as exc:  # not permitted here: the run still works, only less politely
            print(f"pvdesk: could not lower the worker's priority: {exc}", file=sys.stderr)


class StoreTarget:
    """Records a run into the slide's review store (opened on the run's thread by
    ``open_store()``) and returns each batch's stored tiles as review records."""

    def __init__(self, open_store, source, slide_id=None):
        self.open_store = open_store
        self.source = source
        self.slide_id = slide_id  # a callable: the id the store knows the slide by (None: its own)
        self.recorder = None
        self.store = None

    def _slide_id(self) -> str:
        return self.slide_id() if self.slide_id else self.source.slide_id

    def limit(self, grid):
        """The grid limited to the regions of interest imported for this slide (QuPath
        annotations, ``review import-geojson --as-region``); the grid itself when none."""
        from pvdesk.regions import limit_grid, regions_for

        if self.store is None:
            self.store = self.open_store()
        regions = regions_for(self.store, self._slide_id())
        return limit_grid(grid, regions) if regions else grid

    def begin(self, bundles, grid, device: str, settings: dict | None = None) -> dict[str, int]:
        from pvdesk.review.project import RunRecorder

        if self.store is None:
            self.store = self.open_store()
        self.recorder = RunRecorder(self.store, self.source, self._slide_id())
        return self.recorder.begin({b.name: b for b in bundles}, grid, device,
                                   {"app": "pvdesk", **(settings or {})})

    def add(self, batch) -> dict[str, list]:
        return self.recorder.add_records(batch)


class RunSession:
    def __init__(self, request: RunRequest, source, target: StoreTarget | None = None,
                 heatmaps=None, tiles_interval: float = TILES_INTERVAL_S,
                 load_classifiers=None):
        self.request = request
        self.source = source
        self.target = target
        self.heatmaps = heatmaps  # a HeatmapService, or None
        # this run owns the heatmaps from now on; a later claim (another slide) drops it
        self._hm = heatmaps.claim() if heatmaps is not None else None
        self.tiles_interval = tiles_interval
        self._load = load_classifiers or _load_classifiers
        self.cancel_event = threading.Event()
        self.status = Event("run.status")
        self.started = Event("run.started")
        self.progress = Event("run.progress")
        self.batch = Event("run.batch")  # every BatchResult (tests, exports)
        self.tiles = Event("run.tiles")  # (run_id, [TileRecord]) deltas, coalesced
        self.store_failed = Event("run.store_failed")
        self.failed = Event("run.failed")
        self.finished = Event("run.finished")
        self.info: RunInfo | None = None
        self.state: str | None = None
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("a run session runs once")
        self._thread = threading.Thread(target=self._main, name="pvdesk-run", daemon=True)
        self._thread.start()

    def cancel(self) -> None:
        self.cancel_event.set()

    def join(self, timeout: float | None = None) -> bool:
        if self._thread is not None:
            self._thread.join(timeout)
            return not self._thread.is_alive()
        return True

    def _throttled_progress(self):
        """Progress for listeners at most ten times a second (a fast run finishes hundreds
        of batches a second; a status bar needs no more)."""
        return _progress_every(self.progress.emit, self.tiles_interval)

    def _main(self) -> None:
        lower_thread_priority()
        state = "failed"
        try:
            state = self._run()
        except BaseException as exc:  # noqa: B036 - reported to the listeners, never lost
            self.failed.emit(describe_failure(exc))
        finally:
            self.state = state
            if self.heatmaps is not None:  # every batch folded in and drawn before "finished"
                self.heatmaps.flush(timeout=30.0)
            self.finished.emit(state)

    def _run(self) -> str:
        from pvdesk.inference import InferenceEngine
        from pvdesk.tiling import make_grid

        req = self.request
        bundles, classifiers, device = self._load(req, self.status.emit, self.cancel_event)
        if self.cancel_event.is_set():
            return "cancelled"
        self.status.emit("Finding tissue…")
        tile_um = req.tile_um or bundles[0].tile_um
        out_size = max(b.input_size for b in bundles)
        source = self.source.clone()
        try:
            grid = make_grid(source, tile_um=tile_um, out_size=out_size,
                             min_tissue=req.min_tissue)
            target = self.target
            if target is not None and req.use_regions and hasattr(target, "limit"):
                try:
                    grid = target.limit(grid)
                except Exception as exc:
                    self.store_failed.emit(f"{type(exc).__name__}: {exc}")
                    target = None
                for w in grid.warnings:
                    if "region" in w:
                        self.status.emit(w)
            if self.cancel_event.is_set():
                return "cancelled"
            size = tuple(source.dimensions) if hasattr(source, "dimensions") else (0, 0)
            info = RunInfo(bundles, grid, device, size)
            if target is not None and grid.tiles:
                try:
                    extra = ({"settings": {"embedding_dtype": "float16"}}
                             if req.embeddings else {})
                    info.runs = target.begin(bundles, grid, device, **extra)
                except Exception as exc:
                    self.store_failed.emit(f"{type(exc).__name__}: {exc}")
                    target = None
            self.info = info
            if self.heatmaps is not None:
                self.heatmaps.begin(grid, bundles, size if size[0] else None, self._hm)
            self.started.emit(info)
            if not grid.tiles:
                self.status.emit("No tissue tiles found: nothing to classify.")
                return "done"
            engine = InferenceEngine(source, grid, classifiers, batch_size=req.batch_size,
                                     workers=req.workers, progress=self._throttled_progress(),
                                     cancel_event=self.cancel_event,
                                     embeddings=req.embeddings and target is not None)
            shown = bundles[0].name
            pending: list = []
            last = time.monotonic()
            for result in engine.run():
                if target is not None:
                    try:
                        pending.extend(target.add(result).get(shown, ()))
                    except Exception as exc:
                        self.store_failed.emit(f"{type(exc).__name__}: {exc}")
                        target = None
                if self.heatmaps is not None:
                    self.heatmaps.add(result, self._hm)
                self.batch.emit(result)
                if pending and time.monotonic() - last >= self.tiles_interval:
                    self.tiles.emit(info.runs.get(shown), pending)
                    pending, last = [], time.monotonic()
            if pending:
                self.tiles.emit(info.runs.get(shown), pending)
            return "cancelled" if self.cancel_event.is_set() else "done"
        finally:
            source.close()


def _progress_every(emit, interval: float):
    """``emit`` at most once per ``interval`` seconds, but always the first and the last."""
    last = [0.0]

    def progress(p) -> None:
        now = time.monotonic()
        if p.done == 0 or p.done >= p.total or now - last[0] >= interval:
            last[0] = now
            emit(p)
    return progress


def _load_classifiers(req: RunRequest, status, cancel_event):
    """The request's bundles, loaded on the device it asks for."""
    from pvdesk.models import pick_device, resolve_bundle

    bundles = [resolve_bundle(name, req.model_folders) for name in req.bundles]
    device = pick_device(req.device)
    classifiers = {}
    for b in bundles:
        if cancel_event.is_set():
            break
        status(f"Loading {b.name} on {device}…")
        use_file = req.weights if req.weights and not b.weights_status()[0] else None
        classifiers[b.name] = b.load(device, weights=use_file)
    return bundles, classifiers, device
