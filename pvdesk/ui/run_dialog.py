"""Analysis ▸ Run model: choose bundles, the device and the tile scale (manifest default).

Each choice carries its plain words (pvdesk.ui.glossary) in its tooltip.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
)

from pvdesk.ui.glossary import explain, form_row, terms_in, tip, tip_text
from pvdesk.ui.screen_fit import fit_to_screen
from pvdesk.ui.settings import DEVICES, Settings
from pvdesk.ui.worker import RunRequest

DEFAULT_CHECKED = ("demo-clip-rn50",)


def bundle_line(b, available: bool, why: str) -> str:
    text = f"{b.name}  —  {b.kind}, {len(b.classes)} classes, {b.tile_um:g} µm tiles"
    if not b.trained:
        text += "  [UNTRAINED: " + "; ".join(b.untrained_reasons) + "]"
    text += f"\n      evaluation: {b.evaluation}"
    if not available:
        text += "  [weights not on this computer]"
    return text


class RunDialog(QDialog):
    def __init__(self, settings: Settings, parent=None, bundles=None):
        super().__init__(parent)
        self.setWindowTitle("Run model")
        self.settings = settings
        self._tile_um_edited = False
        errors: list[str] = []
        if bundles is None:
            from pvdesk.models import find_bundles

            bundles = find_bundles(settings.model_folders, errors=errors)
        self.bundles = list(bundles)

        self.list = QListWidget()
        for b in self.bundles:
            ok, why = b.weights_status()
            item = QListWidgetItem(bundle_line(b, ok, why))
            item.setData(Qt.ItemDataRole.UserRole, b.name)
            line = item.text()
            item.setToolTip("\n".join(t for t in (
                b.where, why, b.manifest.get("description", ""),
                explain(*terms_in(line)) if terms_in(line) else "") if t))
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Checked if b.name in DEFAULT_CHECKED
                               else Qt.CheckState.Unchecked)
            self.list.addItem(item)
        self.list.itemChanged.connect(self._on_checked)

        self.device = QComboBox()
        self.device.addItems(DEVICES)
        self.device.setCurrentText(settings.default_device)
        self.tile_um = QDoubleSpinBox()
        self.tile_um.setRange(8.0, 4000.0)
        self.tile_um.setDecimals(1)
        self.tile_um.setSuffix(" µm")
        self.tile_um.valueChanged.connect(self._on_tile_um_edited)
        self.batch = QSpinBox()
        self.batch.setRange(0, 512)
        self.batch.setSpecialValueText("automatic (by device)")  # 0: the engine picks
        self.batch.setValue(0)
        self.weights = QLineEdit()
        self.weights.setPlaceholderText("optional: for bundles whose weights are not here")
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse_weights)
        weights_row = QHBoxLayout()
        weights_row.addWidget(self.weights, 1)
        weights_row.addWidget(browse)
        self.embeddings = QCheckBox("Keep embeddings (similar tiles, text search)")
        self.note = QLabel()
        self.note.setWordWrap(True)

        form = QFormLayout()
        form_row(form, "Device", self.device, "device")
        form_row(form, "Tile side", self.tile_um, "tile_size")
        form_row(form, "Batch size", self.batch, "batch")
        form_row(form, "Backbone weights file", weights_row, "backbone", "bundle",
                 before="A file on this computer holding the backbone's learnt numbers (its "
                        "weights), for a bundle that would otherwise download them.")
        form_row(form, "Similar tiles", self.embeddings, "embeddings",
                 before="Store each tile's embeddings (CLIP bundles, float16) so that S finds "
                        "tiles like the current one and a phrase can be searched.")
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                        | QDialogButtonBox.StandardButton.Cancel)
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Run")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        header = QLabel("Model bundles (several run in one pass over the slide):")
        tip(header, "bundle", "zeroshot", "resnet50")
        tip(self.list, "bundle")
        layout.addWidget(header)
        layout.addWidget(self.list, 1)
        layout.addLayout(form)
        if errors:
            skipped = QLabel("Skipped: " + "; ".join(errors))
            skipped.setWordWrap(True)
            tip_text(skipped, skipped.text())
            layout.addWidget(skipped)
        layout.addWidget(self.note)
        layout.addWidget(self.buttons)
        fit_to_screen(self, 820, 440)
        self._on_checked()

    def checked(self) -> list[str]:
        out = []
        for i in range(self.list.count()):
            item = self.list.item(i)
            if item.checkState() == Qt.CheckState.Checked:
                out.append(item.data(Qt.ItemDataRole.UserRole))
        return out

    def set_checked(self, names) -> None:
        for i in range(self.list.count()):
            item = self.list.item(i)
            on = item.data(Qt.ItemDataRole.UserRole) in names
            item.setCheckState(Qt.CheckState.Checked if on else Qt.CheckState.Unchecked)

    def _on_tile_um_edited(self, _value) -> None:
        if not self._setting_default:
            self._tile_um_edited = True

    _setting_default = False

    def _on_checked(self, *_) -> None:
        names = self.checked()
        chosen = [b for b in self.bundles if b.name in names]
        if chosen and not self._tile_um_edited:
            self._setting_default = True
            self.tile_um.setValue(chosen[0].tile_um)
            self._setting_default = False
        scales = {b.tile_um for b in chosen}
        notes = []
        if len(scales) > 1:
            notes.append("The chosen bundles expect different tile sizes "
                         f"({', '.join(f'{s:g}' for s in sorted(scales))} µm); one grid is used.")
        if any(not b.trained for b in chosen):
            notes.append("Untrained bundles give meaningless predictions (demo only).")
        self.note.setText(" ".join(notes))
        tip_text(self.note, self.note.text())
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(bool(chosen))

    def _browse_weights(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Backbone weights", "", "Weights (*.safetensors *.pt *.pth *.bin);;All (*)")
        if path:
            self.weights.setText(path)

    def request(self) -> RunRequest:
        return RunRequest(bundles=self.checked(), device=self.device.currentText(),
                          tile_um=self.tile_um.value(),
                          model_folders=list(self.settings.model_folders),
                          batch_size=self.batch.value() or None,
                          weights=self.weights.text().strip() or None,
                          embeddings=self.embeddings.isChecked())
