"""File ▸ Settings: model folders, default device, reviewer name, tile cache size."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QListWidget,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
)

from pvdesk.ui.settings import DEVICES, Settings


class SettingsDialog(QDialog):
    def __init__(self, settings: Settings, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self.settings = settings
        self.folders = QListWidget()
        self.folders.addItems(settings.model_folders)
        add, remove = QPushButton("Add…"), QPushButton("Remove")
        add.clicked.connect(self._add_folder)
        remove.clicked.connect(self._remove_folder)
        buttons_row = QHBoxLayout()
        buttons_row.addWidget(add)
        buttons_row.addWidget(remove)
        buttons_row.addStretch(1)
        self.device = QComboBox()
        self.device.addItems(DEVICES)
        self.device.setCurrentText(settings.default_device)
        self.reviewer = QLineEdit(settings.reviewer)
        self.reviewer.setPlaceholderText("your name or initials (recorded with each review)")
        self.cache = QSpinBox()
        self.cache.setRange(64, 8192)
        self.cache.setSuffix(" MB")
        self.cache.setValue(settings.tile_cache_mb)

        form = QFormLayout()
        form.addRow("Model folders", self.folders)
        form.addRow("", buttons_row)
        form.addRow("Default device", self.device)
        form.addRow("Reviewer", self.reviewer)
        form.addRow("Tile cache", self.cache)
        box = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                               | QDialogButtonBox.StandardButton.Cancel)
        box.accepted.connect(self.accept)
        box.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(box)

    def _add_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Model folder")
        if path:
            self.folders.addItem(path)

    def _remove_folder(self) -> None:
        for item in self.folders.selectedItems():
            self.folders.takeItem(self.folders.row(item))

    def apply(self) -> None:
        s = self.settings
        s.model_folders = [self.folders.item(i).text() for i in range(self.folders.count())]
        s.default_device = self.device.currentText()
        s.reviewer = self.reviewer.text().strip()
        s.tile_cache_mb = self.cache.value()
