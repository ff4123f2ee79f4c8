"""ResNet50 fine-tuning end to end on the demo ResNet50 (random weights), at a small input
size through the same code path: interruption and resume, JSON progress, the bundle in
pvdesk, `evaluate` agreeing with training; and training from a review export."""

from __future__ import annotations

import json

import numpy as np
import pytest
from training_fixtures import colour_dataset, colour_slide, review_rows

from pvdesk.export.csv import write_rows_csv
from pvdesk.models import resolve_bundle
from pvdesk.taxonomy import CLASS_NAMES
from training.cli import main
from training.data import read_manifest
from training.data.source import SampleReader


@pytest.fixture(autouse=True)
def home(monkeypatch, pvdesk_home):
    import torch

    monkeypatch.setenv("PVDESK_OFFLINE", "1")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a small shared CPU: one thread is several times faster
    yield
    torch.set_num_threads(threads)


def _events(text):
    return [json.loads(line) for line in text.splitlines()]


FAST = ["--input-size", "32", "--batch-size", "16", "--workers", "0", "--threads", "1", "--bootstrap", "50",
        "--progress", "json", "--lr", "1e-3"]


def test_resnet50_interrupted_then_resumed(tmp_path, capsys):
    data = colour_dataset(tmp_path / "data", classes=2, patients=3, per_patient=4, size=32)
    out = tmp_path / "rn"
    argv = ["train", "--data", str(data), "--head", "resnet50", "--backbone", "random",
            "--out", str(out), "--epochs", "2", *FAST]
    assert main([*argv, "--stop-after", "1"]) == 3
    first = _events(capsys.readouterr().out)
    assert first[-1]["event"] == "stopped" and first[-1]["resumable"] and first[-1]["epoch"] == 1
    assert [e["epoch"] for e in first if e["event"] == "epoch"] == [1]
    steps = [e for e in first if e["event"] == "step"]
    assert steps and {"loss", "eta_s", "epoch", "step", "steps"} <= set(steps[-1])
    state = json.loads((out / ".checkpoint" / "state.json").read_text())
    assert state["epoch"] == 1 and (out / ".checkpoint" / state["last_file"]).is_file()
    assert not (out / "manifest.json").exists()  # not a bundle until complete

    assert main([*argv, "--lr", "5e-4"]) == 2  # other options: refused, not mixed
    cap = capsys.readouterr()
    assert "different configuration" in cap.err and "--fresh" in cap.err
    assert _events(cap.out)[-1]["event"] == "error"

    assert main(argv) == 0  # the same command resumes
    second = _events(capsys.readouterr().out)
    assert any(e["event"] == "note" and "resuming after epoch 1" in e["message"] for e in second)
    assert [e["epoch"] for e in second if e["event"] == "epoch"] == [2]
    done = second[-1]
    assert done["event"] == "done"
    assert not (out / ".checkpoint").exists()
    history = json.loads((out / "metrics.json").read_text())["history"]
    assert [h["epoch"] for h in history] == [1, 2]
    first_epoch = next(e for e in first if e["event"] == "epoch")
    assert history[0]["train_loss"] == pytest.approx(first_epoch["train_loss"])
    assert (out / "curves.png").is_file()

    bundle = resolve_bundle(out)
    assert bundle.kind == "resnet50" and bundle.input_size == 32 and bundle.trained
    assert bundle.provenance["best_epoch"] in (1, 2)
    test = read_manifest(out / "split.csv").split("test")
    reader = SampleReader()
    import torch

    batch = torch.from_numpy(np.stack([reader.array(s, 32) for s in test]))
    probs = bundle.load("cpu", "fp32").predict(batch).probs
    acc = np.mean([bundle.classes[p] == s.label
                   for p, s in zip(probs.argmax(1).tolist(), test, strict=True)])
    assert acc == pytest.approx(done["metrics"]["accuracy"])

    assert main(["evaluate", "--model", str(out), "--data", str(data), "--workers", "1",
                 "--bootstrap", "50", "--progress", "json", "--threads", "1"]) == 0
    ev = _events(capsys.readouterr().out)[-1]
    assert (out / "evaluations").is_dir() and list((out / "evaluations").glob("*/curves.png"))
    assert ev["metrics"]["accuracy"] == pytest.approx(done["metrics"]["accuracy"])
    assert ev["metrics"]["macro_f1"] == pytest.approx(done["metrics"]["macro_f1"])


def test_train_from_review_export(tmp_path, capsys):
    slides = []
    for i in range(3):  # three slides: the split keeps each slide's tiles together
        slide, tiles = colour_slide(tmp_path / f"slide{i}.tif", classes=2, per_class=4, seed=i)
        slides.append(review_rows(slide, tiles))
    csv_path = tmp_path / "clip_predictions.csv"
    write_rows_csv(csv_path, list(CLASS_NAMES), [r for rows in slides for r in rows])
    out = tmp_path / "from-review"
    rc = main(["train", "--data", str(csv_path), "--head", "resnet50", "--backbone",
               "demo-resnet50", "--out", str(out), "--epochs", "2", *FAST, "--batch-size", "8"])
    cap = capsys.readouterr()
    assert rc == 0, cap.err
    events = _events(cap.out)
    assert not [e for e in events if e["event"] == "warning" and "too few" in e["message"]]
    assert events[-1]["metrics"]["accuracy"] >= 0.75  # red vs green tiles: chance is 0.5
    bundle = resolve_bundle(out)
    assert bundle.classes == ["adenosis", "fibroadenoma"]
    assert bundle.tile_um == pytest.approx(32.0)  # 64 px tiles at 0.5 um/px
    assert bundle.provenance["data_kind"] == "review-csv"
    split = read_manifest(out / "split.csv")
    assert all(s.region is not None for s in split.samples)
    by_slide = {}
    for s in split.samples:
        by_slide.setdefault(s.path, set()).add(s.split)
    assert all(len(v) == 1 for v in by_slide.values())  # no slide in two splits

    # the bundle runs in `pvdesk predict` (tiles at the bundle's field of view: 64 px here)
    from pvdesk.cli import main as pvdesk_main
    from pvdesk.export.csv import read_predictions_csv

    pred = tmp_path / "pred"
    assert pvdesk_main(["predict", str(tmp_path / "slide0.tif"), "--model", str(out), "--out",
                        str(pred), "--heatmap-size", "64", "--workers", "1"]) == 0
    capsys.readouterr()
    table = read_predictions_csv(pred / "slide0" / "clip_predictions.csv")
    assert table.classes == ["adenosis", "fibroadenoma"] and len(table.rows) >= 4
    assert {r["tile_w"] for r in table.rows} == {64}


def test_watch_stdin_stops_when_the_parent_pipe_closes(tmp_path):
    """The GUI passes --watch-stdin: if it dies, its pipe closes and training stops cleanly
    (resumable), so no orphan keeps the CPU busy."""
    import os
    import subprocess
    import sys
    import time

    data = colour_dataset(tmp_path / "data", classes=2, patients=3, per_patient=4, size=32)
    env = dict(os.environ, PVDESK_HOME=str(tmp_path / "home"), PVDESK_OFFLINE="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "training", "train", "--data", str(data), "--head", "resnet50",
         "--backbone", "random", "--out", str(tmp_path / "rn"), "--epochs", "200",
         "--watch-stdin", *FAST], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, env=env)
    try:
        for line in proc.stdout:  # wait until training is under way
            if json.loads(line)["event"] == "step":
                break
        proc.stdin.close()
        t0 = time.monotonic()
        rest = proc.stdout.read().decode()
        assert proc.wait(timeout=60) == 130
        assert time.monotonic() - t0 < 60
        assert _events(rest)[-1]["event"] == "stopped"
    finally:
        if proc.poll() is None:
            proc.kill()
