"""Review mode on a small synthetic slide: a run recorded into the slide's store, keyboard
review (confirm, correct, next/previous, undo, redo, bulk by Shift-click and rubber band),
the exported CSV, reopening restores decisions and the heatmap, screenshots.

The model is the engine's FakeClassifier (``Bundle.load`` patched): the subject here is the
review path (worker -> recorder -> store -> queue -> keys -> store -> CSV), not a network.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from inference_fakes import FakeClassifier
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QMessageBox
from slide_factory import paint, write_pyramid
from ui_support import open_window, run_and_wait

from pvdesk.export.csv import read_predictions_csv
from pvdesk.models.bundle import Bundle
from pvdesk.paths import sample_slide
from pvdesk.ui.worker import RunRequest

SHOTS = Path(os.environ.get("PVDESK_SHOTS", "/tmp/pvdesk-shots"))


def acked(qtbot, session, timeout=10000):
    """Wait until the review service has stored (and acknowledged) every action."""
    qtbot.waitUntil(lambda: session.pending == 0, timeout=timeout)


@pytest.fixture
def env(tmp_path, monkeypatch, pvdesk_home):
    monkeypatch.setattr(Bundle, "load", lambda self, *a, **k: FakeClassifier(self.classes))
    seen: list[str] = []
    monkeypatch.setattr(QMessageBox, "warning", staticmethod(
        lambda parent, title, text, *a, **k: seen.append(text)))
    # mpp 0.5, tiles of 112 um = 224 px: 4 x 3 tiles on the tissue rectangle
    img = paint(1100, 800, [(60, 60, 1000, 740)], seed=3)
    slide = write_pyramid(tmp_path / "slide.tif", img, levels=3, mpp=0.5)
    return slide, seen


def screen_centre(w, rec) -> QPoint:
    sx, sy = w.view.vp.to_screen(rec.tile_x + rec.tile_w / 2, rec.tile_y + rec.tile_h / 2)
    return QPoint(round(sx), round(sy))


def test_keyboard_review_lands_in_store_and_csv(qtbot, env, tmp_path):
    slide, warnings = env
    w = open_window(qtbot, slide)
    run_and_wait(qtbot, w)
    r, s = w.review, w.review.session
    store = s.store
    assert Path(store.path).parent == tmp_path / "home" / "stores"
    total = s.counts().total
    assert total >= 8 and len(s.entries) == total

    # arrow keys pan while review mode is off
    centre = (w.view.vp.cx, w.view.vp.cy)
    qtbot.keyClick(w.view, Qt.Key.Key_Right)
    assert (w.view.vp.cx, w.view.vp.cy) != centre
    w.activateWindow()
    qtbot.keyClick(w.view, Qt.Key.Key_R)  # Review ▸ Review mode
    assert r.mode and r.dock.mode.isChecked()
    first = s.current
    assert first is s.entries[0] or first.tile_id == s.entries[0].tile_id
    assert r.layer.current.tile_id == first.tile_id

    qtbot.keyClick(w.view, Qt.Key.Key_Return)  # confirm
    acked(qtbot, s)
    assert store.decision(first.tile_id).status == "confirmed"
    second = s.current
    assert second.tile_id == s.entries[1].tile_id  # advanced to the next one
    label = "ductal_carcinoma" if second.predicted != "ductal_carcinoma" else "adenosis"
    qtbot.keyClick(w.view, "5" if label == "ductal_carcinoma" else "1")
    acked(qtbot, s)
    assert store.decision(second.tile_id).label == label
    assert s.current.tile_id == s.entries[2].tile_id
    qtbot.keyClick(w.view, Qt.Key.Key_K)
    assert s.current.tile_id == second.tile_id
    qtbot.keyClick(w.view, Qt.Key.Key_J)
    qtbot.keyClick(w.view, Qt.Key.Key_Down)
    assert s.current.tile_id == s.entries[3].tile_id
    qtbot.keyClick(w.view, Qt.Key.Key_Up)
    third = s.current
    qtbot.keyClick(w.view, Qt.Key.Key_U)
    acked(qtbot, s)
    assert store.decision(third.tile_id).label == "uncertain"

    # undo and redo (Edit menu / Ctrl+Z, Ctrl+Shift+Z)
    ctrl = Qt.KeyboardModifier.ControlModifier
    qtbot.keyClick(w.view, Qt.Key.Key_Z, ctrl)
    acked(qtbot, s)
    assert store.decision(third.tile_id).status == "unreviewed"
    assert s.current.tile_id == third.tile_id
    qtbot.keyClick(w.view, Qt.Key.Key_Z, ctrl | Qt.KeyboardModifier.ShiftModifier)
    acked(qtbot, s)
    assert store.decision(third.tile_id).label == "uncertain"

    # choosing an entry in the queue centres the view on its tile and highlights it
    r.dock.table.selectRow(9)
    target = s.entries[9]
    assert s.current.tile_id == target.tile_id and r.layer.current.tile_id == target.tile_id
    assert abs(w.view.vp.cx - (target.tile_x + target.tile_w / 2)) < 1
    assert abs(w.view.vp.cy - (target.tile_y + target.tile_h / 2)) < 1

    # bulk: Shift-click two tiles, label them all non-tissue with 0
    a, b = s.entries[5], s.entries[6]
    for rec in (a, b):
        qtbot.mouseClick(w.view, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.ShiftModifier,
                         screen_centre(w, rec))
    assert s.selection == {a.tile_id, b.tile_id}
    qtbot.keyClick(w.view, Qt.Key.Key_0)
    acked(qtbot, s)
    assert store.decision(a.tile_id).label == store.decision(b.tile_id).label == "non_tissue"
    assert not s.selection

    acked(qtbot, s)
    # rubber band with Ctrl over the whole slide selects every tile; Esc clears
    w.view.fit()
    p0 = QPoint(*(round(v) for v in w.view.vp.to_screen(0, 0)))
    p1 = QPoint(*(round(v) for v in w.view.vp.to_screen(1100, 800)))
    qtbot.mousePress(w.view, Qt.MouseButton.LeftButton, ctrl, p0)
    qtbot.mouseMove(w.view, QPoint(p0.x() + 40, p0.y() + 40))
    qtbot.mouseMove(w.view, p1)
    qtbot.mouseRelease(w.view, Qt.MouseButton.LeftButton, ctrl, p1)
    assert len(s.selection) == total
    w.review.layer.current = None
    qtbot.keyClick(w.view, Qt.Key.Key_Escape)
    assert not s.selection

    counts = s.counts()
    assert counts.reviewed == 5 and counts.total == total
    assert r.store_label.text().startswith(f"5/{total} reviewed")
    assert len(r.layer.reviewed) == 5
    SHOTS.mkdir(parents=True, exist_ok=True)
    s.goto_tile(second.tile_id)
    r.sync.refresh(center=True)
    qtbot.wait(300)
    w.grab().save(str(SHOTS / "review_mode.png"))
    w.view.fit()
    qtbot.wait(200)
    w.grab().save(str(SHOTS / "review_mode_fit.png"))

    # File > Export predictions: CSV and GeoJSON, then the summary
    out = tmp_path / "out" / "clip_predictions.csv"
    out.parent.mkdir()
    r.exporter.quiet = True
    with qtbot.waitSignal(r.exporter.finished, timeout=20000) as sig:
        assert r.export_to(out, out.with_suffix(".geojson"))
    info = sig.args[0]
    assert (info["rows"], info["reviewed"], info["corrected"]) == (
        total, 5, sum(store.decision(t).status == "corrected" for t in s.all))
    table = read_predictions_csv(out)
    assert len(table.rows) == total
    by_xy = {(row["tile_x"], row["tile_y"]): row for row in table.rows}
    for tid, rec in s.all.items():
        d = store.decision(tid)
        row = by_xy[(rec.tile_x, rec.tile_y)]
        assert row["review_status"] == d.status
        assert (row["review_label"] or None) == d.label
    assert by_xy[(a.tile_x, a.tile_y)]["review_label"] == "non_tissue"
    assert out.with_suffix(".geojson").stat().st_size > 100
    assert not warnings


def test_reopening_restores_decisions_and_heatmap(qtbot, env):
    slide, warnings = env
    w = open_window(qtbot, slide)
    run_and_wait(qtbot, w)
    s = w.review.session
    w.review.set_mode(True)
    picked = s.current.tile_id
    qtbot.keyClick(w.view, Qt.Key.Key_7)
    w.review.dock.diagnosis.setCurrentIndex(w.review.dock.diagnosis.findData("malignant"))
    w.review.dock.comment.setPlainText("two foci, re-cut advised")
    w.review.dock.flush_diagnosis()
    path = s.store.path
    w.close()

    w2 = open_window(qtbot, slide)
    qtbot.waitUntil(lambda: w2.review.session is not None, timeout=20000)
    s2 = w2.review.session
    assert s2.store.path == path
    assert s2.all[picked].label == "mucinous_carcinoma"
    assert [r.tile_id for r in w2.review.layer.reviewed] == [picked]
    assert w2.review.dock.diagnosis.currentData() == "malignant"
    assert "re-cut" in w2.review.dock.comment.toPlainText()
    hm = w2.overlay.heatmaps.get("demo-resnet50")
    assert w2.overlay.flush()  # folded in off the GUI thread
    assert hm is not None and hm.tiles_added == s2.counts().total
    qtbot.waitUntil(lambda: w2.overlay.layer.image is not None, timeout=5000)
    assert not warnings


def test_review_keys_ignored_in_text_fields_and_without_predictions(qtbot, env):
    slide, _ = env
    w = open_window(qtbot, slide)
    qtbot.waitUntil(lambda: w.review.ctx.slide_id is not None, timeout=20000)
    w.review.set_mode(True)
    assert w.review.session is None
    qtbot.keyClick(w.view, Qt.Key.Key_Return)  # nothing to review: no crash, a message
    w.review.dock.comment.setFocus()
    qtbot.keyClick(w.review.dock.comment, Qt.Key.Key_5)
    assert w.review.dock.comment.toPlainText() == "5"


def test_review_on_the_cmu_sample_screenshot(qtbot, env):
    w = open_window(qtbot, sample_slide())
    run_and_wait(qtbot, w)
    s = w.review.session
    w.review.set_mode(True)
    for key in (Qt.Key.Key_Return, Qt.Key.Key_5, Qt.Key.Key_Return, Qt.Key.Key_6, Qt.Key.Key_0,
                Qt.Key.Key_Return, Qt.Key.Key_U, Qt.Key.Key_Return):
        qtbot.keyClick(w.view, key)
    assert s.counts().reviewed == 8
    w.review.dock.diagnosis.setCurrentIndex(w.review.dock.diagnosis.findData("malignant"))
    w.view.fit()
    w.view.zoom_in()
    qtbot.wait(600)
    SHOTS.mkdir(parents=True, exist_ok=True)
    w.grab().save(str(SHOTS / "review_mode_cmu.png"))


def test_close_mid_run_keeps_the_store_consistent(qtbot, env, monkeypatch):
    slide, warnings = env
    monkeypatch.setattr(Bundle, "load",
                        lambda self, *a, **k: FakeClassifier(self.classes, delay=0.3))
    w = open_window(qtbot, slide)
    assert w.start_run(RunRequest(["demo-resnet50"], device="cpu", tile_um=112.0, batch_size=2))
    qtbot.waitUntil(lambda: w.review.session is not None and bool(w.review.session.all),
                    timeout=30000)
    path = w.review.session.store.path
    w.close()
    assert not w.runs.running
    from pvdesk.review import ReviewStore

    with ReviewStore(path, create=False) as store:
        assert store.integrity_check() == "ok"
        assert 0 < store.counts().total
    assert not warnings


def test_review_project_file_holds_the_run(qtbot, env, tmp_path):
    slide, warnings = env
    w = open_window(qtbot, slide)
    project = tmp_path / "projects" / "study.pvdb"
    project.parent.mkdir()
    w.review.use_project(project)  # File ▸ Open or new review project…
    assert not w.review.acts["per_slide"].isChecked()
    qtbot.waitUntil(lambda: w.review.store is not None, timeout=20000)
    run_and_wait(qtbot, w)
    assert w.review.session.store.path == project
    assert w.training.store() is w.review.store  # Training ▸ Retrain sees this store
    assert not (tmp_path / "home" / "stores").exists()
    w.review.acts["per_slide"].trigger()  # back to one store per slide
    assert w.review.project is None
    assert not warnings


def test_reopening_selects_the_run_last_reviewed_and_names_the_store_after_the_file(qtbot, env):
    slide, _ = env
    w = open_window(qtbot, slide)
    run_and_wait(qtbot, w)  # run 1
    s = w.review.session
    assert Path(s.store.path).name.startswith("slide-")  # the file's name, then its id
    first_run = s.run_id
    w.activateWindow()
    qtbot.keyClick(w.view, Qt.Key.Key_R)
    qtbot.keyClick(w.view, Qt.Key.Key_1)
    acked(qtbot, s)
    run_and_wait(qtbot, w)  # run 2: newer, never reviewed
    assert w.review.session.run_id != first_run
    w.close()
    w2 = open_window(qtbot, slide)
    qtbot.waitUntil(lambda: w2.review.session is not None, timeout=20000)
    assert w2.review.session.run_id == first_run  # where the reviewer left off
    qtbot.waitUntil(lambda: w2.review.dock.run.currentData() == first_run, timeout=10000)
    assert w2.review.dock.run.count() == 2
