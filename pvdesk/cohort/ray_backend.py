"""The Ray backend: one task per slide, a very large slide split into tile ranges.

Ray (``pip install 'pvdesk[cluster]'``) is imported here and nowhere else, when the
backend starts. ``ray.init(address)`` joins a running cluster (``--address auto`` or
``ray://head:10001``) or, without an address, starts a local instance. Workers read the
slides and the bundle folders by the paths the driver gives (a path every node sees) and
return plans and BatchResults; the driver alone writes. A task whose worker dies is retried
by Ray (``max_retries``); only the result of the attempt that finished reaches the driver,
so nothing is written twice. A slide's own failure is returned as a value, not raised, so
it is never retried and reads exactly as in a local run.
"""

from __future__ import annotations

import time
from collections import deque

from pvdesk.cohort.backends import Backend, SlideStream
from pvdesk.cohort.work import (
    CohortSettings,
    SlideFailed,
    guarded,
    plan_and_tiles,
    range_job,
    worker_models,
)
from pvdesk.errors import PvdeskError
from pvdesk.predict.compute import ranges

INSTALL = ("--backend ray needs Ray, an optional extra: pip install 'pvdesk[cluster]' "
           "(or pip install 'ray>=2.9')")
MAX_RETRIES = 3  # attempts after a worker process or node dies


def import_ray():
    try:
        import ray
    except ImportError:
        raise PvdeskError(INSTALL) from None
    return ray


def _plan_task(job, settings, regions):
    """A slide's plan and, unless it is large, all its batches (runs in a worker)."""
    started = time.perf_counter()
    try:
        with guarded(job.path):
            models = worker_models(settings)
        plan, batches = plan_and_tiles(job, settings, models, regions)
    except SlideFailed as exc:
        return "failed", str(exc), None, time.perf_counter() - started
    return "ok", plan, batches, time.perf_counter() - started


def _range_task(job, settings, grid, start, stop):
    """Batches of tiles [start, stop) of a planned slide (runs in a worker)."""
    started = time.perf_counter()
    try:
        with guarded(job.path):
            models = worker_models(settings)
        batches = range_job(job, settings, models, grid, start, stop)
    except SlideFailed as exc:
        return "failed", str(exc), time.perf_counter() - started
    return "ok", batches, time.perf_counter() - started


def _task_error(job, exc) -> str:
    first = (str(exc).strip().splitlines() or [""])[-1][:300]
    return f"{job.path}: the Ray task failed after {MAX_RETRIES} retries ({type(exc).__name__}" \
           + (f": {first})" if first else ")")


class _RayStream(SlideStream):
    def __init__(self, backend, job, plan, batches, range_refs, seconds):
        super().__init__(job, plan)
        self._backend, self._batches, self._refs = backend, batches, range_refs
        self.seconds = seconds

    def batches(self):
        if self._batches is not None:
            yield from self._batches
            return
        for ref in self._refs:
            status, payload, secs = self._backend.get(self.job, ref, 3)
            self.seconds += secs
            if status != "ok":
                raise SlideFailed(payload)
            yield from payload


class RayBackend(Backend):
    """Slides as Ray tasks of ``cpus_per_task`` CPUs and ``gpus_per_task`` GPUs."""

    name = "ray"

    def __init__(self, settings: CohortSettings, address: str | None = None,
                 cpus_per_task: float = 1.0, gpus_per_task: float = 0.0,
                 max_retries: int = MAX_RETRIES):
        self.ray = import_ray()
        self.settings = settings
        self.device = settings.device
        self._started = False
        if not self.ray.is_initialized():
            try:
                self.ray.init(address=address, include_dashboard=False, log_to_driver=False,
                              logging_level="ERROR")
            except (ConnectionError, RuntimeError, ValueError) as exc:
                where = address or "a local Ray instance"
                raise PvdeskError(f"--address {where}: cannot start or join Ray "
                                  f"({str(exc).strip().splitlines()[0][:200]})") from None
            self._started = True
        opts = {"num_cpus": cpus_per_task, "num_gpus": gpus_per_task,
                "max_retries": max_retries, "retry_exceptions": False}
        self._plan = self.ray.remote(_plan_task).options(**opts)
        self._range = self.ray.remote(_range_task).options(**opts)
        cpus = float(self.ray.cluster_resources().get("CPU", 1.0))
        self.window = max(2, int(2 * cpus / max(cpus_per_task, 0.01)))

    def get(self, job, ref, width: int):
        """A task's result; a task Ray gave up on becomes the slide's failure."""
        try:
            return self.ray.get(ref)
        except self.ray.exceptions.RayError as exc:
            error = _task_error(job, exc)
            return ("failed", error, None, 0.0) if width == 4 else ("failed", error, 0.0)

    def run(self, jobs, regions):
        ray = self.ray
        settings_ref, regions_ref = ray.put(self.settings), ray.put(regions)
        queue = deque(jobs)
        active: deque = deque()  # [job, plan ref, fetched result or None, range refs]
        while queue or active:
            while queue and len(active) < self.window:
                job = queue.popleft()
                active.append([job, self._plan.remote(job, settings_ref, regions_ref), None,
                               None])
            self._collect_plans(active, settings_ref)
            job, _, result, range_refs = active.popleft()
            status, payload, batches, secs = result
            if status != "ok":
                yield SlideStream(job, error=payload)
                continue
            yield _RayStream(self, job, payload, batches, range_refs, secs)

    def _collect_plans(self, active, settings_ref) -> None:
        """Wait until the first active slide's plan is back; fetch every plan that is back
        meanwhile and send a large slide's tile ranges out at once."""
        ray = self.ray
        while active[0][2] is None:
            waiting = [a[1] for a in active if a[2] is None]
            done, _ = ray.wait(waiting, num_returns=1, timeout=1.0)
            ready = set(done)
            for a in active:
                if a[2] is None and a[1] in ready:
                    a[2] = self.get(a[0], a[1], 4)
                    status, plan, batches, _ = a[2]
                    if status == "ok" and batches is None:
                        grid_ref = ray.put(plan.grid)
                        a[3] = [self._range.remote(a[0], settings_ref, grid_ref, s, e)
                                for s, e in ranges(len(plan.grid.tiles),
                                                   self.settings.tiles_per_task,
                                                   self.settings.batch_size)]

    def close(self) -> None:
        if self._started and self.ray.is_initialized():
            self.ray.shutdown()
