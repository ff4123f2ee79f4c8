"""Training ▸ Retrain: the real training package in a child process, end to end; a failing
run; cancel and closing the window leave no orphan; the process wrapper on a fake child.

The end-to-end run trains a clip-mlp head on the offline demo CLIP backbone over a tiny
colour-coded dataset, then loads the bundle into the window and runs it on a small slide.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from PySide6.QtWidgets import QMessageBox
from slide_factory import paint, write_pyramid
from training_fixtures import colour_dataset
from ui_support import show_window

from pvdesk.models import find_bundles, resolve_bundle
from pvdesk.ui.retrain_dialog import PROGRESS, RESULTS, RetrainDialog
from pvdesk.ui.retrain_process import RetrainProcess

pytest.importorskip("open_clip")

SHOTS = Path(os.environ.get("PVDESK_SHOTS", "/tmp/pvdesk-shots"))
FAKE = Path(__file__).with_name("fake_training_child.py")
FAST = ["--bootstrap", "20", "--workers", "1"]


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.fixture
def home(monkeypatch, pvdesk_home):
    monkeypatch.setattr(QMessageBox, "warning", staticmethod(lambda *a, **k: None))
    return pvdesk_home


@pytest.fixture
def dataset(tmp_path):
    return colour_dataset(tmp_path / "data", classes=3, patients=4, per_patient=1, size=32)


def outcomes_of(dlg) -> list[tuple[str, str]]:
    seen: list[tuple[str, str]] = []
    dlg.process.finished.connect(lambda o, m: seen.append((o, m)))
    return seen


def choose(dlg, data, head="clip-linear", epochs=0) -> None:
    dlg.data.set_folder(data)
    dlg.model.choose(head, "demo-clip-rn50", epochs=epochs, device="cpu")


@pytest.fixture
def window(qtbot, home):
    w = show_window(qtbot, None)
    w.training.extra_args = FAST
    return w


def test_retrain_end_to_end_then_load_and_run(qtbot, window, home, dataset, tmp_path):
    w = window
    slide = write_pyramid(tmp_path / "s.tiff", paint(672, 448, [(16, 16, 656, 432)]), levels=2)
    w.open_path(slide)
    qtbot.waitUntil(lambda: w.source is not None, timeout=20000)
    dlg = w.training.open_retrain()
    assert not dlg.data.use_store.isEnabled()  # no review project: folder data by default
    choose(dlg, dataset, "clip-mlp", epochs=3)
    seen = outcomes_of(dlg)
    SHOTS.mkdir(parents=True, exist_ok=True)
    dlg.process.event.connect(lambda ev: ev.get("epoch") == 2 and ev["event"] == "epoch"
                              and dlg.grab().save(str(SHOTS / "retrain-running.png")))
    assert dlg.start()
    assert not dlg.start_btn.isEnabled() and dlg.cancel_btn.isEnabled()
    qtbot.waitUntil(lambda: bool(seen), timeout=240000)
    outcome, folder = seen[0]
    assert outcome == "done", dlg.log.toPlainText()
    assert Path(folder).parent == home / "models"  # found by Run model without a setting
    st = dlg.process.state
    assert [h["epoch"] for h in st.history] == [1, 2, 3]
    assert len(dlg.curves.loss_ax.lines) == 2 and len(dlg.curves.acc_ax.lines) == 2
    assert "epoch 3/3" in dlg.log.toPlainText()
    rep = dlg.results.report
    assert rep is not None and rep.full and rep.metrics["n"] > 0
    assert dlg.results.table.rowCount() == 3 + 2  # classes, macro and weighted averages
    assert dlg.tabs.currentIndex() == RESULTS
    assert len(dlg.results.confusion.counts) == 3 and not dlg.results.confusion.isHidden()
    assert [p.state for p in dlg.tracker.phases] == ["done"] * 3
    assert not dlg.curves.isHidden() and not dlg.curves.message  # curves, no placeholder
    SHOTS.mkdir(parents=True, exist_ok=True)
    dlg.grab().save(str(SHOTS / "retrain-results.png"))
    dlg.tabs.setCurrentIndex(PROGRESS)
    qtbot.wait(50)
    dlg.grab().save(str(SHOTS / "retrain-curves.png"))

    # the bundle loads, appears in Run model, and runs on the open slide from the dialog
    bundle = resolve_bundle(folder)
    # a head on the random demo backbone stands on random weights: untrained by lineage
    assert bundle.kind == "clip-mlp" and not bundle.trained
    assert bundle.name in [b.name for b in find_bundles(w.settings.model_folders)]
    states: list[str] = []
    w.runs.finished.connect(states.append)
    assert dlg.load_btn.isEnabled()
    dlg.load_btn.click()
    qtbot.waitUntil(lambda: bool(states), timeout=180000)
    assert states == ["done"]
    assert [b.name for b in w.overlay.info.bundles] == [bundle.name]
    assert w.overlay.tiles_done > 0 and w.overlay.layer.image is not None

    # the metrics view on the new bundle
    m = w.training.open_metrics(folder)
    qtbot.addWidget(m)
    assert m.panel.report is not None and m.panel.report.curves_png is not None
    assert not m.panel.curves.pixmap().isNull()
    m.grab().save(str(SHOTS / "metrics-view.png"))


def test_failed_training_shows_the_error_and_the_dialog_stays_usable(qtbot, home, tmp_path):
    dlg = RetrainDialog(extra_args=FAST)
    qtbot.addWidget(dlg)
    empty = tmp_path / "empty"
    empty.mkdir()
    choose(dlg, empty)
    seen = outcomes_of(dlg)
    assert dlg.start()
    qtbot.waitUntil(lambda: bool(seen), timeout=60000)
    assert seen[0][0] == "error"
    assert "no labelled images" in dlg.error.text() and not dlg.error.isHidden()
    assert dlg.start_btn.isEnabled() and not dlg.cancel_btn.isEnabled()
    assert not dlg.load_btn.isEnabled()
    dlg.data.folder.setText("")
    assert not dlg.start() and "Choose the data" in dlg.error.text()


def test_cancel_mid_training_leaves_no_orphan(qtbot, home, dataset):
    dlg = RetrainDialog(extra_args=FAST)
    qtbot.addWidget(dlg)
    choose(dlg, dataset)
    seen = outcomes_of(dlg)
    assert dlg.start()
    qtbot.waitUntil(lambda: bool(dlg.process.state.info), timeout=60000)  # it is training
    pid = dlg.process.pid
    assert pid and not gone(pid)
    dlg.cancel_btn.click()
    qtbot.waitUntil(lambda: bool(seen), timeout=20000)
    assert seen[0][0] == "cancelled" and gone(pid)
    assert dlg.start_btn.isEnabled() and "Cancelled" in dlg.status.text()


def test_closing_the_window_during_training_stops_it(qtbot, window, dataset):
    dlg = window.training.open_retrain()
    choose(dlg, dataset)
    assert dlg.start()
    qtbot.waitUntil(lambda: dlg.process.pid is not None and dlg.process.running,
                    timeout=20000)
    pid = dlg.process.pid
    window.close()
    assert gone(pid)


def run_fake(qtbot, mode: str, grace_ms: int = 3000):
    p = RetrainProcess(grace_ms=grace_ms)
    events, logs, done = [], [], []
    p.event.connect(events.append)
    p.log.connect(logs.append)
    p.finished.connect(lambda o, m: done.append((o, m)))
    p.start([sys.executable, str(FAKE), mode])
    return p, events, logs, done


def test_process_parses_lines_that_arrive_in_pieces(qtbot):
    p, events, logs, done = run_fake(qtbot, "ok")
    qtbot.waitUntil(lambda: bool(done), timeout=20000)
    assert done[0][0] == "done"
    assert [e["epoch"] for e in events if e["event"] == "epoch"] == [1, 2, 3]
    assert "not json: a stray line" in logs
    assert p.state.curves()["val_acc"][1] is None


@pytest.mark.parametrize("mode, text", [("error", "no labelled images"),
                                        ("crash", "ValueError: boom")])
def test_process_reports_failures(qtbot, mode, text):
    p, _, _, done = run_fake(qtbot, mode)
    qtbot.waitUntil(lambda: bool(done), timeout=20000)
    assert done[0][0] == "error" and text in done[0][1]


def test_a_child_that_ignores_terminate_is_killed(qtbot):
    p, events, _, done = run_fake(qtbot, "stubborn", grace_ms=300)
    qtbot.waitUntil(lambda: bool(events), timeout=20000)
    pid = p.pid
    p.cancel()
    qtbot.waitUntil(lambda: bool(done), timeout=10000)
    assert done[0][0] == "cancelled" and gone(pid)


def test_a_missing_interpreter_is_an_error(qtbot):
    p = RetrainProcess()
    done = []
    p.finished.connect(lambda o, m: done.append((o, m)))
    p.start(["/nonexistent/python", "-m", "training"])
    qtbot.waitUntil(lambda: bool(done), timeout=10000)
    assert done[0][0] == "error" and "could not start" in done[0][1]


def fake_python(tmp_path, mode: str) -> str:
    """An executable that stands in for python: runs the fake child with the arguments."""
    exe = tmp_path / f"python-{mode}"
    exe.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{FAKE}" {mode} "$@"\n')
    exe.chmod(0o755)
    return str(exe)


def test_escape_keeps_training_and_closing_the_dialog_stops_it(qtbot, home, tmp_path):
    from PySide6.QtCore import Qt

    dlg = RetrainDialog(python=fake_python(tmp_path, "slow"))
    qtbot.addWidget(dlg)
    dlg.show()
    dlg.data.set_folder(tmp_path)
    assert dlg.start()
    qtbot.waitUntil(lambda: bool(dlg.process.state.history), timeout=20000)
    pid = dlg.process.pid
    assert dlg.close_btn.text() == "Stop and close"
    qtbot.keyClick(dlg, Qt.Key.Key_Escape)
    assert dlg.running and dlg.isVisible()
    dlg.close_btn.click()
    assert gone(pid) and not dlg.isVisible()


def test_reviewed_tiles_of_the_open_store_are_exported_and_passed(qtbot, window, tmp_path,
                                                                   monkeypatch):
    """Data 'this project's reviewed tiles': the window's store is exported to a CSV under
    the user data folder and passed as --data (a fake child stands in for training)."""
    from review_support import fake_source, grid_tiles, record_fake_run

    from pvdesk.export.csv import read_predictions_csv
    from pvdesk.review.store import ReviewStore

    slide = write_pyramid(tmp_path / "s.tiff", paint(256, 128, [(0, 0, 256, 128)]), levels=1)
    store = ReviewStore(tmp_path / "p.pvdb", reviewer="dr test")
    run = record_fake_run(store, fake_source(slide), grid_tiles(4, 2, 64), side=64)
    tiles = [t.tile_id for t in store.tiles(run_id=run)]
    store.correct(tiles[0], "ductal_carcinoma", run)
    store.confirm(tiles[1], run)
    monkeypatch.setattr("pvdesk.ui.training_menu._window_store", lambda w: store)
    args_file = tmp_path / "args.json"
    monkeypatch.setenv("FAKE_ARGS_FILE", str(args_file))
    window.training.python = fake_python(tmp_path, "ok")
    dlg = window.training.open_retrain()
    assert dlg.data.use_store.isChecked() and "2 of 8 tiles" in dlg.data.store_note.text()
    assert dlg.data.by_image.isChecked()  # one slide: split by image, or nothing to test on
    seen = outcomes_of(dlg)
    assert dlg.start()
    qtbot.waitUntil(lambda: bool(seen), timeout=20000)
    assert seen[0][0] == "done"
    import json

    args = json.loads(args_file.read_text())
    data = Path(args[args.index("--data") + 1])
    assert args[args.index("--split-unit") + 1] == "image"
    assert data.parent.name == "training-data" and data.is_file()
    rows = read_predictions_csv(data).rows
    assert sorted(r["review_status"] for r in rows) == ["confirmed", "corrected"] + \
        ["unreviewed"] * 6
    assert "without a held-out evaluation" in dlg.results.empty.text()
    assert dlg.load_btn.isEnabled()
    dlg.load_btn.click()  # no slide is open: the dialog says so, nothing starts
    assert "Open a slide first" in dlg.error.text() and not window.runs.running
    store.close()


def test_a_linear_probe_shows_its_phases_where_curves_do_not_apply(qtbot, home, tmp_path,
                                                                   monkeypatch):
    """clip-linear (logistic regression) has no epochs: the Progress tab lists its phases,
    each with what it does, in place of the curves; the fake child holds in training."""
    hold = tmp_path / "go-on"
    monkeypatch.setenv("FAKE_HOLD_FILE", str(hold))
    dlg = RetrainDialog(python=fake_python(tmp_path, "linear"))
    qtbot.addWidget(dlg)
    dlg.show()
    dlg.data.set_folder(tmp_path)
    dlg.model.choose("clip-linear", "demo-clip-rn50", device="cpu")
    # before: the Choose tab says what will happen; there will be no curves
    assert [p.key for p in dlg.preview.tracker.phases] == ["embeddings", "train", "report"]
    assert "linear probe" in dlg.head_note.text().lower()
    assert not dlg.model.epochs.isEnabled() and not dlg.model.lr.isEnabled()
    assert dlg.curves.isHidden() and "no epochs" in dlg.phases_title.text()
    seen = outcomes_of(dlg)
    assert dlg.start()
    assert dlg.tabs.currentIndex() == PROGRESS
    qtbot.waitUntil(lambda: dlg.process.state.stage == "train"
                    and dlg.process.state.step >= 3, timeout=20000)
    assert [(p.key, p.state) for p in dlg.tracker.phases] == [
        ("embeddings", "done"), ("train", "running"), ("report", "pending")]
    rows = dlg.phases.rows
    assert rows[0][2].text() == "40 tiles, done"
    assert rows[1][1].text() == "Training the linear probe"
    assert rows[1][2].text() == "setting 3 of 7, about 4 s left"
    assert dlg.status.text() == "Training the linear probe: setting 3 of 7, about 4 s left"
    assert all(r[3].isVisible() and r[3].text() for r in rows)  # what each phase does
    assert dlg.curves.isHidden() and dlg.phases.isVisible()
    assert not dlg.curves.loss_ax.texts and not dlg.curves.acc_ax.texts
    assert dlg.warnings.isVisible() and "marked UNTRAINED" in dlg.warnings.text()  # not only
    assert "marked UNTRAINED" in dlg.log.toPlainText()  # in the log
    SHOTS.mkdir(parents=True, exist_ok=True)
    dlg.grab().save(str(SHOTS / "retrain-linear-phases.png"))
    hold.write_text("")
    qtbot.waitUntil(lambda: bool(seen), timeout=20000)
    assert seen[0][0] == "done", dlg.log.toPlainText()
    assert [p.state for p in dlg.tracker.phases] == ["done"] * 3
    assert rows[1][2].text() == "7 settings tried, done"
    assert dlg.tabs.currentIndex() == RESULTS
    cm = dlg.results.confusion
    assert len(cm.counts) == 8 and not cm.isHidden() and cm.counts[0][0] == 31
    assert "held-out" in dlg.status.text() and "320" in dlg.status.text()


def test_cancelling_a_linear_probe_marks_the_phase_stopped(qtbot, home, tmp_path,
                                                           monkeypatch):
    monkeypatch.setenv("FAKE_HOLD_FILE", str(tmp_path / "never"))
    dlg = RetrainDialog(python=fake_python(tmp_path, "linear"))
    qtbot.addWidget(dlg)
    dlg.data.set_folder(tmp_path)
    dlg.model.choose("clip-linear", "demo-clip-rn50", device="cpu")
    seen = outcomes_of(dlg)
    assert dlg.start()
    qtbot.waitUntil(lambda: dlg.process.state.step >= 3
                    and dlg.process.state.stage == "train", timeout=20000)
    dlg.cancel_btn.click()
    qtbot.waitUntil(lambda: bool(seen), timeout=20000)
    assert seen[0][0] == "cancelled"
    assert [p.state for p in dlg.tracker.phases] == ["done", "stopped", "pending"]
    assert dlg.phases.rows[1][0].text() == "■"


def test_curves_message_never_sits_on_an_axis(qtbot, home, tmp_path):
    """Before the first epoch the canvas says so in the figure's title line, clear of both
    plots (it used to be drawn inside the loss plot, over its axis)."""
    dlg = RetrainDialog(python=fake_python(tmp_path, "ok"))
    qtbot.addWidget(dlg)
    dlg.resize(1180, 648)
    dlg.show()
    dlg.data.set_folder(tmp_path)
    dlg.model.choose("clip-mlp", "demo-clip-rn50", device="cpu")
    dlg.tabs.setCurrentIndex(PROGRESS)
    qtbot.wait(50)
    c = dlg.curves
    assert c.isVisible() and not dlg.phases.rows[0][3].isVisible()  # compact phases
    assert c.message and not c.loss_ax.texts and not c.acc_ax.texts
    c.draw()
    r = c.figure.canvas.get_renderer()
    title = c.figure._suptitle.get_window_extent(r)
    for ax in (c.loss_ax, c.acc_ax):
        assert not title.overlaps(ax.get_tightbbox(r)), ax
    seen = outcomes_of(dlg)
    assert dlg.start()
    qtbot.waitUntil(lambda: bool(seen), timeout=20000)
    assert seen[0][0] == "done"
    assert c.message == "" and len(c.loss_ax.lines) == 2
    assert dlg.phases.rows[1][2].text() == "epoch 3 of 3, done"
    dlg.tabs.setCurrentIndex(PROGRESS)
    qtbot.wait(100)
    SHOTS.mkdir(parents=True, exist_ok=True)
    dlg.grab().save(str(SHOTS / "retrain-epochs-fake.png"))


def test_phase_tracker_folds_events():
    from pvdesk.ui.retrain_phases import PhaseTracker

    t = PhaseTracker("resnet50")
    assert [p.key for p in t.phases] == ["train", "evaluate", "report"] and t.has_epochs
    t.apply({"event": "stage", "stage": "train", "total": 10, "t": 1.0})
    t.apply({"event": "epoch", "epoch": 2, "epochs": 35, "eta_s": 125.0, "t": 9.0})
    assert t.detail(t.current) == "epoch 2 of 35, about 2 min 05 s left"
    t.apply({"event": "stage", "stage": "calibrate", "total": None, "t": 20.0})  # unforeseen
    assert [p.key for p in t.phases] == ["train", "evaluate", "calibrate", "report"]
    assert [p.state for p in t.phases] == ["done", "skipped", "running", "pending"]
    assert t.detail(t.phases[0]) == "epoch 2 of 35, done in 19 s"
    t.apply({"event": "error", "message": "boom", "t": 21.0})
    assert [p.state for p in t.phases] == ["done", "skipped", "failed", "pending"]
    lin = PhaseTracker("clip-linear")
    assert not lin.has_epochs and lin.title(lin.phases[1]) == "Training the linear probe"
