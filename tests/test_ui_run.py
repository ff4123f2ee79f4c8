"""Running a model from the window: overlay fills in, cancel, close mid-run, screenshots.

demo-resnet50 is the real torchvision architecture with fixed-seed random weights (no
download). Runs use a coarse tile scale where the test allows, to keep CPU time small.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QPoint
from PySide6.QtWidgets import QMessageBox
from ui_support import open_window, slide_shown

from pvdesk.heatmap import ARGMAX, ROLLUP
from pvdesk.paths import sample_slide
from pvdesk.ui.worker import RunRequest

pytest.importorskip("torchvision")

SHOTS = Path(os.environ.get("PVDESK_SHOTS", "/tmp/pvdesk-shots"))


@pytest.fixture
def errors(monkeypatch):
    seen: list[str] = []
    monkeypatch.setattr(QMessageBox, "warning", staticmethod(
        lambda parent, title, text, *a, **k: seen.append(text)))
    return seen


@pytest.fixture
def window(qtbot, pvdesk_home, errors):
    return open_window(qtbot, sample_slide(), (1280, 800), ready=slide_shown)


def finished_states(w) -> list[str]:
    states: list[str] = []
    w.runs.finished.connect(states.append)
    return states


def test_run_to_completion_fills_tissue_tiles_only(qtbot, window, errors):
    w = window
    states = finished_states(w)
    batches = []
    w.runs.batch.connect(batches.append)
    assert w.start_run(RunRequest(["demo-resnet50"], device="cpu", tile_um=224.0,
                                  batch_size=4))
    assert w.actions_["cancel_run"].isEnabled()
    qtbot.waitUntil(lambda: bool(states), timeout=120000)
    assert states == ["done"] and not errors
    assert len(batches) >= 2  # the overlay filled in batch by batch

    hm = w.overlay.heatmaps["demo-resnet50"]
    grid = w.overlay.info.grid
    assert hm.tiles_added == len(grid.tiles) > 0
    # values exactly on the cells of tissue tiles, none elsewhere
    expected = np.zeros(hm.shape, dtype=bool)
    for t in grid.tiles:
        r, c = hm.cell_of(t.x, t.y)
        expected[r:r + hm.span, c:c + hm.span] = True
    expected &= hm.tissue
    np.testing.assert_array_equal(hm.valid, expected)
    p = hm.probabilities()
    assert np.isfinite(p[:, expected]).all() and np.isnan(p[:, ~expected]).all()
    np.testing.assert_allclose(np.nansum(p, axis=0)[expected], 1.0, atol=1e-4)

    # the drawn overlay is transparent off tissue
    img = w.overlay.layer.image
    assert img is not None and not img.isNull()
    alpha = np.array([[img.pixelColor(x, y).alpha() for x in range(0, img.width(), 8)]
                      for y in range(0, img.height(), 8)])
    mask = hm.mask.mask
    ys = (np.arange(0, img.height(), 8) * mask.shape[0] / img.height()).astype(int)
    xs = (np.arange(0, img.width(), 8) * mask.shape[1] / img.width()).astype(int)
    assert (alpha[~mask[np.ix_(ys, xs)]] == 0).all()
    assert (alpha > 0).any()

    # untrained banner, legend, hover shows the tile's probabilities
    assert w.banner.isVisible() and "UNTRAINED" in w.banner.text()
    t = grid.tiles[len(grid.tiles) // 2]
    w.view.set_scale(0.5)
    w.view.center_on(t.x + t.side / 2 if hasattr(t, "side") else t.x + t.w / 2, t.y + t.h / 2)
    qtbot.mouseMove(w.view, QPoint(w.view.width() // 2, w.view.height() // 2))
    assert "Ductal carcinoma" in w.overlay.panel.hover.text()
    assert w.overlay.tile_values(t.x + t.w / 2, t.y + t.h / 2) is not None

    # H hides and shows; layers switch
    w.actions_["heatmap"].trigger()
    assert not w.overlay.layer.visible and not w.overlay.panel.visible.isChecked()
    w.actions_["heatmap"].trigger()
    assert w.overlay.layer.visible
    panel = w.overlay.panel
    layers = [panel.layer.itemData(i) for i in range(panel.layer.count())]
    assert layers[:2] == [ARGMAX, ROLLUP] and "ductal_carcinoma" in layers

    # screenshots for a human to look at
    SHOTS.mkdir(parents=True, exist_ok=True)
    w.view.fit()
    qtbot.waitUntil(lambda: not w.loader.busy, timeout=10000)
    w.grab().save(str(SHOTS / "run_argmax.png"))
    panel.layer.setCurrentIndex(panel.layer.findData(ROLLUP))
    w.grab().save(str(SHOTS / "run_rollup.png"))
    panel.layer.setCurrentIndex(panel.layer.findData("ductal_carcinoma"))
    panel.colormap.setCurrentText("viridis")
    panel.threshold.setValue(10)
    w.grab().save(str(SHOTS / "run_class_viridis.png"))
    panel.colormap.setCurrentText("class colour")
    panel.threshold.setValue(0)
    w.view.set_scale(1.0)
    w.view.center_on(t.x + t.w / 2, t.y + t.h / 2)
    qtbot.waitUntil(lambda: not w.loader.busy, timeout=10000)
    qtbot.mouseMove(w.view, QPoint(w.view.width() // 2, w.view.height() // 2))
    w.grab().save(str(SHOTS / "run_zoomed_hover.png"))
    assert (SHOTS / "run_argmax.png").stat().st_size > 10000


def test_cancel_mid_run(qtbot, window, errors):
    w = window
    states = finished_states(w)
    w.start_run(RunRequest(["demo-resnet50"], device="cpu", batch_size=2))
    qtbot.waitUntil(lambda: bool(w.overlay.heatmaps) and next(
        iter(w.overlay.heatmaps.values())).tiles_added > 0, timeout=60000)
    # the overlay is painted while the run goes on, not only at the end
    qtbot.waitUntil(lambda: w.overlay.layer.image is not None, timeout=5000)
    assert w.runs.running
    w.status.run.cancel.click()
    qtbot.waitUntil(lambda: bool(states), timeout=30000)
    assert states == ["cancelled"] and not errors
    hm = w.overlay.heatmaps["demo-resnet50"]
    assert 0 < hm.tiles_added < len(w.overlay.info.grid.tiles)
    assert not w.runs.running and not w.status.run.isVisible()
    assert w.overlay.layer.image is not None  # what finished stays on screen
    # the app keeps working: pan, zoom, and another run can start
    w.view.zoom_in()
    assert w.start_run(RunRequest(["demo-resnet50"], device="cpu", tile_um=1000.0))
    qtbot.waitUntil(lambda: len(states) == 2, timeout=60000)
    assert states[1] == "done"


def test_close_window_mid_run(qtbot, window, errors, qtlog):
    w = window
    w.start_run(RunRequest(["demo-resnet50"], device="cpu", batch_size=2))
    qtbot.waitUntil(lambda: w.status.run.bar.maximum() > 1, timeout=60000)  # engine running
    session = w.runs.session
    assert session is not None and session.running
    w.close()
    assert not session.running and not w.runs.running and session.state == "cancelled"
    assert not any("Destroyed while thread" in r.message for r in qtlog.records)
    assert not errors


def test_unavailable_model_shows_message(qtbot, window, errors):
    w = window
    states = finished_states(w)
    w.start_run(RunRequest(["no-such-bundle"], device="cpu"))
    qtbot.waitUntil(lambda: bool(states), timeout=30000)
    assert states == ["failed"]
    assert errors and "no-such-bundle" in errors[0]
    w.view.zoom_in()  # still usable


def test_run_dialog_defaults_from_manifest(qtbot, window):
    from pvdesk.ui.run_dialog import RunDialog

    dlg = RunDialog(window.settings, window)
    qtbot.addWidget(dlg)
    names = [dlg.list.item(i).data(256) for i in range(dlg.list.count())]
    assert "demo-resnet50" in names and "demo-clip-rn50" in names
    dlg.set_checked(["demo-resnet50"])
    req = dlg.request()
    assert req.bundles == ["demo-resnet50"] and req.tile_um == 112.0
    assert "UNTRAINED" in dlg.list.item(names.index("demo-resnet50")).text()
    dlg.tile_um.setValue(200.0)
    dlg.set_checked(["demo-resnet50", "demo-clip-rn50"])
    assert dlg.request().tile_um == 200.0  # the user's choice is kept


def test_opening_another_slide_discards_the_run(qtbot, window, errors, tmp_path):
    import shutil

    w = window
    states = finished_states(w)
    w.start_run(RunRequest(["demo-resnet50"], device="cpu", batch_size=2))
    qtbot.waitUntil(lambda: bool(w.overlay.heatmaps), timeout=60000)
    other = tmp_path / "other.svs"
    shutil.copy(sample_slide(), other)
    w.open_path(other)
    qtbot.waitUntil(lambda: bool(states) and Path(w.opened.path) == other, timeout=60000)
    qtbot.wait(100)
    assert states == ["cancelled"] and not errors
    assert w.overlay.info is None and not w.overlay.heatmaps  # nothing of the old run shows
    assert w.overlay.layer.image is None and not w.banner.isVisible()


def test_run_on_patch_folder_finishes_without_heatmap(qtbot, window, errors, tmp_path):
    from PIL import Image

    folder = tmp_path / "patches"
    folder.mkdir()
    for i in range(3):
        Image.new("RGB", (80, 60), (190, 90 + 30 * i, 170)).save(folder / f"p{i}.png")
    w = window
    w.open_path(folder)
    qtbot.waitUntil(lambda: Path(w.opened.path) == folder, timeout=20000)
    states = finished_states(w)
    w.start_run(RunRequest(["demo-resnet50"], device="cpu"))
    qtbot.waitUntil(lambda: bool(states), timeout=60000)
    assert states == ["done"] and not errors
    assert w.overlay.summary() == "3 of 3 images classified"


def test_unreadable_regions_are_reported_and_the_rest_runs(qtbot, window, errors, monkeypatch):
    from pvdesk.errors import RegionReadError
    from pvdesk.slides.openslide_source import OpenSlideSource

    real = OpenSlideSource.read_region

    def flaky(self, location, level, size):
        if location[1] + size[1] > 1500:  # the lower half of the slide cannot be read
            raise RegionReadError(self.path, f"cannot read region at {location} (test)")
        return real(self, location, level, size)

    monkeypatch.setattr(OpenSlideSource, "read_region", flaky)
    w = window
    states = finished_states(w)
    w.start_run(RunRequest(["demo-resnet50"], device="cpu", tile_um=500.0))
    qtbot.waitUntil(lambda: bool(states), timeout=60000)
    assert states == ["done"] and not errors  # not fatal: counted, not a message box
    assert "could not be read" in w.status.currentMessage()
    # the lower half is unknown, not background: its tiles were tried and counted
    assert "unreadable area" in w.status.currentMessage()
    assert "mm²" in w.metadata.value("Unreadable") and "not background" in w.metadata.value(
        "Unreadable")
    assert w.overlay.info.grid.unknown_tiles > 0
    hm = w.overlay.heatmaps["demo-resnet50"]
    grid = w.overlay.info.grid
    assert 0 < hm.tiles_added < len(grid.tiles)
    assert w.overlay.tile_values(10, 2900) is None  # the unreadable part stays empty
    # the viewer shows the failure in the status bar and keeps going
    w.view.set_scale(1.0)
    w.view.center_on(1100, 2500)
    qtbot.waitUntil(lambda: "cannot read region" in w.status.currentMessage(), timeout=10000)
    w.view.center_on(1100, 500)
    qtbot.waitUntil(lambda: not w.loader.busy, timeout=10000)
