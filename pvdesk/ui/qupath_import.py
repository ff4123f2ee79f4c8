"""File ▸ Import QuPath objects…: a GeoJSON file into the open slide's review store.

The dialog picks the file and what the polygons mean (labels for the tiles they cover, with
a coverage threshold, or regions of interest that limit the next run); the import itself is
:func:`pvdesk.export.geojson_import.import_geojson`, run off the GUI thread on its own store
connection, through the window's background tasks (an import under way is finished, not
cut, when the application quits). Afterwards the slide is reopened so the review shows the
new labels.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (
    QApplication,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QRadioButton,
    QVBoxLayout,
)

from pvdesk.ui.background import Tasks, describe_error

TITLE = "Import QuPath objects"


class QuPathImportDialog(QDialog):
    def __init__(self, slide: str, reviewer: str, parent=None):
        super().__init__(parent)
        self.setWindowTitle(TITLE)
        self.path = QLineEdit()
        self.path.setPlaceholderText("objects.geojson (File ▸ Export objects as GeoJSON in QuPath)")
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        row = QHBoxLayout()
        row.addWidget(self.path, 1)
        row.addWidget(browse)
        self.as_labels = QRadioButton("Label the tiles they cover (classified polygons)")
        self.as_labels.setChecked(True)
        self.as_regions = QRadioButton("Regions of interest: the next run classifies only "
                                       "the tiles inside them")
        self.coverage = QDoubleSpinBox()
        self.coverage.setRange(0.05, 1.0)
        self.coverage.setSingleStep(0.05)
        self.coverage.setValue(0.5)
        self.coverage.setToolTip("The share of a tile a polygon must cover to label it")
        self.as_regions.toggled.connect(lambda on: self.coverage.setEnabled(not on))
        form = QFormLayout()
        form.addRow("Minimum coverage of a tile:", self.coverage)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Open
                                   | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        note = QLabel(f"Into the review of {slide}, as reviewer {reviewer} (the labels are "
                      "corrections in the audit trail, and can be undone). A pvdesk GeoJSON "
                      "export brings back its tiles and review decisions.")
        note.setWordWrap(True)
        layout.addWidget(note)
        layout.addLayout(row)
        layout.addWidget(self.as_labels)
        layout.addLayout(form)
        layout.addWidget(self.as_regions)
        layout.addWidget(buttons)
        self.resize(620, 220)

    def _browse(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, TITLE, self.path.text(),
                                              "GeoJSON (*.geojson *.json);;All files (*)")
        if path:
            self.path.setText(path)

    def options(self) -> dict:
        return {"path": Path(self.path.text().strip()).expanduser(),
                "as_region": self.as_regions.isChecked(),
                "min_coverage": float(self.coverage.value())}


def import_job(store_path, slide_id, reviewer, options: dict) -> dict:
    """Off the GUI thread: the import, on a store connection of its own."""
    from pvdesk.export.geojson_import import import_geojson
    from pvdesk.review.store import ReviewStore

    Path(store_path).parent.mkdir(parents=True, exist_ok=True)
    with ReviewStore(store_path, reviewer=reviewer) as store:
        return import_geojson(store, options["path"], slide_id=slide_id,
                              min_coverage=options["min_coverage"],
                              as_region=options["as_region"])


class QuPathImporter(QObject):
    """Runs imports through the window's background tasks; ``finished(summary)`` or
    ``failed(message)``."""

    finished = Signal(object)
    failed = Signal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.tasks = Tasks(self, "pvdesk-qupath-import")

    @property
    def busy(self) -> bool:
        return self.tasks.busy

    def start(self, store_path, slide_id, reviewer, options: dict) -> None:
        self.tasks.start(import_job, store_path, slide_id, reviewer, options,
                         on_done=self.finished.emit,
                         on_error=lambda exc: self.failed.emit(
                             describe_error(exc, "QuPath import failed")))

    def shutdown(self) -> None:
        self.tasks.shutdown()


def _context(window):
    """(store path, slide id, reviewer) of the open slide, or None."""
    ctx = getattr(getattr(window, "review", None), "ctx", None)
    if ctx is None or getattr(ctx, "folder", False) or ctx.source is None:
        return None
    slide_id = ctx.slide_id or ctx.source.slide_id
    ctx.slide_id = slide_id
    return ctx.store_path(), slide_id, ctx.reviewer


def choose_import(window) -> None:
    where = _context(window)
    if where is None:
        QMessageBox.information(window, TITLE, "Open a slide first: QuPath objects are "
                                "imported into the open slide's review.")
        return
    store_path, slide_id, reviewer = where
    dialog = QuPathImportDialog(Path(window.source.path).name, reviewer, window)
    if dialog.exec() != QDialog.DialogCode.Accepted:
        return
    options = dialog.options()
    if not options["path"].is_file():
        QMessageBox.warning(window, TITLE, f"{options['path']}: no such file")
        return
    window.status.showMessage(f"Importing {options['path'].name}…")
    window.qupath_importer.start(store_path, slide_id, reviewer, options)


def _done(window, summary: dict) -> None:
    from pvdesk.export.geojson_import import summary_text

    window.status.showMessage(f"Imported {Path(summary['file']).name}", 5000)
    changed = summary["labelled"] or summary["restored"]
    if changed and window.source is not None and not window.runs.running:
        window.open_path(str(window.source.path))  # the review reloads with the new labels
    if not getattr(window, "quiet_dialogs", False):
        QMessageBox.information(window, TITLE, summary_text(summary))


def _failed(window, message: str) -> None:
    window.status.showMessage(message, 10000)
    if not getattr(window, "quiet_dialogs", False):
        QMessageBox.warning(window, TITLE, message)


def install_qupath_import(window, menu, acts: dict) -> QAction:
    """Add File ▸ Import QuPath objects… to ``menu``."""
    act = QAction("Import &QuPath objects…", window)
    act.setStatusTip("Read QuPath annotations (GeoJSON) as tile labels or regions of "
                     "interest, or a pvdesk GeoJSON export back into the review")
    act.triggered.connect(lambda: choose_import(window))
    menu.addAction(act)
    window.qupath_importer = importer = QuPathImporter(window)
    importer.finished.connect(lambda s: _done(window, s))
    importer.failed.connect(lambda msg: _failed(window, msg))
    app = QApplication.instance()
    if app is not None:
        app.aboutToQuit.connect(importer.shutdown)
    acts["import_qupath"] = act
    return act
