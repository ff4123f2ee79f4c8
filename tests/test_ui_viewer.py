"""The main window without models: open, pan, zoom, navigator, metadata, bad files, settings."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtWidgets import QMessageBox
from ui_support import open_slide, show_window

from pvdesk.paths import sample_slide
from pvdesk.ui.settings import Settings

UNREADABLE = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "wsi" / "unreadable.svs"
BREAKHIS = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "breakhis-sample"


@pytest.fixture
def warnings(monkeypatch):
    """QMessageBox.warning recorded instead of shown (a modal box would block the test)."""
    seen: list[str] = []
    monkeypatch.setattr(QMessageBox, "warning", staticmethod(
        lambda parent, title, text, *a, **k: seen.append(text)))
    return seen


@pytest.fixture
def window(qtbot, pvdesk_home):
    return show_window(qtbot, (1000, 700))


def open_and_wait(qtbot, w, path) -> None:
    """Open ``path`` and wait until it (not a slide opened before) is shown."""
    open_slide(qtbot, w, path,
               ready=lambda w: w.source is not None and Path(w.opened.path) == Path(path))


def settle(qtbot, w) -> None:
    qtbot.waitUntil(lambda: not w.loader.busy, timeout=10000)


def test_open_sample_shows_metadata_navigator_status(qtbot, window):
    open_and_wait(qtbot, window, sample_slide())
    settle(qtbot, window)
    assert window.metadata.value("Vendor") == "aperio"
    assert window.metadata.value("Microns per pixel") == "0.499 µm/px"
    assert window.metadata.value("Objective") == "20x"
    assert window.metadata.value("Width (px)") == "2220"
    assert not any("label" in (window.metadata.topLevelItem(i).text(1) or "")
                   for i in range(window.metadata.topLevelItemCount()))
    assert len(window.loader.cache) > 0
    assert window.status.mpp.text() == "0.499 µm/px"
    assert str(sample_slide().resolve()) in window.settings.recent_files
    assert Settings.load().recent_files[0] == str(sample_slide().resolve())


def test_pan_and_zoom(qtbot, window):
    open_and_wait(qtbot, window, sample_slide())
    view = window.view
    fit = view.vp.scale
    center = QPointF(view.width() / 2, view.height() / 2)
    view.zoom_in()
    assert view.vp.scale == pytest.approx(fit * 1.5)
    view.set_scale(1.0)
    settle(qtbot, window)
    assert window.status.zoom.text() == "Zoom 20x"
    assert all(k.ds == 1 for k in view.vp.tiles())
    assert any(window.loader.cached(k) is not None for k in view.vp.tiles())

    # drag: the content follows the mouse
    cx, cy = view.vp.cx, view.vp.cy
    qtbot.mousePress(view, Qt.MouseButton.LeftButton, pos=center.toPoint())
    qtbot.mouseMove(view, QPoint(int(center.x()) - 120, int(center.y()) - 60))
    qtbot.mouseRelease(view, Qt.MouseButton.LeftButton,
                       pos=QPoint(int(center.x()) - 120, int(center.y()) - 60))
    assert view.vp.cx == pytest.approx(cx + 120, abs=2)
    assert view.vp.cy == pytest.approx(cy + 60, abs=2)

    # arrow keys pan (a tap moves at once; holding keeps moving)
    view.setFocus()
    cx = view.vp.cx
    qtbot.keyPress(view, Qt.Key.Key_Right)
    qtbot.wait(80)
    qtbot.keyRelease(view, Qt.Key.Key_Right)
    assert view.vp.cx > cx + 40

    # + / - and fit through the View menu's shortcuts
    scale = view.vp.scale
    window.actions_["zoom_out"].trigger()
    assert view.vp.scale == pytest.approx(scale / 1.5)
    window.actions_["fit"].trigger()
    assert view.vp.scale == pytest.approx(fit)

    # the navigator shows the view and moves it on click
    view.set_scale(1.0)
    nav = window.navigator
    qtbot.mouseClick(nav, Qt.MouseButton.LeftButton, pos=QPoint(nav.width() // 2, 5))
    assert view.vp.cx == pytest.approx(window.source.dimensions[0] / 2, rel=0.05)
    assert view.vp.cy < window.source.dimensions[1] * 0.1

    # status bar: cursor in level-0 px and micrometres
    qtbot.mouseMove(view, QPoint(view.width() // 2, view.height() // 2))
    text = window.status.cursor.text()
    assert "px" in text and "µm" in text


def test_wheel_zooms_about_cursor(qtbot, window):
    from PySide6.QtCore import QPoint as P
    from PySide6.QtGui import QWheelEvent
    from PySide6.QtWidgets import QApplication

    open_and_wait(qtbot, window, sample_slide())
    view = window.view
    pos = QPointF(100, 120)
    before = view.vp.to_slide(pos.x(), pos.y())
    scale = view.vp.scale
    ev = QWheelEvent(pos, view.mapToGlobal(pos), P(0, 0), P(0, 120), Qt.MouseButton.NoButton,
                     Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(view, ev)
    assert view.vp.scale == pytest.approx(scale * 1.25)
    assert view.vp.to_slide(pos.x(), pos.y()) == pytest.approx(before)


def test_zero_byte_svs_shows_message_and_window_stays_usable(qtbot, window, warnings, tmp_path):
    empty = tmp_path / "empty.svs"
    empty.write_bytes(b"")
    window.open_path(empty)
    qtbot.waitUntil(lambda: bool(warnings), timeout=10000)
    assert "empty.svs" in warnings[0] and "empty" in warnings[0]
    assert "Traceback" not in warnings[0]
    open_and_wait(qtbot, window, sample_slide())  # still works
    assert window.view.vp is not None


@pytest.mark.skipif(not UNREADABLE.exists(), reason="../shared/data/wsi/unreadable.svs absent")
def test_unreadable_slide_shows_message(qtbot, window, warnings):
    open_and_wait(qtbot, window, sample_slide())
    window.open_path(UNREADABLE)
    qtbot.waitUntil(lambda: bool(warnings), timeout=10000)
    assert "unreadable.svs" in warnings[0]
    assert window.source is not None and window.view.vp is not None  # previous slide stays
    window.view.zoom_in()


def test_patch_folder_opens_as_contact_sheet(qtbot, window, tmp_path):
    folder = tmp_path / "patches" / "adenosis"
    folder.mkdir(parents=True)
    for i in range(5):
        Image.new("RGB", (64, 48), (200, 100 + 20 * i, 180)).save(folder / f"p{i}.png")
    open_and_wait(qtbot, window, tmp_path / "patches")
    assert window.metadata.value("Images") == "5"
    assert window.metadata.value("Folder classes") == "adenosis"
    assert window.view.vp is not None


@pytest.mark.skipif(not BREAKHIS.exists(), reason="../shared/data/breakhis-sample absent")
def test_breakhis_folder_opens(qtbot, window):
    open_and_wait(qtbot, window, BREAKHIS)
    assert int(window.metadata.value("Images")) >= 8


def test_label_image_needs_confirmation(qtbot, window, monkeypatch):
    from pvdesk.ui import dialogs

    open_and_wait(qtbot, window, sample_slide())
    asked, shown = [], []
    monkeypatch.setattr(dialogs, "confirm_label_image", lambda parent: asked.append(1) or False)
    monkeypatch.setattr(dialogs.ImageDialog, "show", lambda self: shown.append(self))
    window.actions_["label_image"].trigger()
    assert asked and not shown
    monkeypatch.setattr(dialogs, "confirm_label_image", lambda parent: True)
    window.actions_["label_image"].trigger()
    assert [d.windowTitle().split()[0] for d in shown] == ["label", "macro"]


def test_about_says_research_only(qtbot, window, monkeypatch):
    seen = []
    monkeypatch.setattr(QMessageBox, "about", staticmethod(lambda p, t, text: seen.append(text)))
    window.actions_["about"].trigger()
    assert "research use only" in seen[0].lower() and "not for diagnosis" in seen[0].lower()


def test_settings_round_trip(tmp_path, monkeypatch):
    monkeypatch.setenv("PVDESK_HOME", str(tmp_path))
    s = Settings.load()
    assert s.default_device == "auto" and s.tile_cache_mb == 256
    s.reviewer, s.tile_cache_mb, s.model_folders = "JD", 64, [str(tmp_path)]
    s.default_device = "cpu"
    s.save()
    again = Settings.load()
    assert (again.reviewer, again.tile_cache_mb, again.default_device) == ("JD", 64, "cpu")
    assert again.model_folders == [str(tmp_path)]
    Settings.path().write_text("{not json", encoding="utf-8")
    assert Settings.load().reviewer == ""  # a damaged file falls back to defaults


def test_settings_dialog_applies(qtbot, tmp_path, monkeypatch):
    from pvdesk.ui.settings_dialog import SettingsDialog

    monkeypatch.setenv("PVDESK_HOME", str(tmp_path))
    s = Settings.load()
    dlg = SettingsDialog(s)
    qtbot.addWidget(dlg)
    dlg.reviewer.setText(" Dr Who ")
    dlg.cache.setValue(128)
    dlg.device.setCurrentText("cpu")
    dlg.apply()
    assert (s.reviewer, s.tile_cache_mb, s.default_device) == ("Dr Who", 128, "cpu")


def test_tile_cache_is_bounded():
    from PySide6.QtGui import QImage

    from pvdesk.ui.tile_loader import LruCache

    cache = LruCache(3 * 256 * 256 * 4)
    for i in range(10):
        cache.put(i, QImage(256, 256, QImage.Format.Format_RGB32))
    assert len(cache) == 3 and cache.bytes <= cache.max_bytes
    assert 9 in cache and 0 not in cache


def test_pyramid_levels_are_used_and_coarse_shows_while_fine_loads(qtbot, window, tmp_path):
    from slide_factory import paint, write_pyramid

    path = write_pyramid(tmp_path / "pyr.tiff",
                         paint(4096, 3072, [(500, 400, 3000, 2600)]), levels=3, mpp=0.5)
    open_and_wait(qtbot, window, path)
    src = window.view.source
    assert src.level_count == 3
    settle(qtbot, window)
    view, loader = window.view, window.loader
    fit_keys = view.vp.tiles()
    assert view.vp.ds >= 4 and all(loader.cached(k) is not None for k in fit_keys)
    assert src.best_level_for_downsample(view.vp.ds) >= 1  # zoomed out reads a coarse level
    view.set_scale(1.0)
    view.center_on(1700, 1500)
    fine = view.vp.tiles()
    assert all(k.ds == 1 for k in fine)
    settle(qtbot, window)
    loader.cache.clear()
    shot = view.grab().toImage()  # nothing fine is cached yet: the thumbnail stands in
    c = shot.pixelColor(shot.width() // 2, shot.height() // 2)
    assert c.red() > c.green() + 40  # tissue pink from the thumbnail, not the grey background
    settle(qtbot, window)
    assert all(loader.cached(k) is not None for k in fine)
    img = loader.cached(fine[0])
    colour = img.pixelColor(img.width() // 2, img.height() // 2)
    assert colour.red() > colour.green() + 40  # tissue pink, read at full resolution
    assert window.status.zoom.text() == "Zoom 100%"  # no objective power in this file
