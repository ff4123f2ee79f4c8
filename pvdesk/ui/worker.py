"""Inference in a worker thread that owns its models; results reach the GUI by queued signals.

``RunController.start(request, source)`` moves an ``InferenceWorker`` to a new QThread.
The worker loads the bundles, builds the tile grid (tissue detection reads pixels, so it
happens here too) and streams the core engine's batches. ``cancel()`` may be called from
any thread; ``shutdown()`` cancels and waits, so closing the window never destroys a
running QThread.
"""

from __future__ import annotations

import gc
import os
import sys
import threading
from dataclasses import dataclass, field

from PySide6.QtCore import QObject, QThread, Signal, Slot

from pvdesk.errors import PvdeskError


@dataclass
class RunRequest:
    bundles: list[str]
    device: str = "auto"
    tile_um: float | None = None  # None: the first bundle's manifest value
    model_folders: list[str] = field(default_factory=list)
    batch_size: int = 16
    workers: int = 2
    min_tissue: float = 0.25
    weights: str | None = None  # a local backbone weights file for bundles lacking theirs


@dataclass
class RunInfo:
    """What the GUI needs before the first batch arrives."""

    bundles: list  # Bundle objects, in request order
    grid: object  # TileGrid
    device: str
    slide_size: tuple[int, int]

    @property
    def untrained(self) -> list[str]:
        return [b.name for b in self.bundles if not b.trained]


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
    yield the CPU to the GUI thread. Linux sets niceness per thread; elsewhere a no-op.
    PVDESK_WORKER_NICE overrides the default of 10 (0 turns it off)."""
    if niceness is None:
        try:
            niceness = int(os.environ.get("PVDESK_WORKER_NICE", "10"))
        except ValueError:
            niceness = 10
    if niceness and sys.platform.startswith("linux") and hasattr(os, "setpriority"):
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), niceness)
        except OSError:
            pass


class InferenceWorker(QObject):
    status = Signal(str)
    started = Signal(object)  # RunInfo
    batch = Signal(object)  # pvdesk.inference.BatchResult
    progress = Signal(object)  # pvdesk.inference.Progress
    failed = Signal(str)
    finished = Signal(str)  # "done", "cancelled" or "failed"

    def __init__(self, request: RunRequest, source):
        super().__init__()
        self.request = request
        self._source = source
        self.cancel_event = threading.Event()

    def cancel(self) -> None:
        self.cancel_event.set()

    @Slot()
    def run(self) -> None:
        lower_thread_priority()
        state = "failed"
        try:
            state = self._run()
        except BaseException as exc:  # noqa: B036 - report, never crash the app
            self.failed.emit(describe_failure(exc))
        finally:
            self.finished.emit(state)

    def _run(self) -> str:
        from pvdesk.inference import InferenceEngine
        from pvdesk.models import pick_device, resolve_bundle
        from pvdesk.tiling import make_grid

        req = self.request
        bundles = [resolve_bundle(name, req.model_folders) for name in req.bundles]
        device = pick_device(req.device)
        classifiers = {}
        for b in bundles:
            if self.cancel_event.is_set():
                return "cancelled"
            self.status.emit(f"Loading {b.name} on {device}…")
            use_file = req.weights if req.weights and not b.weights_status()[0] else None
            classifiers[b.name] = b.load(device, weights=use_file)
        if self.cancel_event.is_set():
            return "cancelled"
        self.status.emit("Finding tissue…")
        tile_um = req.tile_um or bundles[0].tile_um
        out_size = max(b.input_size for b in bundles)
        source = self._source.clone()
        try:
            grid = make_grid(source, tile_um=tile_um, out_size=out_size,
                             min_tissue=req.min_tissue)
            if self.cancel_event.is_set():
                return "cancelled"
            self.started.emit(RunInfo(bundles, grid, device, tuple(source.dimensions)
                                      if hasattr(source, "dimensions") else (0, 0)))
            if not grid.tiles:
                self.status.emit("No tissue tiles found: nothing to classify.")
                return "done"
            engine = InferenceEngine(source, grid, classifiers, batch_size=req.batch_size,
                                     workers=req.workers, progress=self.progress.emit,
                                     cancel_event=self.cancel_event, embeddings=False)
            for result in engine.run():
                self.batch.emit(result)
            return "cancelled" if self.cancel_event.is_set() else "done"
        finally:
            source.close()


class RunController(QObject):
    """Owns at most one running worker thread."""

    status = Signal(str)
    started = Signal(object)
    batch = Signal(object)
    progress = Signal(object)
    failed = Signal(str)
    finished = Signal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self._thread: QThread | None = None
        self._worker: InferenceWorker | None = None
        self._forward = True
        self._shut = False
        self._gc_paused = False

    @property
    def running(self) -> bool:
        return self._thread is not None

    def start(self, request: RunRequest, source) -> None:
        if self.running:
            raise RuntimeError("a run is already in progress")
        thread = QThread(self)
        thread.setObjectName("pvdesk-inference")
        worker = InferenceWorker(request, source)
        worker.moveToThread(thread)
        thread.started.connect(worker.run)
        worker.status.connect(self._on_status)
        worker.started.connect(self._on_started)
        worker.batch.connect(self._on_batch)
        worker.progress.connect(self._on_progress)
        worker.failed.connect(self._on_failed)
        worker.finished.connect(self._on_finished)
        self._thread, self._worker = thread, worker
        self._forward = True
        # No automatic cyclic GC while the run lasts: a full collection holds the GIL, and
        # started from the (low-priority) inference thread it would stall the GUI thread
        # for as long as that thread waits for a CPU. Tensors are freed by reference
        # counting; collection resumes when the run ends.
        self._gc_paused = gc.isenabled()
        gc.disable()
        thread.start()

    def cancel(self) -> None:
        """Stop the run; what it has finished still arrives (and stays on screen)."""
        if self._worker is not None:
            self._worker.cancel()

    def discard(self) -> None:
        """Stop the run and drop whatever it still sends (another slide is being opened);
        only ``finished`` still comes, so the window can reset its controls."""
        self._forward = False
        self.cancel()

    # Worker signals arrive queued on the GUI thread; these drop them after ``discard``.
    def _on_status(self, text: str) -> None:
        if self._forward:
            self.status.emit(text)

    def _on_started(self, info) -> None:
        if self._forward:
            self.started.emit(info)

    def _on_batch(self, result) -> None:
        if self._forward:
            self.batch.emit(result)

    def _on_progress(self, p) -> None:
        if self._forward:
            self.progress.emit(p)

    def _on_failed(self, message: str) -> None:
        if self._forward:
            self.failed.emit(message)

    def _on_finished(self, state: str) -> None:
        self._stop_thread()
        if not self._shut:
            self.finished.emit(state)

    def _stop_thread(self) -> None:
        thread, worker = self._thread, self._worker
        self._thread = self._worker = None
        if thread is not None:
            thread.quit()
            thread.wait()
            thread.deleteLater()
            if self._gc_paused:
                gc.enable()
                self._gc_paused = False
        if worker is not None:
            worker.deleteLater()

    def shutdown(self) -> None:
        """Cancel and wait for the thread (closing the window); nothing is emitted after."""
        self._shut = True
        self._forward = False
        if self._worker is not None:
            self._worker.cancel()
        self._stop_thread()
