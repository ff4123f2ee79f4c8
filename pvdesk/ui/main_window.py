"""The main window: slide view, navigator, metadata, heatmap controls, menus, status bar."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QFrame,
    QLabel,
    QMainWindow,
    QScrollArea,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from pvdesk.ui import dialogs, glossary
from pvdesk.ui.menus import build_menus
from pvdesk.ui.metadata_panel import MetadataPanel
from pvdesk.ui.navigator import Navigator
from pvdesk.ui.opener import Opened, SlideOpener
from pvdesk.ui.overlay import OverlayController
from pvdesk.ui.review_controller import ReviewController
from pvdesk.ui.settings import Settings
from pvdesk.ui.slide_view import SlideView
from pvdesk.ui.status_bar import StatusBar
from pvdesk.ui.tile_loader import TileLoader
from pvdesk.ui.worker import RunController, RunRequest

SLIDE_FILTER = ("Slides and images (*.svs *.tif *.tiff *.ndpi *.mrxs *.scn *.vms *.vmu *.bif "
                "*.svslide *.dcm *.png *.jpg *.jpeg *.bmp);;All files (*)")
BANNER_STYLE = ("QLabel { background: #b00020; color: white; font-weight: bold; padding: 6px; }")


def initial_size() -> tuple[int, int]:
    """1280 x 820, or less so that the window fits the screen's free area."""
    from PySide6.QtGui import QGuiApplication

    screen = QGuiApplication.primaryScreen()
    if screen is None:
        return 1280, 820
    free = screen.availableGeometry()
    return min(1280, free.width()), min(820, free.height() - 40)


class MainWindow(QMainWindow):
    def __init__(self, settings: Settings | None = None):
        super().__init__()
        self.settings = settings or Settings.load()
        self.setWindowTitle("pvdesk — research use only")
        self.resize(*initial_size())
        self.setAcceptDrops(True)
        self.source = None  # the Source the user opened
        self.opened: Opened | None = None
        self._closing = False
        self._last_progress = None

        self.loader = TileLoader(self.settings.tile_cache_mb, threads=2, parent=self)
        self.view = SlideView(self.loader)
        self.banner = QLabel()
        self.banner.setStyleSheet(BANNER_STYLE)
        self.banner.setWordWrap(True)
        self.banner.setToolTip(glossary.explain("backbone", "bundle"))
        self.banner.hide()
        self.stack = QStackedWidget()  # part 2 adds the patch-folder grid as another page
        self.stack.addWidget(self.view)
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.banner)
        layout.addWidget(self.stack, 1)
        self.setCentralWidget(central)

        self.navigator = Navigator()
        self.metadata = MetadataPanel()
        self.overlay = OverlayController(self.view, self.settings, parent=self)
        self.nav_dock = self._dock("Navigator", self.navigator, "navigator")
        self.meta_dock = self._dock("Slide", self.metadata, "metadata")
        self.overlay_dock = self._dock("Heatmap", self.overlay.panel, "heatmap")
        self.status = StatusBar()
        self.setStatusBar(self.status)
        self.resizeDocks([self.nav_dock, self.meta_dock, self.overlay_dock], [200, 170, 430],
                         Qt.Orientation.Vertical)
        self.resizeDocks([self.nav_dock], [320], Qt.Orientation.Horizontal)

        self.opener = SlideOpener(self)
        self.opener.opened.connect(self._on_opened)
        self.opener.failed.connect(self._on_open_failed)
        self.opener.thumbnail_ready.connect(self._on_thumbnail)
        self.runs = RunController(self.overlay.service, self)
        self._wire_run()

        self.actions_ = build_menus(self)
        self._wire_actions()
        self._update_recent()
        self.view.view_changed.connect(self._on_view_changed)
        self.view.cursor_moved.connect(self._on_cursor)
        self.view.cursor_left.connect(lambda: self.status.show_cursor(0, 0, None, False))
        self.navigator.center_requested.connect(self.view.center_on)
        self.loader.read_failed.connect(lambda msg: self.status.showMessage(msg, 8000))
        self.overlay.untrained_changed.connect(self._show_banner)
        self.overlay.visible_changed.connect(self.actions_["heatmap"].setChecked)
        # Part 2: review mode, patch-folder grid, File ▸ Export (pvdesk/ui/review_controller.py)
        self.review = ReviewController(self)

    def _dock(self, title: str, widget: QWidget, name: str) -> QDockWidget:
        """A dock whose content scrolls when the screen is short (1366 x 768 laptops), so
        no panel's natural height forces the window taller than the screen."""
        dock = QDockWidget(title, self)
        dock.setObjectName(name)
        scroll = QScrollArea()
        scroll.setWidget(widget)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setMinimumHeight(60)
        dock.setWidget(scroll)
        dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable
                         | QDockWidget.DockWidgetFeature.DockWidgetClosable
                         | QDockWidget.DockWidgetFeature.DockWidgetFloatable)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, dock)
        return dock

    def _wire_actions(self) -> None:
        a = self.actions_
        a["open"].triggered.connect(self.choose_slide)
        a["open_folder"].triggered.connect(self.choose_folder)
        a["label_image"].triggered.connect(self.show_label_image)
        a["settings"].triggered.connect(self.edit_settings)
        a["quit"].triggered.connect(self.close)
        a["zoom_in"].triggered.connect(self.view.zoom_in)
        a["zoom_out"].triggered.connect(self.view.zoom_out)
        a["fit"].triggered.connect(self.view.fit)
        a["heatmap"].toggled.connect(self.overlay.set_visible)
        a["run"].triggered.connect(self.choose_run)
        a["cancel_run"].triggered.connect(self.cancel_run)
        a["about"].triggered.connect(lambda: dialogs.show_about(self))
        for dock in (self.nav_dock, self.meta_dock, self.overlay_dock):
            self.view_menu.addAction(dock.toggleViewAction())

    def _wire_run(self) -> None:
        r, run = self.runs, self.status.run
        r.status.connect(run.set_status)
        r.progress.connect(run.set_progress)
        r.progress.connect(lambda p: setattr(self, "_last_progress", p))
        r.started.connect(self.overlay.begin)
        r.started.connect(lambda info: self.source is not None and self.metadata.show_source(
            self.source, info.slide_facts()))
        r.progress.connect(self.overlay.on_progress)
        r.failed.connect(self._on_run_failed)
        r.finished.connect(self._on_run_finished)
        run.cancel_clicked.connect(self.cancel_run)

    # opening -----------------------------------------------------------------
    def choose_slide(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open slide", "", SLIDE_FILTER)
        if path:
            self.open_path(path)

    def choose_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Open patch folder")
        if path:
            self.open_path(path)

    def open_path(self, path) -> None:
        """Open a slide, image or patch folder in the background."""
        if self.runs.running:
            self.runs.discard()
        self.status.showMessage(f"Opening {Path(path).name}…")
        self.opener.open(str(path))

    @property
    def loading(self) -> bool:
        return self.opener.busy

    def _on_opened(self, opened: Opened) -> None:
        if self._closing:
            opened.source.close()
            return
        old = self.source
        self.opened, self.source = opened, opened.source
        self.overlay.clear()
        self.view.set_source(opened.view_source, opened.thumbnail)
        self.navigator.set_thumbnail(opened.thumbnail, opened.view_source.dimensions)
        self.metadata.show_source(opened.source)
        self.setWindowTitle(f"{Path(opened.path).name} — pvdesk — research use only")
        self.status.showMessage(f"Opened {opened.path}", 5000)
        self.settings.add_recent(opened.path)
        self._save_settings()
        self._update_recent()
        self._show_banner([])
        if old is not None and old is not opened.source:
            old.close()

    def _on_thumbnail(self, source, image) -> None:
        if source is self.source and not self._closing:
            self.view.set_thumbnail(image)
            self.navigator.set_thumbnail(image, self.opened.view_source.dimensions)

    def _on_open_failed(self, message: str) -> None:
        self.status.showMessage("Could not open the file", 5000)
        dialogs.show_error(self, message, "Cannot open")

    def _update_recent(self) -> None:
        self.recent_menu.clear()
        for p in self.settings.recent_files:
            act = self.recent_menu.addAction(p)
            act.triggered.connect(lambda _=False, p=p: self.open_path(p))
        self.recent_menu.setEnabled(bool(self.settings.recent_files))

    def show_label_image(self) -> None:
        src = self.source
        names = src.associated_image_names() if src is not None else []
        shown = [n for n in ("label", "macro") if n in names]
        if not shown:
            dialogs.show_error(self, "This slide has no label or macro image.", "Label image")
            return
        if not dialogs.confirm_label_image(self):
            return
        for name in shown:
            dialogs.ImageDialog(f"{name} image — {src.path.name}",
                                src.associated_image(name), self).show()

    # dropping ------------------------------------------------------------------
    def dragEnterEvent(self, event) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        urls = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if urls:
            self.open_path(urls[0])
            event.acceptProposedAction()

    # status ------------------------------------------------------------------------
    def _on_view_changed(self) -> None:
        vp = self.view.vp
        self.navigator.set_view_rect(vp.visible_rect() if vp else None)
        self.status.show_view(self.view.zoom_text(), getattr(self.view.source, "mpp", None))

    def _on_cursor(self, x: float, y: float) -> None:
        vp = self.view.vp
        inside = vp is not None and 0 <= x < vp.slide_w and 0 <= y < vp.slide_h
        self.status.show_cursor(x, y, getattr(self.view.source, "mpp", None), inside)
        self.overlay.hover(x, y, inside)

    def _show_banner(self, untrained: list[str]) -> None:
        if untrained:
            one = len(untrained) == 1
            self.banner.setText(
                f"UNTRAINED MODEL{'' if one else 'S'}: {', '.join(untrained)} "
                f"{'has' if one else 'have'} random weights, or stand{'s' if one else ''} "
                "on a backbone that has. "
                f"{'Its heatmap is' if one else 'Their heatmaps are'} meaningless and only "
                "demonstrate the workflow. Research use only.")
        self.banner.setVisible(bool(untrained))

    # runs ----------------------------------------------------------------------------
    def choose_run(self) -> None:
        from pvdesk.ui.run_dialog import RunDialog

        if self.source is None:
            dialogs.show_error(self, "Open a slide first (File ▸ Open slide…).", "Run model")
            return
        if self.runs.running:
            dialogs.show_error(self, "A run is already in progress.", "Run model")
            return
        dlg = RunDialog(self.settings, self)
        if dlg.exec():
            self.start_run(dlg.request())

    def start_run(self, request: RunRequest) -> bool:
        if self.source is None or self.runs.running:
            return False
        self.overlay.clear()
        self._last_progress = None
        self.status.run.start(f"Starting {', '.join(request.bundles)}…")
        self.actions_["cancel_run"].setEnabled(True)
        self.runs.start(request, self.source, self.review.run_target())
        return True

    def cancel_run(self) -> None:
        self.runs.cancel()
        self.status.run.set_status("Cancelling…")

    def _on_run_failed(self, message: str) -> None:
        if not self._closing:
            dialogs.show_error(self, message, "Run failed")

    def _on_run_finished(self, state: str) -> None:
        self.status.run.finish()
        self.actions_["cancel_run"].setEnabled(False)
        self.overlay.finish(state)
        if state in ("done", "cancelled"):
            last = self._last_progress
            bad = (f"; {last.unreadable} of {last.total} tiles could not be read"
                   if last and last.unreadable else "")
            area = self.overlay.info.unreadable_area if self.overlay.info else None
            bad += f"; unreadable area {area} (unknown, not background)" if area else ""
            self.status.showMessage(f"Run {'finished' if state == 'done' else 'cancelled'}"
                                    f": {self.overlay.summary()}{bad}", 15000)

    # settings and closing ------------------------------------------------------------
    def edit_settings(self) -> None:
        from pvdesk.ui.settings_dialog import SettingsDialog

        dlg = SettingsDialog(self.settings, self)
        if dlg.exec():
            dlg.apply()
            self.loader.set_cache_mb(self.settings.tile_cache_mb)
            self._save_settings()

    def _save_settings(self) -> None:
        try:
            self.settings.save()
        except OSError as exc:
            self.status.showMessage(f"Settings not saved: {exc}", 8000)

    def closeEvent(self, event) -> None:
        self._closing = True
        self.runs.shutdown()
        self.opener.shutdown()
        self.review.shutdown()
        self.overlay.shutdown()
        self.loader.shutdown()
        self._save_settings()
        if self.source is not None:
            self.source.close()
            self.source = None
        super().closeEvent(event)
