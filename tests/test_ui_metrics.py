"""Training ▸ Model metrics: a bundle with full evaluation reports (metrics.json, confusion
and curves PNGs written by the training package's report writer), one with summary numbers
in its manifest only, and one without results."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from pvdesk.models import resolve_bundle
from pvdesk.models.registry import builtin_models_dir
from pvdesk.ui.metrics_view import MetricsDialog

SHOTS = Path(os.environ.get("PVDESK_SHOTS", "/tmp/pvdesk-shots"))
CLASSES = ["adenosis", "fibroadenoma", "ductal_carcinoma", "lobular_carcinoma"]


def make_bundle(folder: Path, name: str, prov_metrics: dict | None = None) -> Path:
    shutil.copytree(builtin_models_dir() / "demo-clip-rn50", folder)
    m = json.loads((folder / "manifest.json").read_text())
    m["name"] = name
    m["provenance"] = {"data": "test", "metrics": prov_metrics or {}}
    (folder / "manifest.json").write_text(json.dumps(m))
    return folder


def full_metrics() -> dict:
    cm = [[5, 1, 0, 0], [0, 6, 0, 0], [0, 0, 4, 2], [0, 0, 1, 5]]
    per = {}
    for i, c in enumerate(CLASSES):
        tp, pred, true = cm[i][i], sum(r[i] for r in cm), sum(cm[i])
        p, r = tp / pred, tp / true
        per[c] = {"precision": p, "recall": r, "f1": 2 * p * r / (p + r), "support": true}
    mean = lambda k: sum(v[k] for v in per.values()) / len(per)  # noqa: E731
    return {"n": 24, "classes": CLASSES, "accuracy": 20 / 24, "balanced_accuracy": 0.83,
            "macro_precision": mean("precision"), "macro_recall": mean("recall"),
            "macro_f1": mean("f1"), "weighted_precision": 0.84, "weighted_recall": 0.83,
            "weighted_f1": 0.83, "per_class": per, "confusion": cm, "ece": 0.05,
            "bootstrap": {"n": 0, "unit": "image", "ci95": {}},
            "binary": {"accuracy": 1.0, "balanced_accuracy": 1.0, "macro_f1": 1.0},
            "patient_level": {"n_patients": 6, "accuracy": 0.83}}


def test_metrics_view_shows_a_full_report(qtbot, tmp_path):
    report = pytest.importorskip("training.report")
    folder = make_bundle(tmp_path / "b1", "with-report", {"accuracy": 0.83})
    history = [{"epoch": e, "train_loss": 1 / e, "val_loss": 1.1 / e, "train_acc": 0.5 + e / 20,
                "val_acc": 0.45 + e / 20} for e in range(1, 9)]
    report.write_report(folder, full_metrics(), "with-report: test split",
                        {"kind": "clip-mlp", "split": "test (24 images)"}, history)
    ev = folder / "evaluations" / "val-1234"
    report.write_report(ev, full_metrics(), "with-report: val split", {"split": "val"})
    dlg = MetricsDialog(bundles=[resolve_bundle(builtin_models_dir() / "demo-clip-rn50"),
                                 resolve_bundle(folder)])
    qtbot.addWidget(dlg)
    dlg.show()
    assert dlg.bundle_combo.currentData().name == "with-report"  # the first with results
    assert dlg.report_combo.count() == 2 and dlg.report_combo.isEnabled()
    panel = dlg.panel
    assert panel.report.title == "with-report: test split"
    assert panel.table.rowCount() == len(CLASSES) + 2
    assert panel.table.item(0, 0).text() == "Adenosis"
    assert panel.table.item(len(CLASSES), 0).text() == "macro average"
    assert panel.table.item(0, 2).text() == f"{5 / 6:.4f}"  # adenosis recall
    assert not panel.confusion.isHidden() and not panel.curves.isHidden()
    assert panel.confusion.counts == full_metrics()["confusion"]  # drawn from the numbers
    assert panel.confusion_image.isHidden()
    assert "Of 6 true fibroadenoma, 6 (100%) were called correctly." == \
        panel.confusion.cell_text(1, 1)
    SHOTS.mkdir(parents=True, exist_ok=True)
    qtbot.wait(50)
    dlg.grab().save(str(SHOTS / "metrics-view-4class.png"))
    dlg.report_combo.setCurrentIndex(1)
    assert panel.report.title == "with-report: val split" and panel.curves.isHidden()


def test_summary_only_and_no_results(qtbot, tmp_path):
    summ = make_bundle(tmp_path / "b2", "summary-only",
                       {"accuracy": 0.7, "balanced_accuracy": 0.65, "split": "test", "n": 10})
    dlg = MetricsDialog(bundles=[], select=summ)
    qtbot.addWidget(dlg)
    panel = dlg.panel
    assert panel.report is not None and not panel.report.full
    assert "summary" in panel.report.title and panel.table.isHidden()
    assert "Only summary numbers" in panel.context.text()
    dlg.show_bundle(builtin_models_dir() / "demo-clip-rn50")
    assert panel.report is None and not panel.empty.isHidden()
    assert "carries no evaluation results" in panel.empty.text()


def eight_class_report(tmp_path, name="eight"):
    report = pytest.importorskip("training.report")
    from fake_training_child import eight_class_metrics

    folder = make_bundle(tmp_path / name, name)
    report.write_report(folder, eight_class_metrics(), f"{name}: test split",
                        {"kind": "clip-linear", "split": "test (320 images)"})
    return folder


@pytest.mark.parametrize("size", [(1366, 768), (1280, 720)])
def test_eight_class_confusion_matrix_reads_at_laptop_sizes(qtbot, tmp_path, size):
    """At least 320 px of cells for 8 classes, every class name whole, a count in every
    cell, and the whole matrix in view beside the numbers without scrolling."""
    from screen_support import clipped, fit_screen, unexplained

    folder = eight_class_report(tmp_path)
    dlg = MetricsDialog(bundles=[resolve_bundle(folder)])
    qtbot.addWidget(dlg)
    fit_screen(dlg, size)
    dlg.show()
    qtbot.waitExposed(dlg)
    qtbot.wait(50)
    cm = dlg.panel.confusion
    assert cm.isVisible() and len(cm.classes) == 8
    left, top, cell, total_w, _ = cm._layout()
    assert 8 * cell >= 320 and cm.width() >= left + 8 * cell + total_w
    fm = cm.fontMetrics()
    assert all(fm.horizontalAdvance(c) <= left for c in cm.classes)  # names are not cut
    assert fm.height() * 2 <= cell  # a count fits its cell with room to spare
    assert "Ductal carcinoma" in cm.classes and all(len(r) == 8 for r in cm.counts)
    view = dlg.panel.viewport()
    at = cm.mapTo(view, cm.rect().topLeft())
    assert view.rect().contains(at) and view.rect().contains(at + cm.rect().bottomRight())
    assert dlg.panel.top.direction().name == "LeftToRight"  # beside the numbers
    assert not clipped(dlg) and not unexplained(dlg)
    from PySide6.QtCore import QEvent, QPoint
    from PySide6.QtGui import QHelpEvent
    from PySide6.QtWidgets import QApplication, QToolTip

    x, y = int(left + 5.5 * cell), int(top + 4.5 * cell)  # true ductal, called lobular
    QApplication.sendEvent(cm, QHelpEvent(QEvent.Type.ToolTip, QPoint(x, y),
                                          cm.mapToGlobal(QPoint(x, y))))
    assert QToolTip.text() == "Of 40 true ductal carcinoma, 6 (15%) were called lobular " \
        "carcinoma."
    SHOTS.mkdir(parents=True, exist_ok=True)
    dlg.grab().save(str(SHOTS / f"metrics-view-8class-{size[0]}x{size[1]}.png"))


def test_numbers_carry_intervals_and_plain_words(qtbot, tmp_path):
    from pvdesk.ui.glossary import GLOSSARY

    folder = eight_class_report(tmp_path)
    dlg = MetricsDialog(bundles=[resolve_bundle(folder)])
    qtbot.addWidget(dlg)
    panel = dlg.panel
    texts = {}
    for i in range(panel.summary.count()):
        w = panel.summary.itemAt(i).widget()
        texts[w.text()] = w
    assert "95% interval" in texts and "0.740–0.860" in texts  # accuracy's bootstrap CI
    assert GLOSSARY["macro"].plain in texts["Macro F1"].toolTip()
    assert GLOSSARY["calibration"].plain in texts["Expected calibration error"].toolTip()
    heads = [panel.table.horizontalHeaderItem(c) for c in range(panel.table.columnCount())]
    assert GLOSSARY["recall"].plain in heads[2].toolTip()
    assert GLOSSARY["support"].plain in heads[4].toolTip()


def test_a_report_without_the_numbers_shows_its_image(qtbot, tmp_path):
    folder = eight_class_report(tmp_path)
    data = json.loads((folder / "metrics.json").read_text())
    del data["metrics"]["confusion"]
    (folder / "metrics.json").write_text(json.dumps(data))
    dlg = MetricsDialog(bundles=[resolve_bundle(folder)])
    qtbot.addWidget(dlg)
    panel = dlg.panel
    assert panel.confusion.isHidden() and not panel.confusion_image.isHidden()
    assert not panel.confusion_image.pixmap().isNull()


def test_figures_show_k_of_n_and_why_there_is_no_interval(qtbot, tmp_path):
    """A report from 3 patients has no bootstrap interval: the dialog says why, and every
    accuracy carries its denominator (images, patients)."""
    report = pytest.importorskip("training.report")
    metrics = dict(full_metrics(), correct=20)
    metrics["binary"] = dict(metrics["binary"], accuracy=22 / 24, correct=22, n=24)
    metrics["patient_level"] = {"n_patients": 3, "accuracy": 2 / 3, "correct": 2}
    metrics["bootstrap"] = {"n": 1000, "unit": "patient", "groups": 3, "ci95": {},
                            "no_interval": "no interval: 3 patients are too few to resample "
                            "(at least 5 needed); the figures could be far off"}
    folder = make_bundle(tmp_path / "b3", "three-patients")
    report.write_report(folder, metrics, "three-patients: test split", {"split": "test"})
    dlg = MetricsDialog(bundles=[resolve_bundle(folder)])
    qtbot.addWidget(dlg)
    texts = [dlg.panel.summary.itemAt(i).widget().text()
             for i in range(dlg.panel.summary.count())]
    assert f"{20 / 24:.4f}  (20 of 24 images)" in texts
    assert f"{22 / 24:.4f}  (22 of 24 images)" in texts
    assert f"{2 / 3:.4f}  (2 of 3 patients)" in texts
    assert "95% interval" not in texts
    assert ("No interval: 3 patients are too few to resample (at least 5 needed); the "
            "figures could be far off.") in texts
    dlg.resize(900, 700)
    dlg.show()
    qtbot.wait(50)
    SHOTS.mkdir(parents=True, exist_ok=True)
    dlg.grab().save(str(SHOTS / "metrics-no-interval.png"))
