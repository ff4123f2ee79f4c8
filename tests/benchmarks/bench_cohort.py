"""A generated cohort through `pvdesk predict`, locally and on a local Ray instance: slides
per minute and tiles per second of each, and whether their outputs are the same.

    .venv/bin/python tests/benchmarks/bench_cohort.py [--slides 12] [--size 2400]
        [--model tiny|demo-resnet50] [--cpus-per-task 1]

Each backend runs as its own `pvdesk predict` process. "cohort" figures are the cohort's
own (cohort_summary.json: from the first slide to the last, model loading in the workers
included); "process" is the whole command (Python, torch and, for Ray, starting the local
instance). Ray on one machine shows the cost of the cluster path; its gain comes with
more nodes. Needs the `cluster` extra.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the cohort factory

from cohort_support import make_cohort, tiny_bundle  # noqa: E402


def run(argv, env) -> float:
    t = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, text=True)
    if done.returncode not in (0, 1):
        sys.exit(f"failed ({done.returncode}): {' '.join(argv)}\n{done.stderr[-2000:]}")
    return time.perf_counter() - t


def rows(out: Path) -> list[dict]:
    with open(out / "cohort.csv", newline="") as fh:
        return [{k: v for k, v in r.items() if k != "seconds"} for r in csv.DictReader(fh)]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--slides", type=int, default=12)
    ap.add_argument("--size", type=int, default=2400, help="slide side in px (0.5 um/px)")
    ap.add_argument("--model", default="tiny", help="tiny (32 px ResNet50) or a bundle name")
    ap.add_argument("--cpus-per-task", type=int, default=1)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench_cohort_") as tmp:
        root = Path(tmp)
        slides = make_cohort(root / "slides", slides=a.slides, size=a.size)
        model = str(tiny_bundle(root / "bundles")) if a.model == "tiny" else a.model
        env = {**os.environ, "PVDESK_HOME": str(root / "home")}
        base = [sys.executable, "-m", "pvdesk", "predict", str(slides), "--model", model,
                "--precision", "fp32", "--heatmap-size", "300"]
        print(f"cohort: {a.slides} slides of {a.size} px + a broken slide + a patch folder; "
              f"model {a.model}; {os.cpu_count()} CPUs")
        results = {}
        for name, extra in (("local", []),
                            ("ray", ["--backend", "ray", "--cpus-per-task",
                                     str(a.cpus_per_task)])):
            out = root / name
            wall = run([*base, "--out", str(out), *extra], env)
            s = json.loads((out / "cohort_summary.json").read_text())
            results[name] = out
            print(f"{name:5s}: {s['slides_computed']} slides, {s['tiles_computed']} tiles; "
                  f"cohort {s['wall_seconds']:.1f} s = {s['slides_per_min']:.1f} slides/min, "
                  f"{s['tiles_per_s']:.1f} tiles/s; process {wall:.1f} s = "
                  f"{60 * s['slides_computed'] / wall:.1f} slides/min, "
                  f"{s['tiles_computed'] / wall:.1f} tiles/s")
        same = rows(results["local"]) == rows(results["ray"]) and all(
            (results["local"] / r["output"] / "clip_predictions.csv").read_bytes()
            == (results["ray"] / r["output"] / "clip_predictions.csv").read_bytes()
            for r in rows(results["local"]) if r["status"] == "done")
        print(f"outputs identical (cohort rows and per-slide CSVs): {same}")


if __name__ == "__main__":
    main()
