"""The inference engine: tiles of one source through one or more classifiers, streamed.

    engine = InferenceEngine(source, grid, {"demo-resnet50": clf}, batch_size=32, workers=2,
                             progress=callback)
    for batch in engine.run():          # BatchResult objects, in tile order
        ...
    engine.cancel()                      # from any thread; takes effect within a batch

Reader threads (pvdesk.inference.reader) read each tile once; every classifier runs on the
same uint8 batch in the calling thread (the GUI calls ``run`` from its worker thread) and
resizes it to its own input size. Qt-free; torch is imported when ``run`` starts.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

import numpy as np

from pvdesk import heavy
from pvdesk.inference.reader import BatchReader, ReadBatch
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


class InferenceEngine:
    """Classify every tile of ``grid`` with each of ``classifiers`` (name -> TileClassifier).

    ``progress(Progress)`` is called once before the first batch and after every batch.
    ``cancel_event`` (optional) is a threading.Event shared with the caller; ``cancel()``
    sets it. After a cancel, ``run`` stops yielding, its reader threads are joined and
    ``cancelled`` is True.
    """

    def __init__(self, source, grid, classifiers: Mapping[str, object], batch_size: int = 32,
                 workers: int = 2, progress: Callable[[Progress], None] | None = None,
                 cancel_event: threading.Event | None = None, embeddings: bool = True,
                 prefetch: int | None = None):
        if not classifiers:
            raise ValueError("at least one classifier is needed")
        self.source, self.grid = source, grid
        self.classifiers = dict(classifiers)
        self.batch_size, self.workers, self.prefetch = batch_size, workers, prefetch
        self.progress = progress
        self.cancel_event = cancel_event or threading.Event()
        self.keep_embeddings = embeddings
        self.done = 0
        self.unreadable = 0
        self.finished = False
        self._reader: BatchReader | None = None
        self._widths: dict[str, int] = {}

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

    def _classify(self, read: ReadBatch) -> BatchResult | None:
        torch = heavy.torch()

        ok = read.readable
        n = len(read.tiles)
        probs: dict[str, np.ndarray] = {}
        embs: dict[str, np.ndarray | None] = {}
        x = torch.from_numpy(read.pixels[ok]) if ok.any() else None
        for key, clf in self.classifiers.items():
            if self.cancel_event.is_set():
                return None
            p_out = e_out = None
            if x is not None:
                with torch.inference_mode():
                    out = clf.predict(x)
                p_out = out.probs.detach().float().cpu().numpy()
                if self.keep_embeddings and out.embeddings is not None:
                    e_out = out.embeddings.detach().float().cpu().numpy()
            if p_out is not None:
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
        started = time.perf_counter()
        self.done = self.unreadable = 0
        self.finished = False
        self._reader = BatchReader(self.source, self.grid, self.batch_size, self.workers,
                                   self.prefetch, self.cancel_event)
        self._report(started)
        try:
            for read in self._reader:
                result = self._classify(read)
                if result is None:
                    return
                self.done += len(result)
                self.unreadable += len(result.errors)
                self._report(started)
                yield result
                if self.cancel_event.is_set():
                    return
            self.finished = not self.cancel_event.is_set()
        finally:
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
