"""File ▸ Settings: model folders, default device, reviewer name, tile cache size.

Each setting carries its plain words (pvdesk.ui.glossary) in its tooltip.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
)

from pvdesk.paths import user_models_dir
from pvdesk.ui.glossary import form_row, tip
from pvdesk.ui.screen_fit import fit_to_screen
from pvdesk.ui.settings import DEVICES, Settings


class SettingsDialog(QDialog):
    def __init__(self, settings: Settings, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self.settings = settings
        self.folders = QListWidget()
        self.folders.addItems(settings.model_folders)
        self.folders.setMinimumHeight(70)
        self.folders_note = QLabel(f"Always searched as well: pvdesk's own models folder, "
                                   f"{user_models_dir()}, where retrained models go.")
        self.folders_note.setWordWrap(True)
        self.folders_note.setStyleSheet("color: #444444;")
        self.folders_note.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        tip(self.folders_note, "bundle")
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
        self.reviewer.setPlaceholderText("your name or initials")
        self.reviewer.setToolTip("Recorded with each review decision, in the audit trail and "
                                 "the exported CSV.")
        self.cache = QSpinBox()
        self.cache.setRange(64, 8192)
        self.cache.setSuffix(" MB")
        self.cache.setValue(settings.tile_cache_mb)

        form = QFormLayout()
        form_row(form, "Model folders", self.folders, "bundle",
                 before="Folders that hold model bundles; Run model lists every bundle in them.")
        form.addRow("", buttons_row)
        form.addRow("", self.folders_note)
        form_row(form, "Default device", self.device, "device")
        form_row(form, "Reviewer", self.reviewer)
        form_row(form, "Tile cache", self.cache, "tile_cache")
        box = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                               | QDialogButtonBox.StandardButton.Cancel)
        box.accepted.connect(self.accept)
        box.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(box)
        fit_to_screen(self, 620, 320)

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
