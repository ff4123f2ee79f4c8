"""The cohort driver: runs a backend over a cohort's slides and alone writes every output.

    result = run_cohort(jobs, models, settings, backend, out_dir, store=None, resume=True)

Per slide, in the cohort's order: its outputs (pvdesk.predict.writer) go into
``.partial-<name>/`` with the resume marker last, its store runs are one transaction, then
the folder is swapped in (pvdesk.cohort.state); ``cohort.csv`` and the cohort summary are
rewritten (atomically) from all rows at most every FLUSH_EVERY_S seconds and when the run
ends, so an interrupted run leaves whole files and no duplicate row (``--resume`` rebuilds
them from the slides' markers), and a cohort of many thousands of slides does not spend its
time rewriting them after every slide. A slide that fails gets ``failed`` rows with its error and never stops the
cohort; a failure to write the outputs (full disk) does.
"""

from __future__ import annotations

import contextlib
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from pvdesk.cohort import cohort_csv, state
from pvdesk.cohort.work import SlideFailed, SlideJob
from pvdesk.predict import SlideWriter, union_classes
from pvdesk.progress import TerminalProgress

FLUSH_EVERY_S = 2.0


@dataclass
class CohortResult:
    rows: list[dict] = field(default_factory=list)
    summary: dict = field(default_factory=dict)
    infos: list[dict] = field(default_factory=list)  # summary.json of each slide computed now
    failed: list[str] = field(default_factory=list)  # error lines of failed slides


def store_regions(store) -> dict:
    """{slide id: active regions} of every slide in ``store`` that has regions."""
    from pvdesk.regions import TABLE, regions_for

    with store._lock:
        ids = [r[0] for r in store.con.execute(
            f"SELECT DISTINCT slide_id FROM {TABLE} WHERE active=1 ORDER BY slide_id")]
    return {sid: regions_for(store, sid) for sid in ids}


def store_keys(store) -> set[str]:
    """The cohort keys the store's runs were recorded under."""
    return {str(r.settings.get("cohort_key")) for r in store.runs()
            if isinstance(r.settings, dict) and r.settings.get("cohort_key")}


class _Keys:
    def __init__(self, bundles, settings, regions):
        self.models = state.models_key(bundles)
        self.grid = settings.grid.as_dict()
        self.regions = regions

    def __call__(self, slide_id: str) -> str:
        return state.slide_key(slide_id, self.models, self.grid, self.regions.get(slide_id))


def _complete(job: SlideJob, out_dir: Path, keys: _Keys, in_store) -> dict | None:
    """The marker of a slide whose outputs are complete for this run's key, else None."""
    marker = state.read_marker(out_dir / job.name)
    if not marker or marker.get("path") != job.path:
        return None
    stamp = state.file_stamp(job.path) if Path(job.path).exists() else None
    if stamp is not None:
        if marker.get("stamp") != stamp:
            return None
        slide_id = marker.get("slide_id")
    else:  # a folder (patches, DICOM) is identified again from its content
        from pvdesk.slides import open_source

        if not Path(job.path).is_dir():
            return None
        try:
            with open_source(job.path) as src:
                slide_id = src.slide_id
        except Exception:  # unreadable now: not complete, the run records why
            return None
    key = keys(str(slide_id))
    if marker.get("key") != key or (in_store is not None and key not in in_store):
        return None
    return marker


def run_cohort(jobs: list[SlideJob], models: list, settings, backend, out_dir: Path, *,
               bundles, store=None, regions: dict | None = None, resume: bool = False,
               report=None) -> CohortResult:
    """Run ``backend`` over ``jobs`` and write everything under ``out_dir``. ``report(kind,
    payload)`` hears of each slide ("done", summary dict; "failed", error line; "resumed",
    job)."""
    out_dir = Path(out_dir)
    state.clean_leftovers(out_dir)
    regions = regions or {}
    keys = _Keys(bundles, settings, regions)
    in_store = store_keys(store) if store is not None else None
    classes = union_classes(models)
    labels = [m.csv_model for m in models]
    rows_of: dict[int, list[dict]] = {}
    res = CohortResult()
    todo = []
    for job in jobs:
        marker = _complete(job, out_dir, keys, in_store) if resume else None
        if marker is not None:
            rows_of[job.index] = marker["rows"]
            if report:
                report("resumed", job)
        else:
            todo.append(job)
    resumed = len(jobs) - len(todo)
    started = time.perf_counter()
    tiles_done = 0
    report_sum = {"n": 0, "done": 0}

    def flush() -> None:
        res.rows = [r for j in jobs for r in rows_of.get(j.index, [])]
        cohort_csv.write_cohort_csv(out_dir / "cohort.csv", classes, res.rows)
        wall = time.perf_counter() - started
        res.summary = cohort_csv.summarise(res.rows, len(jobs), wall, tiles_done,
                                           report_sum["done"], resumed)
        cohort_csv.write_summary(out_dir, res.summary)

    flush()
    last_flush = time.perf_counter()
    with TerminalProgress("slides", "slide") as slides_bar, \
            contextlib.ExitStack() as at_exit:
        at_exit.callback(flush)  # the last rows, also when the run stops on an error
        slides_bar(resumed, len(jobs))
        for stream in backend.run(todo, regions):
            job = stream.job
            if stream.error is None:
                try:
                    info = _write_slide(stream, models, settings, backend, out_dir, store,
                                        keys, in_store)
                except SlideFailed as exc:
                    stream.error = str(exc)
                else:
                    rows_of[job.index] = info.pop("_rows")
                    tiles_done += info["tiles"]
                    report_sum["done"] += 1
                    res.infos.append(info)
                    if report:
                        report("done", info)
            if stream.error is not None:
                shutil.rmtree(state.partial_folder(out_dir, job.name), ignore_errors=True)
                rows_of[job.index] = cohort_csv.failed_rows(job, labels, stream.error,
                                                            stream.seconds)
                res.failed.append(stream.error)
                if report:
                    report("failed", stream.error)
            report_sum["n"] += 1
            if time.perf_counter() - last_flush >= FLUSH_EVERY_S:
                flush()
                last_flush = time.perf_counter()
            slides_bar(resumed + report_sum["n"], len(jobs))
    return res


def _write_slide(stream, models, settings, backend, out_dir: Path, store, keys, in_store):
    job, plan = stream.job, stream.plan
    tmp = state.partial_folder(out_dir, job.name)
    if tmp.exists():
        shutil.rmtree(tmp)
    key = keys(plan.meta.slide_id)
    record = store is not None and key not in in_store
    with contextlib.ExitStack() as stack:
        if record:
            stack.enter_context(store.transaction())  # the slide's runs whole, or none
        writer = SlideWriter(tmp, plan, models, store=store if record else None,
                             device=backend.device, batch_size=settings.batch_size,
                             embeddings=settings.embeddings and record,
                             heatmap_size=settings.grid.heatmap_size,
                             store_settings={"cohort_key": key})
        with TerminalProgress(Path(job.path).name, "tile") as bar:
            total = len(plan.grid.tiles)

            def counted(batches):
                done = 0
                for b in batches:
                    done += len(b.tiles)
                    bar(done, total)
                    yield b

            info = writer.write(counted(stream.batches()), elapsed=lambda: stream.seconds)
        info["slide_id"] = plan.meta.slide_id
        info["out"] = str(out_dir / job.name)
        rows = cohort_csv.done_rows(job, info, stream.seconds)
        state.write_marker(tmp, {"key": key, "slide_id": plan.meta.slide_id, "path": job.path,
                                 "stamp": state.file_stamp(job.path), "rows": rows})
    state.swap_in(out_dir, job.name)
    if record:
        in_store.add(key)
    info["_rows"] = rows
    return info
