"""The inference engine: tiles of one source through one or more classifiers, streamed.

    engine = InferenceEngine(source, grid, {"demo-resnet50": clf}, batch_size=32, workers=2,
                             progress=callback)
    for batch in engine.run():          # BatchResult objects, in tile order
        ...
    engine.cancel()                      # from any thread; takes effect within a batch

Reader threads (pvdesk.inference.reader) read each tile once; every classifier runs on the
same uint8 batch in the calling thread (the GUI calls ``run`` from its worker thread) and
resizes it to its own input size. Qt-free; torch is imported when ``run`` starts.

The path to the device. Batches cross to a model's device as uint8 (once per device, however
many classifiers share it) and are converted, resized and normalised there
(pvdesk.models.preprocess). For a CUDA device the readers fill pinned host buffers, each
copy runs on a side stream without blocking (so it overlaps the previous batch's compute),
results come back through non-blocking copies, and ``pipeline`` batches are in flight: batch
k+1 is queued on the GPU before batch k's results are waited for and handed out, so the GPU
does not idle while the caller stores results or the next batch is launched. On the CPU the
same functions run one batch at a time. ``batch_size``, ``workers`` and ``pipeline`` left at
None take the device's defaults (see ``defaults_for``).
"""

from __future__ import annotations

import functools
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

import numpy as np

from pvdesk import heavy
from pvdesk.inference.reader import BatchReader, ReadBatch, default_workers
from pvdesk.inference.results import BatchResult


@dataclass(frozen=True)
class Progress:
    done: int  # tiles finished (read and classified, or found unreadable)
    total: int
    unreadable: int
    elapsed_s: float

    @property
    def tiles_per_s(self) -> float:
        return self.done / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def eta_s(self) -> float | None:
        """Seconds left at the rate so far (None before the first tile)."""
        rate = self.tiles_per_s
        return (self.total - self.done) / rate if rate > 0 else None

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 1.0

    def __str__(self) -> str:
        eta = "?" if self.eta_s is None else f"{self.eta_s:.0f} s"
        return (f"{self.done}/{self.total} tiles, {self.tiles_per_s:.1f} tiles/s, ETA {eta}"
                + (f", {self.unreadable} unreadable" if self.unreadable else ""))


# Tiles per batch by device kind: the CPU's figure keeps the first results quick; a GPU
# needs larger batches to fill it (CLIP RN50 at 128 x 224 px is ~20 ms on an H100 in fp16).
DEFAULT_BATCH = {"cpu": 32, "mps": 64, "cuda": 128}


def device_kind(classifiers: Mapping[str, object]) -> str:
    """The device the run is sized for: a CUDA classifier's device if any, then MPS, else
    "cpu" (classifiers without a ``device`` attribute count as CPU)."""
    devices = [str(getattr(c, "device", "cpu")) for c in classifiers.values()]
    for kind in ("cuda", "mps"):
        for d in devices:
            if d.split(":", 1)[0] == kind:
                return d
    return "cpu"


def defaults_for(device: str) -> dict:
    """batch_size, workers, prefetch, pipeline and resize_on_device for a run on ``device``."""
    kind = device.split(":", 1)[0]
    gpu = kind != "cpu"
    workers = default_workers(device)
    return {"batch_size": DEFAULT_BATCH.get(kind, 32), "workers": workers,
            # on a GPU each reader already holds a batch, two more waiting suffice; on the CPU
            # the reader's default (one per reader)
            "prefetch": 2 if gpu else None,
            "pipeline": 2 if kind == "cuda" else 1,
            "resize_on_device": gpu}


def torch_alloc(shape, pin: bool = False):
    """An (N, H, W, 3) uint8 buffer allocated by torch, pinned when ``pin`` (for a GPU):
    (its numpy view for the readers, the same memory as an (N, 3, H, W) tensor)."""
    torch = heavy.torch()
    t = torch.empty(shape, dtype=torch.uint8, pin_memory=pin)
    return t.numpy(), t.permute(0, 3, 1, 2)


@dataclass
class _InFlight:
    """A batch queued on the devices whose results have not been waited for yet. Holding
    ``read`` and ``host`` keeps the pixels alive until the copies from them are done."""

    read: ReadBatch
    host: object = None  # the (N, 3, H, W) uint8 tensor sent to the devices
    outs: dict = field(default_factory=dict)  # key -> (probs, embeddings | None) or None
    events: list = field(default_factory=list)  # CUDA events after the copies to the host


class InferenceEngine:
    """Classify every tile of ``grid`` with each of ``classifiers`` (name -> TileClassifier).

    ``progress(Progress)`` is called once before the first batch and after every batch.
    ``cancel_event`` (optional) is a threading.Event shared with the caller; ``cancel()``
    sets it. After a cancel, ``run`` stops yielding, its reader threads are joined and
    ``cancelled`` is True.

    A classifier with ``forward_device`` (TileClassifier) gets the device path described in
    the module docstring; any other object with ``predict`` (uint8 batch on the CPU -> probs,
    embeddings) is called synchronously. ``resize_on_device`` reads slide tiles at their
    pyramid level's size and leaves the resize to the model's device.
    """

    def __init__(self, source, grid, classifiers: Mapping[str, object],
                 batch_size: int | None = None, workers: int | None = None,
                 progress: Callable[[Progress], None] | None = None,
                 cancel_event: threading.Event | None = None, embeddings: bool = True,
                 prefetch: int | None = None, pipeline: int | None = None,
                 resize_on_device: bool | None = None):
        if not classifiers:
            raise ValueError("at least one classifier is needed")
        self.source, self.grid = source, grid
        self.classifiers = dict(classifiers)
        self.device = device_kind(self.classifiers)
        auto = defaults_for(self.device)
        self.batch_size = auto["batch_size"] if batch_size is None else batch_size
        self.workers = auto["workers"] if workers is None else workers
        self.prefetch = auto["prefetch"] if prefetch is None else prefetch
        self.pipeline = max(1, auto["pipeline"] if pipeline is None else int(pipeline))
        self.resize_on_device = (auto["resize_on_device"] if resize_on_device is None
                                 else bool(resize_on_device))
        self.progress = progress
        self.cancel_event = cancel_event or threading.Event()
        self.keep_embeddings = embeddings
        self.done = 0
        self.unreadable = 0
        self.finished = False
        self._reader: BatchReader | None = None
        self._widths: dict[str, int] = {}
        self._copy_streams: dict[str, object] = {}

    def _width(self, key: str, clf) -> int:
        """A classifier's class count, for batches where no tile could be read."""
        if key not in self._widths:
            classes = (getattr(clf, "classes", None)
                       or getattr(getattr(clf, "bundle", None), "classes", None))
            if classes:
                self._widths[key] = len(classes)
            else:  # ask the model itself, once, with one blank tile
                torch = heavy.torch()

                size = self.grid.out_size
                with torch.inference_mode():
                    out = clf.predict(torch.zeros((1, 3, size, size), dtype=torch.uint8))
                self._widths[key] = int(out.probs.shape[1])
        return self._widths[key]

    def cancel(self) -> None:
        self.cancel_event.set()

    @property
    def cancelled(self) -> bool:
        return self.cancel_event.is_set() and not self.finished

    @property
    def reader_threads(self) -> list[threading.Thread]:
        """Reader threads still alive (empty once ``run`` has ended or been closed)."""
        return [t for t in (self._reader.threads if self._reader else []) if t.is_alive()]

    # -- the path to the device ------------------------------------------------------------
    def _to_device(self, host, device: str):
        """uint8 pixels onto ``device``; for CUDA on a side stream, without blocking (from
        pinned memory), ordered before whatever the compute stream queues next."""
        if device == "cpu":
            return host
        torch = heavy.torch()
        if device.split(":", 1)[0] != "cuda":
            return host.to(device)
        stream = self._copy_streams.get(device)
        if stream is None:
            stream = self._copy_streams[device] = torch.cuda.Stream(device=device)
        compute = torch.cuda.current_stream(device)
        with torch.cuda.stream(stream):
            x = host.to(device, non_blocking=True)
        compute.wait_stream(stream)
        x.record_stream(compute)  # the allocator must not reuse x's memory before compute ran
        return x

    @staticmethod
    def _to_host(t):
        """A result tensor onto the CPU: for CUDA a non-blocking copy into pinned memory
        (valid once the batch's event has completed)."""
        if t is None:
            return None
        if t.device.type == "cuda":
            return t.to("cpu", non_blocking=True)
        return t.detach().cpu()

    def _submit(self, read: ReadBatch) -> _InFlight | None:
        """Queue every classifier on the batch; None when cancelled meanwhile."""
        torch = heavy.torch()

        ok = read.readable
        host = None
        if ok.all():
            host = read.tensor if read.tensor is not None else torch.from_numpy(read.pixels)
        elif ok.any():
            host = torch.from_numpy(read.pixels[ok])
        job = _InFlight(read, host)
        on_device: dict[str, object] = {}
        for key, clf in self.classifiers.items():
            if self.cancel_event.is_set():
                for device in on_device:  # what was queued finishes before its buffers go
                    if device.split(":", 1)[0] == "cuda":
                        torch.cuda.current_stream(device).synchronize()
                return None
            if host is None:
                job.outs[key] = None
                continue
            forward = getattr(clf, "forward_device", None)
            if forward is None:  # a plain predict(): synchronous, results on the CPU
                with torch.inference_mode():
                    out = clf.predict(host)
                job.outs[key] = (out.probs, out.embeddings if self.keep_embeddings else None)
                continue
            device = str(clf.device)
            if device not in on_device:
                on_device[device] = self._to_device(host, device)
            probs, emb = forward(on_device[device])
            job.outs[key] = (self._to_host(probs),
                             self._to_host(emb) if self.keep_embeddings else None)
        for device in on_device:  # one event per GPU, after its copies back
            if device.split(":", 1)[0] == "cuda":
                event = torch.cuda.Event()
                event.record(torch.cuda.current_stream(device))
                job.events.append(event)
        return job

    def _collect(self, job: _InFlight) -> BatchResult:
        """Wait for a queued batch and turn it into a BatchResult."""
        for event in job.events:
            event.synchronize()
        read = job.read
        ok = read.readable
        n = len(read.tiles)
        probs: dict[str, np.ndarray] = {}
        embs: dict[str, np.ndarray | None] = {}
        for key, clf in self.classifiers.items():
            out = job.outs.get(key)
            p_out = e_out = None
            if out is not None:
                p_out = out[0].detach().float().cpu().numpy()
                if out[1] is not None:
                    e_out = out[1].detach().float().cpu().numpy()
                self._widths[key] = p_out.shape[1]
            probs[key] = _scatter(p_out, ok, n, self._width(key, clf))
            embs[key] = None if e_out is None else _scatter(e_out, ok, n)
        return BatchResult(read.tiles, probs, embs, dict(read.errors))

    def _report(self, started: float) -> None:
        if self.progress:
            self.progress(Progress(self.done, len(self.grid.tiles), self.unreadable,
                                   time.perf_counter() - started))

    def run(self) -> Iterator[BatchResult]:
        """Yield BatchResult objects in tile order until done or cancelled."""
        heavy.torch()
        started = time.perf_counter()
        self.done = self.unreadable = 0
        self.finished = False
        alloc = None  # plain numpy buffers for predict()-only classifiers
        if any(hasattr(c, "forward_device") for c in self.classifiers.values()):
            pin = self.device.split(":", 1)[0] == "cuda"
            alloc = functools.partial(torch_alloc, pin=pin)
        self._reader = BatchReader(self.source, self.grid, self.batch_size, self.workers,
                                   self.prefetch, self.cancel_event, alloc=alloc,
                                   native=self.resize_on_device)
        self._report(started)
        in_flight: deque[_InFlight] = deque()
        batches = iter(self._reader)
        try:
            while True:
                if self.cancel_event.is_set():
                    return
                read = next(batches, None)
                if read is not None:
                    job = self._submit(read)
                    if job is None:
                        return
                    in_flight.append(job)
                    if len(in_flight) < self.pipeline:
                        continue  # queue the next batch before waiting for this one
                elif not in_flight:
                    break
                result = self._collect(in_flight.popleft())
                self.done += len(result)
                self.unreadable += len(result.errors)
                self._report(started)
                yield result
            self.finished = not self.cancel_event.is_set()
        finally:
            for job in in_flight:  # cancelled: let queued copies finish before buffers go
                for event in job.events:
                    event.synchronize()
            in_flight.clear()
            self._reader.close()

    def run_all(self) -> list[BatchResult]:
        """Every batch at once (small grids, tests)."""
        return list(self.run())


def _scatter(values: np.ndarray | None, ok: np.ndarray, n: int,
             width: int | None = None) -> np.ndarray:
    """Rows for the readable tiles put back among NaN rows for the unreadable ones."""
    if values is None:
        return np.full((n, width or 0), np.nan, dtype=np.float32)
    full = np.full((n, values.shape[1]), np.nan, dtype=np.float32)
    full[ok] = values
    return full
