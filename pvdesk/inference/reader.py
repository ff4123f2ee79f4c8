"""Reader threads: tiles of a grid read into uint8 batches, handed out in order.

Each thread owns its own ``source.clone()``. Threads claim whole batches in order and
read them tile by tile; at most ``workers + prefetch`` batches exist at once (a
semaphore slot is taken before a batch is claimed and given back when the consumer has
used it), so memory does not grow with slide size. The consumer gets batches in index
order whatever the thread count, which is what makes results independent of it.

A tile whose region cannot be read (a SlideError, or an OSError from the decoder) is
marked unreadable with its message and the run carries on; any other error stops the
run and is raised in the consumer's thread.

Pixels are stored tile by tile as (H, W, 3) rows of one (N, H, W, 3) buffer (a plain copy
of each decoded image, no transposing) and handed out as its (N, 3, H, W) view, which torch
sees as a channels_last tensor: what a channels_last network wants, with no copy on the way.
``alloc`` lets the engine supply the buffers (pinned host memory when the model is on a
GPU, so the copy to it is asynchronous). With ``native`` the tiles of a slide are kept at
the size read from their pyramid level (at most twice the output size) and resized on the
model's device instead of by PIL in these threads.
"""

from __future__ import annotations

import dataclasses
import os
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from pvdesk.errors import SlideError
from pvdesk.slides.base import PyramidSource, Source, Tile

POLL_S = 0.05  # how often waiting threads look at the stop and cancel flags


MAX_WORKERS = 16  # reader threads at most (each holds a batch buffer; the GIL is shared)
NATIVE_MAX = 2.0  # native reads at most this many times the output size per side


def default_workers(device: str = "cpu") -> int:
    """Reader threads for a run on ``device``: 2 when the model runs on the CPU (it is the
    bottleneck, and readers would take its cores); on a GPU every core but one, 2 to 16."""
    if device.split(":", 1)[0] == "cpu":
        return 2
    return max(2, min(MAX_WORKERS, (os.cpu_count() or 2) - 1))


def native_size(source: Source, grid) -> int | None:
    """The side of the grid's tiles as read from their pyramid level, when reading them at that
    size (and resizing on the model's device) is allowed: a pyramid source, a square grid, and
    at most ``NATIVE_MAX`` times ``grid.out_size``. None otherwise (patch folders: any size)."""
    if not isinstance(source, PyramidSource) or not grid.side:
        return None
    size = max(1, round(grid.side / source.level_downsamples[grid.level]))
    return size if size <= NATIVE_MAX * grid.out_size else None


Alloc = Callable[[tuple[int, int, int, int]], tuple[np.ndarray, object]]


def numpy_alloc(shape: tuple[int, int, int, int]) -> tuple[np.ndarray, None]:
    """A zeroed uint8 (N, H, W, 3) buffer; no torch view (plain host memory)."""
    return np.zeros(shape, dtype=np.uint8), None


@dataclass
class ReadBatch:
    """Tiles ``tiles`` as pixels (N, 3, H, W) uint8; unreadable rows are zero.

    ``pixels`` is a view of an (N, H, W, 3) buffer; ``tensor``, when the engine allocated the
    buffer with torch (pinned when the model is on CUDA), is the same memory as an
    (N, 3, H, W) torch tensor.
    """

    number: int
    tiles: list[Tile]
    pixels: np.ndarray
    errors: dict[int, str] = field(default_factory=dict)  # tile.index -> message
    tensor: object = None

    @property
    def readable(self) -> np.ndarray:
        return np.array([t.index not in self.errors for t in self.tiles], dtype=bool)


def tile_image(source: Source, tile: Tile, grid) -> np.ndarray:
    """One tile as an (out_size, out_size, 3) uint8 array (height, width, RGB)."""
    img = source.read_tile(tile, grid)
    if img.mode != "RGB":
        img = img.convert("RGB")
    size = grid.out_size
    if img.size != (size, size):
        img = img.resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(img, dtype=np.uint8)


def tile_pixels(source: Source, tile: Tile, grid) -> np.ndarray:
    """One tile as a (3, size, size) uint8 array."""
    return tile_image(source, tile, grid).transpose(2, 0, 1)


class BatchReader:
    """Iterate over the grid's tiles as ReadBatch objects, read by ``workers`` threads.

    Stops early (the iterator simply ends) when ``cancel`` is set; the threads check it
    between tiles. Leaving the iteration early, for any reason, stops and joins them.
    """

    def __init__(self, source: Source, grid, batch_size: int = 32, workers: int = 2,
                 prefetch: int | None = None, cancel: threading.Event | None = None,
                 alloc: Alloc | None = None, native: bool = False):
        if batch_size < 1 or workers < 1:
            raise ValueError("batch_size and workers must be at least 1")
        self.source, self.grid = source, grid
        self.batch_size, self.workers = int(batch_size), int(workers)
        self.prefetch = workers if prefetch is None else max(0, int(prefetch))
        self.cancel = cancel or threading.Event()
        self.alloc = alloc or numpy_alloc
        # With ``native``, read_tile is asked for the level's own size, so it does not resize.
        size = native_size(source, grid) if native else None
        self.read_grid = (grid if size is None or size == grid.out_size
                          else dataclasses.replace(grid, out_size=size))
        self.tile_size = self.read_grid.out_size  # side of the pixels in each ReadBatch
        self.tiles = list(grid.tiles)
        self.n_batches = -(-len(self.tiles) // self.batch_size)
        self.threads: list[threading.Thread] = []
        self._stop = threading.Event()

    def _stopping(self) -> bool:
        return self._stop.is_set() or self.cancel.is_set()

    def _read(self, src: Source, number: int) -> ReadBatch | None:
        tiles = self.tiles[number * self.batch_size:(number + 1) * self.batch_size]
        size = self.tile_size
        hwc, tensor = self.alloc((len(tiles), size, size, 3))
        errors: dict[int, str] = {}
        for i, tile in enumerate(tiles):
            if self._stopping():
                return None
            try:
                hwc[i] = tile_image(src, tile, self.read_grid)
            except (SlideError, OSError) as exc:
                errors[tile.index] = str(exc) or type(exc).__name__
                hwc[i] = 0  # torch buffers are not zeroed
        return ReadBatch(number, tiles, hwc.transpose(0, 3, 1, 2), errors, tensor)

    def _work(self, slots: threading.Semaphore, claim, out: queue.Queue) -> None:
        src = None
        try:
            src = self.source.clone()
            while not self._stopping():
                if not slots.acquire(timeout=POLL_S):
                    continue
                number = claim()
                if number >= self.n_batches:
                    slots.release()
                    return
                out.put((number, self._read(src, number)))
        except BaseException as exc:  # handed to the consumer, raised there
            out.put((-1, exc))
        finally:
            if src is not None:
                src.close()

    def __iter__(self) -> Iterator[ReadBatch]:
        if self.n_batches == 0:
            return
        slots = threading.Semaphore(self.workers + self.prefetch)
        out: queue.Queue = queue.Queue()
        lock = threading.Lock()
        counter = iter(range(self.n_batches))

        def claim() -> int:
            with lock:
                return next(counter, self.n_batches)

        self._stop.clear()
        self.threads = [threading.Thread(target=self._work, args=(slots, claim, out),
                                         name=f"pvdesk-reader-{i}", daemon=True)
                        for i in range(min(self.workers, self.n_batches))]
        for t in self.threads:
            t.start()
        pending: dict[int, ReadBatch | None] = {}
        try:
            for number in range(self.n_batches):
                while number not in pending:
                    if self.cancel.is_set():
                        return
                    try:
                        got, item = out.get(timeout=POLL_S)
                    except queue.Empty:
                        if self.cancel.is_set():  # the readers stopped because of it
                            return
                        if not any(t.is_alive() for t in self.threads) and out.empty():
                            raise RuntimeError("tile reader threads stopped unexpectedly") from None
                        continue
                    if isinstance(item, BaseException):
                        raise item
                    pending[got] = item
                batch = pending.pop(number)
                if batch is None:  # a reader saw the cancel flag
                    return
                yield batch
                slots.release()
        finally:
            self.close()

    def close(self, timeout: float = 10.0) -> None:
        """Stop the threads and wait for them (each finishes at most the tile it is on)."""
        self._stop.set()
        for t in self.threads:
            t.join(timeout)
        self.threads = [t for t in self.threads if t.is_alive()]
