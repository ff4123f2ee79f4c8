"""The compute half of a prediction: a slide's plan (tile grid, heatmap base image, what the
writer needs to know of the source) and its tiles' probabilities, batch by batch.

    plan = plan_slide(source, bundles, GridParams(tile_um=None), regions=None)
    for batch in compute_tiles(source, plan.grid, models, batch_size=32):   # BatchResult
        ...
    compute_tiles(source, plan.grid, models, start=64, stop=128)   # a tile range

Everything here reads the slide and runs models; nothing is written. The writing half is
:mod:`pvdesk.predict.writer`. A plan and the batches are plain picklable data, so a cluster
worker computes them and the process that writes receives them (pvdesk.cohort). A tile range
starting at a multiple of ``batch_size`` gives exactly the batches (same tiles, same
numbers) the whole grid gives there. Qt-free.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pvdesk.errors import PvdeskError
from pvdesk.inference import InferenceEngine
from pvdesk.tiling import make_grid


@dataclass(frozen=True)
class GridParams:
    """How a source is tiled (the CLI's grid options) and the heatmaps' size."""

    tile_um: float | None = None  # None: the first model's field of view
    overlap: float = 0.0
    min_tissue: float = 0.25
    mpp: float | None = None  # stated microns per pixel (None: the file's)
    heatmap_size: int = 1200

    def as_dict(self) -> dict:
        return {"tile_um": self.tile_um, "overlap": self.overlap, "min_tissue": self.min_tissue,
                "mpp": self.mpp, "heatmap_size": self.heatmap_size}


@dataclass
class SlideMeta:
    """What the writer needs to know of a source without opening it (duck-types the parts of
    a Source that RunRecorder reads: ``path``, ``slide_id``, ``mpp``, ``properties()``)."""

    path: str  # resolved
    slide_id: str
    mpp: float | None
    dimensions: tuple[int, int] | None  # level 0, slides only
    is_slide: bool
    props: dict = field(default_factory=dict)

    def properties(self) -> dict:
        return dict(self.props)

    @classmethod
    def of(cls, source, is_slide: bool) -> SlideMeta:
        return cls(str(Path(source.path).resolve()), source.slide_id, source.mpp,
                   tuple(source.dimensions) if is_slide else None, is_slide,
                   dict(source.properties()))


@dataclass
class SlidePlan:
    meta: SlideMeta
    grid: object  # pvdesk.tiling.TileGrid
    thumbnail: object = None  # PIL image the heatmaps are drawn on (slides only)


def grid_inputs(bundles: Sequence, params: GridParams) -> tuple[float, int]:
    """(tile_um, model input size in px) of a run of ``bundles``."""
    if not bundles:
        raise ValueError("no model given")
    return (params.tile_um or bundles[0].tile_um), max(b.input_size for b in bundles)


def plan_slide(source, bundles: Sequence, params: GridParams, regions=None,
               grid_progress=None) -> SlidePlan:
    """The tile grid of ``source`` for ``bundles`` (limited to ``regions`` when given) and,
    for a slide, the thumbnail its heatmaps are drawn on."""
    tile_um, out_size = grid_inputs(bundles, params)
    grid = make_grid(source, tile_um, out_size, params.overlap, params.min_tissue,
                     progress=grid_progress)
    if regions:
        from pvdesk.regions import limit_grid

        grid = limit_grid(grid, regions)
    is_slide = grid.stride is not None
    thumb = source.thumbnail(params.heatmap_size) if is_slide else None
    return SlidePlan(SlideMeta.of(source, is_slide), grid, thumb)


def tile_range(grid, start: int, stop: int):
    """A copy of ``grid`` holding tiles[start:stop] (same Tile objects and indices)."""
    if start == 0 and stop >= len(grid.tiles):
        return grid
    part = copy.copy(grid)
    part.tiles = grid.tiles[start:stop]
    part._xy = None
    return part


def ranges(n_tiles: int, chunk: int, batch_size: int) -> list[tuple[int, int]]:
    """[start, stop) ranges covering ``n_tiles``, each at most ``chunk`` tiles and starting
    at a multiple of ``batch_size`` (so every range's batches are the whole grid's)."""
    step = max(batch_size, (max(chunk, 1) // batch_size) * batch_size)
    return [(a, min(a + step, n_tiles)) for a in range(0, n_tiles, step)] or [(0, 0)]


def compute_tiles(source, grid, models: Sequence, *, start: int = 0, stop: int | None = None,
                  batch_size: int = 32, workers: int = 2, embeddings: bool = False,
                  progress=None, cancel=None) -> Iterator:
    """BatchResults of ``models`` (LoadedModel) over ``grid``'s tiles [start, stop), in tile
    order. Raises PvdeskError at the end when cancelled (``cancel``: a threading.Event)."""
    part = tile_range(grid, start, len(grid.tiles) if stop is None else stop)
    engine = InferenceEngine(source, part, {m.label: m.classifier for m in models},
                             batch_size=batch_size, workers=workers, progress=progress,
                             cancel_event=cancel, embeddings=embeddings)
    yield from engine.run()
    if engine.cancelled:  # raised inside the writer's atomic CSV write: no partial CSV
        raise PvdeskError(f"{source.path}: prediction cancelled after {engine.done} tiles")
