"""training.metrics and training.report: known answers, and report files that agree."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from training.metrics import compute_metrics, ece, summary
from training.report import write_report

CLASSES = ["adenosis", "fibroadenoma", "ductal_carcinoma", "lobular_carcinoma"]


def _onehot(pred, n, conf=0.7):
    p = np.full((len(pred), n), (1 - conf) / (n - 1))
    p[np.arange(len(pred)), pred] = conf
    return p


def test_known_confusion():
    y = np.array([0, 0, 1, 1, 2, 2, 3, 3])
    pred = np.array([0, 1, 1, 1, 2, 3, 3, 3])
    m = compute_metrics(y, _onehot(pred, 4), CLASSES, n_boot=50)
    assert m["accuracy"] == pytest.approx(6 / 8)
    assert m["balanced_accuracy"] == pytest.approx(np.mean([0.5, 1, 0.5, 1]))
    assert m["per_class"]["fibroadenoma"]["precision"] == pytest.approx(2 / 3)
    assert m["per_class"]["fibroadenoma"]["recall"] == 1.0
    assert m["confusion"][0] == [1, 1, 0, 0]
    # roll-up: adenosis/fibroadenoma benign, the carcinomas malignant: all right
    assert m["binary"]["accuracy"] == 1.0 and m["binary"]["malignant_auc"] == 1.0
    lo, hi = m["bootstrap"]["ci95"]["accuracy"]
    assert 0 <= lo <= m["accuracy"] <= hi <= 1
    assert m["bootstrap"]["unit"] == "image"
    assert m["ece"] == pytest.approx(abs(0.75 - 0.7))


def test_ece_perfectly_calibrated_is_zero():
    y = np.array([0, 1] * 50)
    p = np.tile([[1.0, 0.0], [0.0, 1.0]], (50, 1))
    assert ece(y, p) == pytest.approx(0.0)


def test_patient_level_and_patient_bootstrap():
    y = np.array([0, 0, 0, 2, 2, 2])
    pred = np.array([0, 0, 1, 2, 3, 3])
    patients = ["a", "a", "a", "b", "b", "b"]
    m = compute_metrics(y, _onehot(pred, 4), CLASSES, patients, n_boot=30)
    assert m["bootstrap"]["unit"] == "patient"
    pl = m["patient_level"]
    assert pl["n_patients"] == 2 and pl["accuracy"] == 0.5 and pl["binary_accuracy"] == 1.0


def test_report_files_agree_with_metrics_json(tmp_path):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 60)
    probs = rng.dirichlet(np.ones(4), 60)
    probs[np.arange(60), y] += 0.5
    probs /= probs.sum(1, keepdims=True)
    m = compute_metrics(y, probs, CLASSES, n_boot=100)
    history = [{"epoch": 1, "train_loss": 1.2, "train_acc": 0.4, "val_loss": 1.1, "val_acc": 0.5},
               {"epoch": 2, "train_loss": 0.9, "train_acc": 0.6, "val_loss": 1.0, "val_acc": 0.55}]
    write_report(tmp_path, m, "t", {"bundle": "x"}, history)
    for f in ("report.md", "metrics.json", "confusion.png", "curves.png"):
        assert (tmp_path / f).stat().st_size > 0
    assert (tmp_path / "confusion.png").read_bytes()[:4] == b"\x89PNG"
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["metrics"] == json.loads(json.dumps(m))
    assert saved["history"] == history
    md = (tmp_path / "report.md").read_text()
    shown = float(re.search(r"- accuracy: ([0-9.]+)", md).group(1))
    assert shown == pytest.approx(saved["metrics"]["accuracy"], abs=5e-5)
    for c in CLASSES:
        row = re.search(rf"\| {c} \| ([0-9.]+) \| ([0-9.]+) \| ([0-9.]+) \| (\d+) \|", md)
        r = saved["metrics"]["per_class"][c]
        assert [float(row.group(i)) for i in (1, 2, 3)] == pytest.approx(
            [r["precision"], r["recall"], r["f1"]], abs=5e-5)
        assert int(row.group(4)) == r["support"]
    assert summary(m, "test")["split"] == "test"
