"""Patch-folder mode: the virtualised thumbnail grid, predictions per image, the same keys
and store, the folder-class-vs-prediction filter, export; a generated BreakHis-style tree
and ../shared/data/breakhis-sample when present; thousands of images stay lazy."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from inference_fakes import FakeClassifier
from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox
from slide_factory import breakhis_tree
from ui_support import DESKTOP, open_slide, show_window

from pvdesk.export.csv import read_predictions_csv
from pvdesk.models.bundle import Bundle
from pvdesk.ui.patch_grid import GridItem, PatchGrid
from pvdesk.ui.worker import RunRequest

SHOTS = Path(os.environ.get("PVDESK_SHOTS", "/tmp/pvdesk-shots"))
BREAKHIS = Path(__file__).resolve().parents[2] / "shared" / "data" / "breakhis-sample"


@pytest.fixture
def window(qtbot, monkeypatch, pvdesk_home):
    monkeypatch.setattr(Bundle, "load", lambda self, *a, **k: FakeClassifier(self.classes))
    seen: list[str] = []
    monkeypatch.setattr(QMessageBox, "warning", staticmethod(
        lambda parent, title, text, *a, **k: seen.append(text)))
    w = show_window(qtbot, DESKTOP)
    w.warnings = seen
    return w


def open_folder(qtbot, w, path) -> None:
    """Open the patch folder ``path`` and wait until its review context is made for it."""
    open_slide(qtbot, w, path, timeout=30000,
               ready=lambda w: w.source is not None and w.source.path == Path(path)
               and w.review.ctx is not None and w.review.ctx.source is w.source
               and w.review.ctx.slide_id is not None)


def run_and_wait(qtbot, w, n: int) -> None:
    states: list[str] = []
    w.runs.finished.connect(states.append)
    assert w.start_run(RunRequest(["demo-resnet50"], device="cpu", batch_size=8))
    qtbot.waitUntil(lambda: bool(states), timeout=60000)
    assert states == ["done"]
    qtbot.waitUntil(lambda: w.review.session is not None
                    and len(w.review.session.entries) == n, timeout=20000)


def test_patch_folder_grid_review_disagree_filter_export(qtbot, window, tmp_path):
    w = window
    root = breakhis_tree(tmp_path / "patches", per_class=2)
    open_folder(qtbot, w, root)
    grid = w.review.grid
    assert w.stack.currentWidget() is grid
    assert grid.patches.rowCount() == 16
    assert all(it.folder_class and it.rec is None for it in grid.patches.items)
    qtbot.waitUntil(lambda: grid.loader.loaded >= 1, timeout=10000)  # thumbnails arrive

    run_and_wait(qtbot, w, 16)
    s = w.review.session
    items = grid.patches.items
    assert len(items) == 16 and all(it.rec is not None for it in items)
    assert [it.rec.tile_id for it in items] == [e.tile_id for e in s.entries]

    w.review.set_mode(True)
    first = s.current
    assert grid.currentIndex().row() == 0
    qtbot.keyClick(grid, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: s.pending == 0, timeout=10000)
    assert s.store.decision(first.tile_id).status == "confirmed"
    assert grid.currentIndex().row() == 1 and s.current.tile_id == items[1].rec.tile_id
    qtbot.keyClick(grid, Qt.Key.Key_2)
    qtbot.waitUntil(lambda: s.pending == 0, timeout=10000)
    assert s.store.decision(items[1].rec.tile_id).label == "fibroadenoma"
    qtbot.keyClick(grid, Qt.Key.Key_Right)
    assert grid.currentIndex().row() == 3

    # select several images in the grid, confirm them together
    sm = grid.selectionModel()
    sm.clearSelection()
    for r in (5, 6, 7):
        sm.select(grid.patches.index(r), sm.SelectionFlag.Select)
    assert len(s.selection) == 3
    qtbot.keyClick(grid, Qt.Key.Key_Space)
    qtbot.waitUntil(lambda: s.pending == 0, timeout=10000)
    assert all(s.store.decision(items[r].rec.tile_id).status == "confirmed" for r in (5, 6, 7))

    # folder class != prediction
    w.review.dock.disagree.setChecked(True)
    shown = grid.patches.items
    assert shown and all(it.rec.folder_class != it.rec.predicted for it in shown)
    expected = sum(1 for e in s.all.values() if e.folder_class != e.predicted)
    assert len(shown) == expected < 16 or expected == 16
    SHOTS.mkdir(parents=True, exist_ok=True)
    qtbot.wait(300)
    w.grab().save(str(SHOTS / "patch_mode_disagree.png"))
    w.review.dock.disagree.setChecked(False)
    qtbot.waitUntil(lambda: grid.loader.loaded >= 16, timeout=15000)
    w.grab().save(str(SHOTS / "patch_mode.png"))

    out = tmp_path / "patches.csv"
    w.review.exporter.quiet = True
    with qtbot.waitSignal(w.review.exporter.finished, timeout=20000) as sig:
        w.review.export_to(out)
    assert sig.args[0]["rows"] == 16 and sig.args[0]["reviewed"] == 5
    rows = read_predictions_csv(out).rows
    assert all(r["tile_x"] is None for r in rows)
    by_name = {Path(r["source"]).name: r for r in rows}
    assert by_name[Path(items[1].path).name]["review_label"] == "fibroadenoma"
    assert not w.warnings

    # reopening the folder brings the predictions and decisions back into the grid
    other = breakhis_tree(tmp_path / "other", per_class=1)
    open_folder(qtbot, w, other)  # something else first
    assert w.review.grid.patches.rowCount() == 8 and w.review.session is None
    open_folder(qtbot, w, root)
    qtbot.waitUntil(lambda: w.review.session is not None, timeout=30000)
    again = {Path(it.path).name: it.rec for it in grid.patches.items}
    assert len(again) == 16 and all(rec is not None for rec in again.values())
    assert again[Path(items[1].path).name].label == "fibroadenoma"
    assert sum(rec.status != "unreviewed" for rec in again.values()) == 5


@pytest.mark.skipif(not BREAKHIS.exists(), reason="../shared/data/breakhis-sample absent")
def test_breakhis_sample_in_patch_mode(qtbot, window):
    w = window
    open_folder(qtbot, w, BREAKHIS)
    n = w.review.grid.patches.rowCount()
    assert n >= 8
    run_and_wait(qtbot, w, n)
    s = w.review.session
    assert {e.folder_class for e in s.entries} >= {"ductal_carcinoma", "fibroadenoma"}
    w.review.set_mode(True)
    qtbot.keyClick(w.review.grid, Qt.Key.Key_5)
    assert s.counts().reviewed == 1 and not w.warnings
    grid = w.review.grid
    qtbot.waitUntil(lambda: grid.loader.loaded >= min(n, 8), timeout=20000)
    SHOTS.mkdir(parents=True, exist_ok=True)
    w.grab().save(str(SHOTS / "patch_mode_breakhis.png"))


def test_thousands_of_images_load_lazily(qtbot, tmp_path):
    folder = tmp_path / "many"
    folder.mkdir()
    paths = []
    for i in range(2000):
        p = folder / f"p{i:04d}.png"
        Image.new("RGB", (24, 24), (i % 255, 90, 160)).save(p)
        paths.append(str(p))
    grid = PatchGrid()
    qtbot.addWidget(grid)
    grid.resize(900, 600)
    grid.show()
    qtbot.waitExposed(grid)
    grid.patches.set_items([GridItem(p) for p in paths])
    qtbot.waitUntil(lambda: grid.loader.loaded > 0, timeout=10000)
    qtbot.wait(300)
    assert grid.loader.loaded < 120  # only what is on screen, not 2000
    grid.scrollToBottom()
    last = paths[-1]
    qtbot.waitUntil(lambda: last in grid.loader._cache, timeout=10000)
    assert grid.loader.loaded < 400
    grid.shutdown()
