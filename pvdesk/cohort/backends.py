"""Backends turn a cohort's slide jobs into per-slide results that the driver writes.

    backend = LocalBackend(settings, models)        # or RayBackend (pvdesk.cohort.ray_backend)
    for stream in backend.run(jobs, regions):       # in job order
        stream.plan        # SlidePlan, or None when the slide failed before it had one
        stream.error       # the one-line reason, or None
        for batch in stream.batches(): ...          # BatchResults in tile order;
                                                    # SlideFailed when it fails part-way
    backend.close()

Both run the functions of pvdesk.cohort.work: the local backend in this process, one slide
at a time, the batches streaming as they are computed; the Ray backend in cluster workers,
several slides (and tile ranges of a large slide) at once. The driver alone writes.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence

from pvdesk.cohort.work import CohortSettings, SlideFailed, SlideJob, stream_job


class SlideStream:
    """One slide as the driver consumes it. ``seconds``: the computation's time so far."""

    def __init__(self, job: SlideJob, plan=None, error: str | None = None):
        self.job, self.plan, self.error = job, plan, error
        self.seconds = 0.0

    def batches(self) -> Iterator:
        raise NotImplementedError


class Backend:
    """The interface: ``run(jobs, regions)`` yields a SlideStream per job, in job order."""

    name = "backend"
    device = "cpu"  # where the models run, as recorded with the outputs

    def run(self, jobs: Sequence[SlideJob], regions: dict) -> Iterator[SlideStream]:
        raise NotImplementedError

    def close(self) -> None:
        """Release what the backend started."""


class _LocalStream(SlideStream):
    def __init__(self, job, settings, models, regions):
        super().__init__(job)
        started = time.perf_counter()
        try:
            self.plan, self._batches = stream_job(job, settings, models, regions)
        except SlideFailed as exc:
            self.error, self._batches = str(exc), iter(())
        self.seconds = time.perf_counter() - started

    def batches(self):
        started = time.perf_counter()
        try:
            yield from self._batches
        finally:
            self.seconds += time.perf_counter() - started


class LocalBackend(Backend):
    """Every slide in this process, one after another, with models loaded once."""

    name = "local"

    def __init__(self, settings: CohortSettings, models: list):
        self.settings, self.models = settings, models
        self.device = settings.device

    def run(self, jobs, regions):
        for job in jobs:
            yield _LocalStream(job, self.settings, self.models, regions)
