"""The window as a pathologist meets it, on a 1366 x 768 and a 1280 x 720 screen.

Each screen is shown at both sizes and saved with QWidget.grab() into PVDESK_SHOTS (default
/tmp/pvdesk-shots) as ``<screen>-<width>x<height>.png``: the main window with the CMU sample
open after a demo-resnet50 run and a review in progress, Analysis ▸ Run model, Training ▸
Retrain (before, during a linear-probe run of the fake training child, after), Training ▸
Model metrics on an 8-class report, and File ▸ Settings. Every visible control must lie
inside its window (and its parent, outside scrolling areas), no text may be cut, the status
bar must show, and every jargon term shown must carry its plain-words tooltip from
pvdesk.ui.glossary.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox
from screen_support import SIZES, client_size, clipped, fit_screen, in_view, save, unexplained
from ui_support import open_window

from pvdesk.paths import sample_slide
from pvdesk.ui.retrain_dialog import PROGRESS, RESULTS
from pvdesk.ui.worker import RunRequest

pytest.importorskip("torchvision")

SHOTS = Path(os.environ.get("PVDESK_SHOTS", "/tmp/pvdesk-shots"))
FAKE = Path(__file__).with_name("fake_training_child.py")


def look(qtbot, top, stem: str, size, problems: list[str]) -> None:
    """Show ``top`` as on a screen of ``size``, save it, and note what a reader would miss."""
    fit_screen(top, size)
    top.show()
    qtbot.waitExposed(top)
    qtbot.wait(150)  # layouts settle, matplotlib draws
    save(top, SHOTS, stem, size)
    cw, ch = client_size(size)
    if top.width() > cw or top.height() > ch:
        problems.append(f"{stem} @ {size}: the window is {top.width()}x{top.height()}, more "
                        f"than the screen's free {cw}x{ch}")
    problems += [f"{stem} @ {size}: {p}" for p in clipped(top) + unexplained(top)]


@pytest.fixture
def env(monkeypatch, pvdesk_home):
    seen: list[str] = []
    monkeypatch.setattr(QMessageBox, "warning", staticmethod(
        lambda parent, title, text, *a, **k: seen.append(text)))
    return seen


@pytest.fixture
def reviewed(qtbot, env):
    """The main window with the CMU sample after a demo-resnet50 run, 6 tiles reviewed."""
    w = open_window(qtbot, sample_slide(), fit=lambda w: fit_screen(w, SIZES[0]))
    states: list[str] = []
    w.runs.finished.connect(states.append)
    assert w.start_run(RunRequest(["demo-resnet50"], device="cpu", tile_um=112.0,
                                  batch_size=8))
    qtbot.waitUntil(lambda: bool(states), timeout=120000)
    assert states == ["done"]
    n = len(w.overlay.info.grid.tiles)
    qtbot.waitUntil(lambda: w.review.session is not None
                    and len(w.review.session.entries) == n, timeout=20000)
    w.review.set_mode(True)
    for key in (Qt.Key.Key_Return, Qt.Key.Key_5, Qt.Key.Key_Return, Qt.Key.Key_6,
                Qt.Key.Key_0, Qt.Key.Key_Return):
        qtbot.keyClick(w.view, key)
    qtbot.waitUntil(lambda: w.review.session.pending == 0, timeout=10000)
    assert w.review.session.counts().reviewed == 6
    return w


def test_main_window_and_its_dialogs(qtbot, reviewed, env):
    from pvdesk.ui.run_dialog import RunDialog
    from pvdesk.ui.settings_dialog import SettingsDialog

    w = reviewed
    problems: list[str] = []
    for size in SIZES:
        look(qtbot, w, "main-review", size, problems)
        w.view.fit()
        qtbot.wait(300)
        save(w, SHOTS, "main-review", size)
        bar = w.statusBar()
        assert bar.isVisible() and w.rect().contains(bar.geometry()), size
        assert not w.review.dock.isHidden()
    for make, stem in ((lambda: RunDialog(w.settings, w), "run-model"),
                       (lambda: SettingsDialog(w.settings, w), "settings")):
        for size in SIZES:
            dlg = make()
            look(qtbot, dlg, stem, size, problems)
            dlg.close()
    assert not problems, "\n".join(problems)
    assert not env


def fake_python(tmp_path: Path, mode: str) -> str:
    exe = tmp_path / f"python-{mode}"
    exe.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{FAKE}" {mode} "$@"\n')
    exe.chmod(0o755)
    return str(exe)


def test_retrain_dialog_before_during_after(qtbot, reviewed, tmp_path, monkeypatch):
    """A linear probe (no epochs) on this project's reviewed tiles, run by the fake child:
    its phases show while it runs, then the 8-class results."""
    w = reviewed
    hold = tmp_path / "go-on"
    monkeypatch.setenv("FAKE_HOLD_FILE", str(hold))
    w.training.python = fake_python(tmp_path, "linear")
    problems: list[str] = []
    dlg = w.training.open_retrain()
    dlg.model.choose("clip-linear", "demo-clip-rn50", device="cpu")
    assert dlg.data.use_store.isChecked()
    for size in SIZES:
        look(qtbot, dlg, "retrain-before", size, problems)
    seen: list[str] = []
    dlg.process.finished.connect(lambda o, m: seen.append(o))
    assert dlg.start()
    qtbot.waitUntil(lambda: dlg.process.state.stage == "train"
                    and dlg.process.state.step >= 3, timeout=20000)
    for size in SIZES:
        look(qtbot, dlg, "retrain-during", size, problems)
    hold.write_text("")
    qtbot.waitUntil(lambda: bool(seen), timeout=20000)
    assert seen == ["done"], dlg.log.toPlainText()
    assert dlg.tabs.currentIndex() == RESULTS
    for size in SIZES:
        look(qtbot, dlg, "retrain-after", size, problems)
        cm = dlg.results.confusion
        assert len(cm.counts) == 8 and in_view(cm, dlg.results), size  # no scrolling
    dlg.tabs.setCurrentIndex(PROGRESS)
    for size in SIZES:
        look(qtbot, dlg, "retrain-after-progress", size, problems)
    assert not problems, "\n".join(problems)


def test_model_metrics_view(qtbot, env, tmp_path):
    report = pytest.importorskip("training.report")
    from fake_training_child import eight_class_metrics
    from test_ui_metrics import make_bundle

    from pvdesk.models import resolve_bundle
    from pvdesk.ui.metrics_view import MetricsDialog

    folder = make_bundle(tmp_path / "b8", "eight-classes", {"accuracy": 0.8})
    history = [{"epoch": e, "train_loss": 1 / e, "val_loss": 1.1 / e,
                "train_acc": 0.5 + e / 40, "val_acc": 0.45 + e / 40} for e in range(1, 16)]
    report.write_report(folder, eight_class_metrics(), "eight-classes: test split",
                        {"kind": "clip-mlp", "backbone": "demo-clip-rn50",
                         "split": "test (320 images)"}, history)
    problems: list[str] = []
    for size in SIZES:
        dlg = MetricsDialog(bundles=[resolve_bundle(folder)])
        qtbot.addWidget(dlg)
        look(qtbot, dlg, "model-metrics", size, problems)
        dlg.close()
    assert not problems, "\n".join(problems)


def test_the_checks_catch_cut_and_clipped_controls(qtbot):
    """The checks above fail where they should: a label cut short, a button pushed out of
    its window, jargon without its tooltip."""
    from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QWidget

    top = QWidget()
    qtbot.addWidget(top)
    lay = QHBoxLayout(top)
    label = QLabel("Most uncertain first (entropy), then the smallest margin")
    lay.addWidget(label)
    button = QPushButton("Start training", top)
    top.show()
    qtbot.waitExposed(top)
    top.setFixedSize(200, 60)
    label.setFixedWidth(120)
    button.move(150, 20)
    qtbot.wait(20)
    problems = clipped(top)
    assert any("QLabel" in p and "text needs" in p for p in problems), problems
    assert any("QPushButton" in p and "outside the window" in p for p in problems), problems
    jargon = unexplained(top)
    assert any("'entropy'" in p for p in jargon) and any("'margin'" in p for p in jargon)
