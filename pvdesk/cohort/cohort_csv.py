"""``cohort.csv`` and the cohort summary (README.md, "Cohorts").

One row per slide per model, in the cohort's order::

    path, slide_id, output, model, status, tiles, tiles_classified, tiles_unreadable,
    n_<class> for every class of the run, malignant_share, slide_call, rule, seconds, error

``status`` is ``done`` or ``failed`` (``error`` then says why; the counts are empty).
``seconds`` is the time the slide's computation took where it ran. Text cells are
neutralised as in clip_predictions.csv (no spreadsheet formula). The summary counts calls
per model, failed slides and tiles per second, each with its denominator.
"""

from __future__ import annotations

import csv
import json

from pvdesk.export.atomic import atomic_write
from pvdesk.export.csv import neutralise
from pvdesk.review.types import UNTRAINED_TAG

HEAD = ("path", "slide_id", "output", "model", "status", "tiles", "tiles_classified",
        "tiles_unreadable")
TAIL = ("malignant_share", "slide_call", "rule", "seconds", "error")
TIMING = ("seconds",)  # columns that differ between two runs of the same cohort
DONE, FAILED = "done", "failed"


def columns(classes) -> list[str]:
    return [*HEAD, *(f"n_{c}" for c in classes), *TAIL]


def done_rows(job, info: dict, seconds: float) -> list[dict]:
    """The rows of a slide written completely, from its summary dict."""
    rows = []
    for m in info["models"]:
        share = m["malignant_share"]
        rows.append({
            "path": job.path, "slide_id": info.get("slide_id", ""), "output": job.name,
            "model": m["model"] + ("" if m["trained"] else UNTRAINED_TAG),
            "status": DONE, "tiles": info["tiles"], "tiles_classified": m["tiles_classified"],
            "tiles_unreadable": m["tiles_unreadable"],
            **{f"n_{c}": n for c, n in m["tiles_per_class"].items()},
            "malignant_share": "" if share is None else repr(float(share)),
            "slide_call": m["slide_call"] or "", "rule": m["slide_call_rule"],
            "seconds": f"{seconds:.3f}", "error": ""})
    return rows


def failed_rows(job, models: list[str], error: str, seconds: float) -> list[dict]:
    return [{"path": job.path, "slide_id": "", "output": job.name, "model": m,
             "status": FAILED, "seconds": f"{seconds:.3f}", "error": error} for m in models]


def write_cohort_csv(path, classes, rows) -> int:
    cols = columns(classes)
    n = 0
    with atomic_write(path, newline="") as fh:
        w = csv.writer(fh)
        w.writerow(cols)
        for r in rows:
            w.writerow([neutralise(str(v)) if isinstance(v, str) else ("" if v is None else v)
                        for v in (r.get(c, "") for c in cols)])
            n += 1
    return n


def summarise(rows: list[dict], jobs: int, wall_s: float, tiles_computed: int,
              slides_computed: int, slides_resumed: int) -> dict:
    """The cohort summary: slides done and failed (of how many), calls per model, tiles/s
    over the slides computed by this run."""
    failed = sorted({r["path"] for r in rows if r["status"] == FAILED})
    per_model: dict[str, dict] = {}
    for r in rows:
        m = per_model.setdefault(r["model"], {"slides": 0, "calls": {}, "failed": 0})
        m["slides"] += 1
        if r["status"] == FAILED:
            m["failed"] += 1
        else:
            call = r["slide_call"] or "none"
            m["calls"][call] = m["calls"].get(call, 0) + 1
    return {"slides": jobs, "slides_failed": len(failed), "failed": failed,
            "slides_computed": slides_computed, "slides_resumed": slides_resumed,
            "tiles_computed": tiles_computed, "wall_seconds": wall_s,
            "tiles_per_s": tiles_computed / wall_s if wall_s > 0 else 0.0,
            "slides_per_min": 60 * slides_computed / wall_s if wall_s > 0 else 0.0,
            "models": per_model}


def summary_text(s: dict) -> str:
    n = s["slides"]
    lines = [f"slides: {n - s['slides_failed']} of {n} done, {s['slides_failed']} of {n} "
             f"failed ({s['slides_resumed']} of {n} complete from an earlier run)"]
    for m, d in s["models"].items():
        calls = ", ".join(f"{c} {k} of {d['slides']}" for c, k in sorted(d["calls"].items()))
        lines.append(f"model {m}: {calls or 'no call'}"
                     + (f", failed {d['failed']} of {d['slides']}" if d["failed"] else ""))
    lines.append(f"this run: {s['slides_computed']} slide(s) done, {s['tiles_computed']} tiles in "
                 f"{s['wall_seconds']:.1f} s ({s['tiles_per_s']:.1f} tiles/s, "
                 f"{s['slides_per_min']:.1f} slides/min)")
    for p in s["failed"]:
        lines.append(f"failed: {p}")
    return "\n".join(lines) + "\n"


def write_summary(out_dir, s: dict) -> None:
    with atomic_write(out_dir / "cohort_summary.json") as fh:
        json.dump(s, fh, indent=2)
    with atomic_write(out_dir / "cohort_summary.txt") as fh:
        fh.write(summary_text(s))
