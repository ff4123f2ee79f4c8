"""`pvdesk predict --backend ray` on a local Ray instance started here (2 CPUs): the same
cohort outputs as a local run, row for row and byte for byte, with large slides split into
tile ranges, and after a worker process is killed in the middle of a slide."""

from __future__ import annotations

import csv
import faulthandler
import os
from pathlib import Path

import pytest
from cohort_support import make_cohort, tiny_bundle

from pvdesk.cli import main
from pvdesk.cohort.cohort_csv import TIMING

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.slow

ARGS = ["--precision", "fp32", "--heatmap-size", "120", "--batch", "8"]
LIMIT_S = 240  # a hung Ray test ends the session with a traceback instead of hanging CI


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("ray_cohort")
    slides, bundle = make_cohort(root / "slides"), tiny_bundle(root / "bundles")
    faults = root / "faults"
    faults.mkdir()
    home = root / "home"
    mp = pytest.MonkeyPatch()
    mp.setenv("PVDESK_HOME", str(home))
    tests_dir = str(Path(__file__).parent)
    env = {"PYTHONPATH": os.pathsep.join(p for p in (tests_dir, os.environ.get("PYTHONPATH"))
                                         if p),
           "PVDESK_FAULT_DIR": str(faults), "PVDESK_HOME": str(home)}
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR",
             runtime_env={"env_vars": env, "worker_process_setup_hook": "ray_faults.install"})
    local = root / "local"
    faulthandler.dump_traceback_later(LIMIT_S, exit=True)
    try:
        assert main(["predict", str(slides), "--model", str(bundle), "--out", str(local),
                     *ARGS]) == 1  # one slide is broken
        yield slides, bundle, faults, local
    finally:
        faulthandler.cancel_dump_traceback_later()
        ray.shutdown()
        mp.undo()


def cohort_rows(out):
    with open(out / "cohort.csv", newline="") as fh:
        return [{k: v for k, v in r.items() if k not in TIMING} for r in csv.DictReader(fh)]


def assert_same_outputs(a, b):
    rows = cohort_rows(a)
    assert rows == cohort_rows(b)
    assert len(rows) == 6 and sum(r["status"] == "done" for r in rows) == 5
    for r in rows:
        if r["status"] == "done":
            csv_name = "clip_predictions.csv"  # summary.* hold the time taken
            assert (a / r["output"] / csv_name).read_bytes() == \
                (b / r["output"] / csv_name).read_bytes(), r["output"]
            pngs = sorted(p.relative_to(a / r["output"])
                          for p in (a / r["output"]).rglob("*.png"))
            assert pngs == sorted(p.relative_to(b / r["output"])
                                  for p in (b / r["output"]).rglob("*.png"))
    assert not [p for p in os.listdir(b) if p.startswith(".")]


def test_ray_equals_local_with_tile_ranges(setup, tmp_path, capsys):
    slides, bundle, _, local = setup
    out = tmp_path / "ray"
    # 8 tiles per task: every slide of 10-18 tiles is split into two or three ranges
    rc = main(["predict", str(slides), "--model", str(bundle), "--out", str(out), *ARGS,
               "--backend", "ray", "--tiles-per-task", "8", "--resume"])
    assert rc == 1, capsys.readouterr().err
    assert_same_outputs(local, out)


def test_a_worker_killed_mid_slide_is_retried_and_nothing_is_written_twice(setup, tmp_path):
    slides, bundle, faults, local = setup
    (faults / "armed").touch()
    out = tmp_path / "ray"
    rc = main(["predict", str(slides), "--model", str(bundle), "--out", str(out), *ARGS,
               "--backend", "ray"])
    assert rc == 1
    fired = list(faults.glob("fired-*"))
    assert len(fired) == 1 and not (faults / "armed").exists()  # one worker was killed
    pid = int(fired[0].name.split("-")[1])
    assert pid != os.getpid()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # and is gone
    assert_same_outputs(local, out)
    with open(out / "cohort.csv") as fh:
        assert sum(1 for _ in fh) == 1 + 6  # one row per slide, none twice
