"""kill -9 of a local cohort run at random moments (seeded), then `--resume`: the resumed
cohort equals an uninterrupted one (cohort.csv rows, per-slide CSV bytes), nothing is left
half-written, and the review project holds each slide's run once."""

from __future__ import annotations

import csv
import os
import random
import signal
import subprocess
import sys
import time

import pytest
from cohort_support import make_cohort, tiny_bundle

from pvdesk.cli import main
from pvdesk.cohort.cohort_csv import TIMING
from pvdesk.review.store import ReviewStore

pytestmark = pytest.mark.slow
ARGS = ["--precision", "fp32", "--heatmap-size", "120", "--batch", "8"]
TRIALS = 3


def command(slides, bundle, out, store):
    return [sys.executable, "-m", "pvdesk", "predict", str(slides), "--model", str(bundle),
            "--out", str(out), "--store", str(store), "--resume", *ARGS]


def start(argv, home):
    env = {**os.environ, "PVDESK_HOME": str(home)}
    return subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def wait_for(path, proc, limit=120.0) -> None:
    end = time.monotonic() + limit
    while not path.exists():
        assert proc.poll() is None or path.exists(), "the run ended before writing cohort.csv"
        assert time.monotonic() < end, "no cohort.csv in time"
        time.sleep(0.02)


def rows(out):
    with open(out / "cohort.csv", newline="") as fh:
        return [{k: v for k, v in r.items() if k not in TIMING} for r in csv.DictReader(fh)]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    root = tmp_path_factory.mktemp("resume")
    slides, bundle = make_cohort(root / "slides"), tiny_bundle(root / "bundles")
    out, home = root / "ref", root / "home"
    proc = start(command(slides, bundle, out, root / "ref.pvdb"), home)
    wait_for(out / "cohort.csv", proc)
    began = time.monotonic()
    assert proc.wait(timeout=120) == 1  # one broken slide
    return slides, bundle, out, home, time.monotonic() - began


def test_resume_after_kill_9_equals_an_uninterrupted_run(reference, tmp_path, monkeypatch):
    slides, bundle, ref, home, work_s = reference
    monkeypatch.setenv("PVDESK_HOME", str(home))
    rng = random.Random(16)
    states = []
    for trial in range(TRIALS):
        out, store = tmp_path / f"out{trial}", tmp_path / f"s{trial}.pvdb"
        proc = start(command(slides, bundle, out, store), home)
        wait_for(out / "cohort.csv", proc)  # models loaded, the cohort has begun
        time.sleep(rng.uniform(0.0, work_s))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        states.append(sum((p / "cohort.json").exists() for p in out.iterdir() if p.is_dir()))
        assert main(["predict", str(slides), "--model", str(bundle), "--out", str(out),
                     "--store", str(store), "--resume", *ARGS]) == 1
        assert rows(out) == rows(ref), f"trial {trial}"
        for r in rows(ref):
            if r["status"] == "done":
                a = (ref / r["output"] / "clip_predictions.csv").read_bytes()
                assert (out / r["output"] / "clip_predictions.csv").read_bytes() == a
        assert not [p for p in os.listdir(out) if p.startswith(".")]
        with ReviewStore(store, readonly=True) as s:
            runs = s.runs()
            keys = [r.settings["cohort_key"] for r in runs]
            assert len(runs) == 5 and len(set(keys)) == 5  # each slide's run once
    print(f"slides complete when killed: {states} (of 5)")
