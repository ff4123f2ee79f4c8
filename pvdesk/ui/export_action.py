"""File ▸ Export predictions…: CSV (and GeoJSON for QuPath) through the core exporters, in
the background, then a summary (rows, reviewed, corrected)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QVBoxLayout,
)

from pvdesk.ui.background import Tasks, describe_error


class ExportDialog(QDialog):
    def __init__(self, default: Path, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Export predictions")
        self.path = QLineEdit(str(default))
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        row = QHBoxLayout()
        row.addWidget(self.path, 1)
        row.addWidget(browse)
        self.geojson = QCheckBox("Also write GeoJSON for QuPath (same name, .geojson)")
        self.geojson.setChecked(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save
                                   | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("One row per tile (or patch image) of the model run under "
                                "review, with the reviewer's decisions (clip_predictions.csv)."))
        layout.addLayout(row)
        layout.addWidget(self.geojson)
        layout.addWidget(buttons)
        self.resize(560, 150)

    def _browse(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export predictions", self.path.text(),
                                              "CSV (*.csv)")
        if path:
            self.path.setText(path)

    def targets(self) -> tuple[Path, Path | None]:
        csv_path = Path(self.path.text().strip()).expanduser()
        if csv_path.suffix.lower() != ".csv":
            csv_path = csv_path.with_name(csv_path.name + ".csv")
        return csv_path, csv_path.with_suffix(".geojson") if self.geojson.isChecked() else None


def summary_text(info: dict) -> str:
    files = "\n".join(info["files"])
    geo = f", {info['features']} GeoJSON features" if len(info["files"]) > 1 else ""
    return (f"{info['rows']} rows exported: {info['reviewed']} reviewed, "
            f"{info['corrected']} corrected{geo}.\n\n{files}")


class Exporter(QObject):
    """Runs exports off the GUI thread; ``finished(summary)`` or ``failed(message)``."""

    finished = Signal(object)
    failed = Signal(str)

    def __init__(self, parent=None, window=None):
        super().__init__(parent)
        self.window_ = window  # parent of the summary message
        self.tasks = Tasks(self, "pvdesk-export")
        self.quiet = False  # tests: no message box

    @property
    def busy(self) -> bool:
        return self.tasks.busy

    def start(self, store, csv_path, geojson_path=None, run_id=None) -> None:
        from pvdesk.review.project import export_review

        self.tasks.start(export_review, store, Path(csv_path), geojson_path, run_id,
                         on_done=self._on_done,
                         on_error=lambda exc: self._on_failed(describe_error(exc,
                                                                             "Export failed")))

    def _on_done(self, info: dict) -> None:
        if not self.quiet:
            QMessageBox.information(self.window_, "Export predictions", summary_text(info))
        self.finished.emit(info)

    def _on_failed(self, message: str) -> None:
        if not self.quiet:
            QMessageBox.warning(self.window_, "Export predictions", message)
        self.failed.emit(message)

    def shutdown(self) -> None:
        self.tasks.shutdown()
