"""The retrain dialog's choices: the data (DataBox) and the head with its settings (ModelBox).

Defaults come from pvdesk.app.retrain_plan (which mirrors the training package's); a spin box at
0 means "the package's default" and says which. Every term a pathologist may not know (head,
backbone, epochs, learning rate, validation ...) carries its plain words from
pvdesk.ui.glossary.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QPushButton,
    QRadioButton,
    QSpinBox,
    QVBoxLayout,
)

from pvdesk.app.retrain_plan import DEFAULT_BACKBONE, DEMO_BACKBONE, HEADS, default_out
from pvdesk.ui.glossary import explain, form_row, tip
from pvdesk.ui.settings import DEVICES

# The head choices in plain words (the plan's labels name the layers); the glossary explains.
HEAD_LABELS = {"clip-linear": "Linear probe on CLIP (quick, no epochs)",
               "clip-mlp": "MLP head on CLIP (a few minutes)",
               "resnet50": "ResNet50 fine-tune (slow; a graphics card helps)"}
HEAD_TERMS = {"clip-linear": ("linear_probe", "clip", "head", "epochs"),
              "clip-mlp": ("mlp", "clip", "head", "epochs"),
              "resnet50": ("finetune", "resnet50", "epochs")}


def row(*widgets) -> QHBoxLayout:
    out = QHBoxLayout()
    for i, w in enumerate(widgets):
        out.addWidget(w, 1 if i == 0 else 0)
    return out


class DataBox(QGroupBox):
    """This project's reviewed tiles, exported CSV files, or a folder dataset."""

    def __init__(self, store_note: str = "", one_slide: bool = False, parent=None):
        super().__init__("Data", parent)
        lay = QVBoxLayout(self)
        self.group = QButtonGroup(self)
        self.use_store = QRadioButton("This project's reviewed tiles")
        self.use_csv = QRadioButton("Exported CSV files (clip_predictions.csv)")
        self.use_folder = QRadioButton("A folder dataset (class folders, BreakHis tree, "
                                       "train/val/test)")
        tip(self.use_folder, "validation", before=(
            "A folder with one sub-folder per class, a BreakHis download, or train, val "
            "and test folders that already say which images are for what."))
        self.use_store.setToolTip("The tiles reviewed in this project: confirmed and "
                                  "corrected labels become the training labels.")
        self.use_csv.setToolTip("clip_predictions.csv files written by File ▸ Export "
                                "predictions, here or on another computer.")
        for i, b in enumerate((self.use_store, self.use_csv, self.use_folder)):
            self.group.addButton(b, i)
        self.store_note = QLabel()
        self.store_note.setStyleSheet("color: #555; margin-left: 20px;")
        self.store_note.setWordWrap(True)
        self.csv_list = QListWidget()
        self.csv_list.setMaximumHeight(70)
        add, remove = QPushButton("Add…"), QPushButton("Remove")
        add.clicked.connect(self._add_csv)
        remove.clicked.connect(self._remove_csv)
        csv_buttons = QVBoxLayout()
        csv_buttons.addWidget(add)
        csv_buttons.addWidget(remove)
        csv_row = QHBoxLayout()
        csv_row.addWidget(self.csv_list, 1)
        csv_row.addLayout(csv_buttons)
        self.folder = QLineEdit()
        self.folder.setPlaceholderText("folder of images")
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        self.unreviewed = QCheckBox("Also use unreviewed tiles (their predictions as labels)")
        self.by_image = QCheckBox("Split by image, not by patient or slide")
        tip(self.by_image, "split", before=(
            "Needed when every tile comes from one slide (otherwise the slide goes whole "
            "into training and nothing is left to evaluate on). Test scores are then "
            "optimistic: tiles of one slide are in training and test."))
        for w in (self.use_store, self.store_note, self.use_csv):
            lay.addWidget(w)
        lay.addLayout(csv_row)
        lay.addWidget(self.use_folder)
        lay.addLayout(row(self.folder, browse))
        lay.addWidget(self.unreviewed)
        lay.addWidget(self.by_image)
        self.use_folder.setChecked(True)
        self.set_store_note(store_note, one_slide)

    def set_store_note(self, note: str, one_slide: bool = False) -> None:
        """A review store is open (``note`` says how many tiles are labelled), or not ("");
        ``one_slide``: its tiles all come from one slide (then split by image)."""
        self.has_store = bool(note)
        self.store_note.setText(note or "No review project is open.")
        self.use_store.setEnabled(self.has_store)
        if self.has_store:
            self.use_store.setChecked(True)
            self.by_image.setChecked(one_slide)
        elif self.use_store.isChecked():
            self.use_folder.setChecked(True)

    def choice(self) -> tuple[str, list[str]]:
        """("store", []), ("csv", [files]) or ("folder", [folder])."""
        if self.use_store.isChecked():
            return "store", []
        if self.use_csv.isChecked():
            return "csv", [self.csv_list.item(i).text() for i in range(self.csv_list.count())]
        return "folder", [self.folder.text().strip()]

    def set_folder(self, path) -> None:
        self.folder.setText(str(path))
        self.use_folder.setChecked(True)

    def add_csvs(self, paths) -> None:
        for p in paths:
            self.csv_list.addItem(str(p))
        if paths:
            self.use_csv.setChecked(True)

    def set_locked(self, locked: bool) -> None:
        self.setEnabled(not locked)
        self.use_store.setEnabled(self.has_store)

    def _add_csv(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self, "Exported predictions", "",
                                                "CSV (*.csv);;All files (*)")
        self.add_csvs(paths)

    def _remove_csv(self) -> None:
        for item in self.csv_list.selectedItems():
            self.csv_list.takeItem(self.csv_list.row(item))

    def _browse(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Dataset folder")
        if path:
            self.set_folder(path)


class ModelBox(QGroupBox):
    """The head, backbone, epochs, learning rate, device and output folder."""

    def __init__(self, parent=None):
        super().__init__("Model", parent)
        form = QFormLayout(self)
        self.head = QComboBox()
        for kind, (label, _, _) in HEADS.items():
            self.head.addItem(HEAD_LABELS.get(kind, label), kind)
            self.head.setItemData(self.head.count() - 1, explain(*HEAD_TERMS.get(kind, ("head",))),
                                  Qt.ItemDataRole.ToolTipRole)
        self.head.currentIndexChanged.connect(self._on_head)
        self.backbone = QComboBox()
        self.backbone.setEditable(True)
        backbone_note = ("A bundle name, an open_clip MODEL:TAG (RN50:openai), a weights "
                         "file, or the offline demo backbones (untrained: for trying the "
                         "workflow only).")
        self.epochs = QSpinBox()
        self.epochs.setRange(0, 1000)
        self.lr = QDoubleSpinBox()
        self.lr.setDecimals(6)
        self.lr.setRange(0.0, 1.0)
        self.lr.setSingleStep(0.0001)
        self.device = QComboBox()
        self.device.addItems(DEVICES)
        self.out = QLineEdit()
        self.out.setPlaceholderText("default: new, in your models folder")
        tip(self.out, "bundle", before="The new model's folder (it must not exist yet, or be "
                                       "empty). Analysis ▸ Run model lists it afterwards.")
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse_out)
        form_row(form, "Head", self.head, "head", "linear_probe", "mlp", "finetune",
                   before="What is trained on your labelled tiles:")
        form_row(form, "Backbone", self.backbone, "backbone", "clip", "resnet50",
                   before=backbone_note)
        form_row(form, "Epochs", self.epochs, "epochs",
                   before="'default' uses the training package's number.")
        form_row(form, "Learning rate", self.lr, "learning_rate")
        form_row(form, "Device", self.device, "device")
        form_row(form, "Output folder", row(self.out, browse), "bundle")
        self._on_head()

    @property
    def kind(self) -> str:
        return self.head.currentData()

    def choose(self, head: str, backbone: str | None = None, epochs: int = 0,
               lr: float = 0.0, device: str | None = None) -> None:
        self.head.setCurrentIndex(self.head.findData(head))
        if backbone:
            self.backbone.setCurrentText(backbone)
        self.epochs.setValue(epochs)
        self.lr.setValue(lr)
        if device:
            self.device.setCurrentText(device)

    def backbone_value(self) -> str | None:
        text = self.backbone.currentText().strip()
        return None if not text or text.startswith("default:") else text

    def _on_head(self, *_) -> None:
        kind = self.kind
        current = self.backbone_value()
        self.backbone.clear()
        self.backbone.addItem(f"default: {DEFAULT_BACKBONE[kind]}")
        self.backbone.addItems(sorted(set(DEMO_BACKBONE.values()),
                                      key=lambda n: n != DEMO_BACKBONE[kind]))
        if current and current not in DEMO_BACKBONE.values():
            self.backbone.setEditText(current)
        elif current:  # a demo backbone stays a demo, of the head's family
            self.backbone.setCurrentText(DEMO_BACKBONE[kind])
        _, epochs, lr = HEADS[kind]
        for spin, value, fmt in ((self.epochs, epochs, "{}"), (self.lr, lr, "{:g}")):
            spin.setSpecialValueText(f"default ({fmt.format(value)})" if value is not None
                                     else "not used by a linear probe")
            spin.setValue(0)
        self.set_locked(False)

    def set_locked(self, locked: bool) -> None:
        _, epochs, lr = HEADS[self.kind]
        self.setEnabled(not locked)
        self.epochs.setEnabled(epochs is not None)
        self.lr.setEnabled(lr is not None)

    def _browse_out(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Folder for the new bundle")
        if path:
            p = Path(path)
            if any(p.iterdir()) and not (p / "manifest.json").is_file():
                p = p / default_out(self.kind).name  # a new bundle folder inside it
            self.out.setText(str(p))
