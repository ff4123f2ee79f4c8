"""What computing one slide of a cohort is, wherever it runs: the same functions run in the
driver (local backend) and in cluster workers (pvdesk.cohort.ray_backend).

- :class:`CohortSettings` — the models (bundle folders and manifest hashes), grid, batch
  and reader settings of a run; plain picklable data.
- :class:`SlideJob` — one input: its place in the cohort, path and output folder name.
- :func:`stream_job`, :func:`plan_and_tiles`, :func:`range_job` — open the slide, plan it
  (grid, heatmap base image) and compute its tiles (all, or [start, stop)); every failure
  of the slide becomes :class:`SlideFailed` with a one-line message naming the file, never
  an exception that stops the cohort.
- :func:`worker_models` — the loaded models of a worker process, loaded once per process.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

from pvdesk.errors import PvdeskError
from pvdesk.predict.compute import GridParams, SlidePlan, compute_tiles, plan_slide

DEFAULT_TILES_PER_TASK = 4096


class SlideFailed(Exception):
    """One slide of a cohort failed; ``str()`` is the one-line reason naming the file."""


@dataclass(frozen=True)
class ModelSpec:
    folder: str  # the bundle folder, read by every worker (a path every node sees)
    name: str
    manifest_hash: str


@dataclass(frozen=True)
class CohortSettings:
    models: tuple[ModelSpec, ...]
    grid: GridParams
    batch_size: int = 32
    workers: int = 2  # tile reader threads per slide
    precision: str = "auto"
    device: str = "cpu"  # where the models run (in a worker: the worker's device)
    embeddings: bool = False
    tiles_per_task: int = DEFAULT_TILES_PER_TASK


@dataclass(frozen=True)
class SlideJob:
    index: int  # place in the cohort (rows are written in this order)
    path: str
    name: str  # output folder name under --out


def failure_text(path: str, exc: BaseException) -> str:
    if isinstance(exc, PvdeskError):
        text = str(exc)
        return text if str(path) in text else f"{path}: {text}"
    if isinstance(exc, MemoryError):
        return f"{path}: out of memory while reading or classifying it"
    return f"{path}: {type(exc).__name__}: {exc}"


@contextlib.contextmanager
def guarded(path: str):
    """Turns any failure of ``path``'s computation into SlideFailed (a KeyboardInterrupt or
    a killed process is not a failure of the slide and passes)."""
    try:
        yield
    except SlideFailed:
        raise
    except Exception as exc:  # recorded as this slide's error in cohort.csv
        raise SlideFailed(failure_text(path, exc)) from exc


_LOADED: dict = {}


def worker_models(settings: CohortSettings) -> list:
    """The LoadedModels of ``settings``, loaded once per process and kept for its next
    tasks; a bundle whose manifest changed since the driver read it is refused."""
    from pvdesk.models import Bundle
    from pvdesk.predict import LoadedModel

    key = (settings.models, settings.device, settings.precision)
    if key not in _LOADED:
        _LOADED.clear()
        models = []
        for spec in settings.models:
            bundle = Bundle.from_folder(spec.folder)
            if bundle.manifest_hash != spec.manifest_hash:
                raise PvdeskError(f"{spec.folder}: the bundle changed since the run started "
                                  "(its manifest differs on this node)")
            models.append(LoadedModel(bundle, bundle.load(device=settings.device,
                                                          precision=settings.precision)))
        _LOADED[key] = models
    return _LOADED[key]


def _open(job: SlideJob, settings: CohortSettings):
    from pvdesk.slides import open_source

    if not Path(job.path).exists():
        raise PvdeskError(f"{job.path}: no such file or folder")
    return open_source(job.path, mpp=settings.grid.mpp)


def _plan(src, settings: CohortSettings, models, regions) -> SlidePlan:
    """The open slide's plan. ``regions``: {slide id: regions}."""
    return plan_slide(src, [m.bundle for m in models], settings.grid,
                      (regions or {}).get(src.slide_id))


def range_job(job: SlideJob, settings: CohortSettings, models, grid, start: int,
              stop: int) -> list:
    """BatchResults of tiles [start, stop) of the planned ``grid`` (opens the slide)."""
    with guarded(job.path), _open(job, settings) as src:
        return list(compute_tiles(src, grid, models, start=start, stop=stop,
                                  batch_size=settings.batch_size, workers=settings.workers,
                                  embeddings=settings.embeddings))


def stream_job(job: SlideJob, settings: CohortSettings, models, regions=None, progress=None):
    """(plan, batches) of a slide computed here: the batches stream from the open slide (a
    generator; SlideFailed from it when the slide fails part-way). Same functions and the
    same batches as :func:`plan_and_tiles`, or its plan then :func:`range_job` over every
    range."""
    with guarded(job.path):
        src = _open(job, settings)
    try:
        with guarded(job.path):
            plan = _plan(src, settings, models, regions)
    except BaseException:
        src.close()
        raise

    def batches():
        try:
            with guarded(job.path):
                yield from compute_tiles(src, plan.grid, models, batch_size=settings.batch_size,
                                         workers=settings.workers,
                                         embeddings=settings.embeddings, progress=progress)
        finally:
            src.close()

    return plan, batches()


def plan_and_tiles(job: SlideJob, settings: CohortSettings, models, regions=None):
    """(plan, BatchResults of every tile) of a slide of at most ``settings.tiles_per_task``
    tiles, else (plan, None): the larger slide's tiles are computed in ranges
    (:func:`range_job`). Opens the slide once."""
    with guarded(job.path), _open(job, settings) as src:
        plan = _plan(src, settings, models, regions)
        if len(plan.grid.tiles) > settings.tiles_per_task:
            return plan, None
        return plan, list(compute_tiles(src, plan.grid, models, batch_size=settings.batch_size,
                                        workers=settings.workers,
                                        embeddings=settings.embeddings))
