"""Training ▸ Retrain: choose data, head and settings; run ``python -m training`` as a child.

Left: the choices (this project's reviewed tiles, exported CSVs or a folder dataset; the
head; backbone, epochs, learning rate with the training package's defaults; the output
folder). Right: live progress (bar, ETA, train/validation curves, log tail) and, after a
successful run, its metrics. The work is in pvdesk.retrain_plan / retrain_progress and
pvdesk.ui.retrain_process; this module only wires widgets to them.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QDialog,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QRadioButton,
    QSpinBox,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from pvdesk.bundle_metrics import bundle_reports
from pvdesk.errors import PvdeskError
from pvdesk.retrain_plan import DEFAULT_BACKBONE, DEMO_BACKBONE, HEADS, RetrainPlan, child_env
from pvdesk.retrain_plan import prepare_data as plan_data
from pvdesk.ui.curves_canvas import CurvesCanvas
from pvdesk.ui.metrics_view import MetricsPanel
from pvdesk.ui.retrain_process import RetrainProcess
from pvdesk.ui.settings import DEVICES

ERROR_STYLE = "color: #b00020;"


def _row(*widgets, stretch_first=True) -> QHBoxLayout:
    row = QHBoxLayout()
    for i, w in enumerate(widgets):
        row.addWidget(w, 1 if (i == 0 and stretch_first) else 0)
    return row


class RetrainDialog(QDialog):
    """Signals: trained(bundle folder) after a successful run; load_requested(folder)."""

    trained = Signal(str)
    load_requested = Signal(str)

    def __init__(self, parent=None, store_provider=None, python: str | None = None,
                 extra_args: list[str] | None = None, store_note: str = ""):
        super().__init__(parent)
        self.setWindowTitle("Retrain a model")
        self.store_provider = store_provider or (lambda: None)
        self.python = python
        self.extra_args = list(extra_args or [])
        self.plan: RetrainPlan | None = None
        self.bundle_folder: str | None = None
        self.process = RetrainProcess(self)
        self.process.event.connect(self._on_event)
        self.process.log.connect(self._on_log)
        self.process.finished.connect(self._on_finished)

        setup = QWidget()
        sl = QVBoxLayout(setup)
        sl.setContentsMargins(0, 0, 0, 0)
        sl.addWidget(self._data_box(store_note))
        sl.addWidget(self._model_box())
        sl.addStretch(1)

        self.tabs = QTabWidget()
        prog = QWidget()
        pl = QVBoxLayout(prog)
        self.status = QLabel("Choose the data and the head, then Start training.")
        self.status.setWordWrap(True)
        self.bar = QProgressBar()
        self.bar.setRange(0, 1000)
        self.bar.setValue(0)
        self.bar.setTextVisible(False)
        self.curves = CurvesCanvas()
        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(500)
        self.log.setPlaceholderText("The training log appears here.")
        pl.addWidget(self.status)
        pl.addWidget(self.bar)
        pl.addWidget(self.curves, 3)
        pl.addWidget(self.log, 2)
        self.results = MetricsPanel()
        self.tabs.addTab(prog, "Progress")
        self.tabs.addTab(self.results, "Results")

        split = QSplitter()
        split.addWidget(setup)
        split.addWidget(self.tabs)
        split.setStretchFactor(1, 1)
        split.setSizes([380, 720])

        self.error = QLabel()
        self.error.setWordWrap(True)
        self.error.setStyleSheet(ERROR_STYLE)
        self.error.hide()
        self.start_btn = QPushButton("Start training")
        self.start_btn.setDefault(True)
        self.cancel_btn = QPushButton("Cancel training")
        self.cancel_btn.setEnabled(False)
        self.load_btn = QPushButton("Load and run on the open slide")
        self.load_btn.setEnabled(False)
        self.close_btn = QPushButton("Close")
        self.start_btn.clicked.connect(self.start)
        self.cancel_btn.clicked.connect(self.cancel)
        self.load_btn.clicked.connect(self._request_load)
        self.close_btn.clicked.connect(self.close)
        buttons = QHBoxLayout()
        for b in (self.start_btn, self.cancel_btn, self.load_btn):
            buttons.addWidget(b)
        buttons.addStretch(1)
        buttons.addWidget(self.close_btn)
        lay = QVBoxLayout(self)
        lay.addWidget(split, 1)
        lay.addWidget(self.error)
        lay.addLayout(buttons)
        self.resize(1120, 700)
        self._on_head()

    # -- the choices -------------------------------------------------------------------
    def _data_box(self, store_note: str) -> QGroupBox:
        box = QGroupBox("Data")
        lay = QVBoxLayout(box)
        self.data_group = QButtonGroup(self)
        self.use_store = QRadioButton("This project's reviewed tiles")
        self.use_csv = QRadioButton("Exported CSV files (clip_predictions.csv)")
        self.use_folder = QRadioButton("A folder dataset (class folders, BreakHis tree, "
                                       "train/val/test)")
        for i, b in enumerate((self.use_store, self.use_csv, self.use_folder)):
            self.data_group.addButton(b, i)
        self.store_note = QLabel(store_note or "No review project is open.")
        self.store_note.setStyleSheet("color: #555; margin-left: 20px;")
        self.store_note.setWordWrap(True)
        self.csv_list = QListWidget()
        self.csv_list.setMaximumHeight(70)
        add, remove = QPushButton("Add…"), QPushButton("Remove")
        add.clicked.connect(self._add_csv)
        remove.clicked.connect(lambda: [self.csv_list.takeItem(self.csv_list.row(i))
                                        for i in self.csv_list.selectedItems()])
        csv_buttons = QVBoxLayout()
        csv_buttons.addWidget(add)
        csv_buttons.addWidget(remove)
        csv_row = QHBoxLayout()
        csv_row.addWidget(self.csv_list, 1)
        csv_row.addLayout(csv_buttons)
        self.data_folder = QLineEdit()
        self.data_folder.setPlaceholderText("folder of images")
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse_data)
        self.unreviewed = QCheckBox("Also use unreviewed tiles (their predictions as labels)")
        for w in (self.use_store, self.store_note, self.use_csv):
            lay.addWidget(w)
        lay.addLayout(csv_row)
        lay.addWidget(self.use_folder)
        lay.addLayout(_row(self.data_folder, browse))
        lay.addWidget(self.unreviewed)
        self._has_store = bool(store_note)
        self.use_store.setEnabled(self._has_store)
        (self.use_store if self._has_store else self.use_folder).setChecked(True)
        return box

    def _model_box(self) -> QGroupBox:
        box = QGroupBox("Model")
        form = QFormLayout(box)
        self.head = QComboBox()
        for kind, (label, _, _) in HEADS.items():
            self.head.addItem(label, kind)
        self.head.currentIndexChanged.connect(self._on_head)
        self.backbone = QComboBox()
        self.backbone.setEditable(True)
        self.backbone.setToolTip("A bundle name, an open_clip MODEL:TAG (RN50:openai), a "
                                 "weights file, or the offline demo backbones (untrained: "
                                 "for trying the workflow only)")
        self.epochs = QSpinBox()
        self.epochs.setRange(0, 1000)
        self.lr = QDoubleSpinBox()
        self.lr.setDecimals(6)
        self.lr.setRange(0.0, 1.0)
        self.lr.setSingleStep(0.0001)
        self.device = QComboBox()
        self.device.addItems(DEVICES)
        self.out = QLineEdit()
        self.out.setPlaceholderText("default: a new folder in your models folder")
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse_out)
        form.addRow("Head", self.head)
        form.addRow("Backbone", self.backbone)
        form.addRow("Epochs", self.epochs)
        form.addRow("Learning rate", self.lr)
        form.addRow("Device", self.device)
        form.addRow("Output folder", _row(self.out, browse))
        return box

    def _on_head(self, *_) -> None:
        kind = self.head.currentData()
        _, epochs, lr = HEADS[kind]
        current = self.backbone_value()
        self.backbone.clear()
        self.backbone.addItem(f"default: {DEFAULT_BACKBONE[kind]}")
        self.backbone.addItems(sorted(set(DEMO_BACKBONE.values()),
                                      key=lambda n: n != DEMO_BACKBONE[kind]))
        if current and current not in DEMO_BACKBONE.values():
            self.backbone.setEditText(current)
        elif current:
            self.backbone.setCurrentText(DEMO_BACKBONE[kind])
        for spin, value, fmt in ((self.epochs, epochs, "{}"), (self.lr, lr, "{:g}")):
            spin.setEnabled(value is not None)
            spin.setSpecialValueText(f"default ({fmt.format(value)})" if value is not None
                                     else "n/a (C is chosen on validation)")
            spin.setValue(0)

    def backbone_value(self) -> str | None:
        text = self.backbone.currentText().strip()
        return None if not text or text.startswith("default:") else text

    def _add_csv(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self, "Exported predictions", "",
                                                "CSV (*.csv);;All files (*)")
        for p in paths:
            self.csv_list.addItem(p)
        if paths:
            self.use_csv.setChecked(True)

    def _browse_data(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Dataset folder")
        if path:
            self.data_folder.setText(path)
            self.use_folder.setChecked(True)

    def _browse_out(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Output folder for the new bundle")
        if path:
            self.out.setText(path)

    # -- running -----------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self.process.running

    def data_choice(self) -> tuple[str, list[str]]:
        if self.use_store.isChecked():
            return "store", []
        if self.use_csv.isChecked():
            return "csv", [self.csv_list.item(i).text() for i in range(self.csv_list.count())]
        return "folder", [self.data_folder.text().strip()]

    def show_message(self, message: str) -> None:
        self.error.setText(message)
        self.error.setVisible(bool(message))

    def start(self) -> bool:
        if self.running:
            return False
        self.show_message("")
        kind, paths = self.data_choice()
        if kind != "store" and not any(paths):
            self.show_message("Choose the data first: " + ("add an exported CSV file." if kind == "csv"
                                                    else "choose a dataset folder."))
            return False
        try:
            data = plan_data(kind, paths, self.store_provider() if kind == "store" else None)
            self.plan = RetrainPlan(
                kind, data, head=self.head.currentData(), backbone=self.backbone_value(),
                epochs=self.epochs.value() or None, lr=self.lr.value() or None,
                out=self.out.text().strip(), device=self.device.currentText(),
                include_unreviewed=self.unreviewed.isChecked(), extra=self.extra_args)
        except (PvdeskError, OSError, ValueError) as exc:
            self.show_message(f"Cannot prepare the data: {exc}")
            return False
        self.bundle_folder = None
        self.log.clear()
        self.curves.clear()
        self.results.show_report(None)
        self.bar.setRange(0, 0)
        self.status.setText("Starting the training process…")
        self.tabs.setCurrentIndex(0)
        self._set_running(True)
        Path(self.plan.out).parent.mkdir(parents=True, exist_ok=True)
        self.process.start(self.plan.command(self.python), child_env(),
                           cwd=str(Path(self.plan.out).parent))
        return True

    def _set_running(self, on: bool) -> None:
        self.start_btn.setEnabled(not on)
        self.cancel_btn.setEnabled(on)
        self.load_btn.setEnabled(not on and self.bundle_folder is not None)
        for w in (self.use_store, self.use_csv, self.use_folder, self.head, self.backbone,
                  self.out, self.device):
            w.setEnabled(not on and (w is not self.use_store or self._has_store))
        if not on:
            self._on_head_enable()

    def _on_head_enable(self) -> None:
        _, epochs, lr = HEADS[self.head.currentData()]
        self.epochs.setEnabled(epochs is not None)
        self.lr.setEnabled(lr is not None)

    def cancel(self) -> None:
        if self.running:
            self.status.setText("Cancelling…")
            self.process.cancel()

    def _on_log(self, line: str) -> None:
        self.log.appendPlainText(line)

    def _on_event(self, ev: dict) -> None:
        st = self.process.state
        frac = st.fraction()
        if frac is None:
            self.bar.setRange(0, 0)
        else:
            self.bar.setRange(0, 1000)
            self.bar.setValue(int(frac * 1000))
        self.status.setText(st.status_text())
        if ev.get("event") == "epoch":
            self.curves.show_curves(st.curves())
        elif ev.get("event") == "stage" and ev.get("stage") == "train" and not st.epochs:
            self.curves.clear("This head has no epochs (logistic regression): "
                              "see the metrics when it is done.")

    def _on_finished(self, outcome: str, message: str) -> None:
        self.bar.setRange(0, 1000)
        if outcome == "done":
            self.bar.setValue(1000)
            self.bundle_folder = message
            reports = bundle_reports(message)
            self.results.show_report(reports[0] if reports else None,
                                     "The bundle was exported without a held-out evaluation.")
            acc = reports[0].metrics.get("accuracy") if reports else None
            self.status.setText(f"Done: {message}" + (f" (accuracy {acc:.3f})"
                                                        if acc is not None else ""))
            self.tabs.setCurrentIndex(1)
            self.trained.emit(message)
        elif outcome == "cancelled":
            self.bar.setValue(0)
            self.status.setText("Cancelled. Nothing was loaded; start again when ready.")
        else:
            self.bar.setValue(0)
            self.status.setText("Training failed." if outcome == "error" else message)
            self.show_message(("Training failed: " if outcome == "error" else "") + message)
        self._set_running(False)

    def _request_load(self) -> None:
        if self.bundle_folder:
            self.load_requested.emit(self.bundle_folder)

    # -- closing -----------------------------------------------------------------------
    def shutdown(self) -> None:
        self.process.shutdown()

    def closeEvent(self, event) -> None:
        self.shutdown()
        super().closeEvent(event)

    def reject(self) -> None:  # Escape
        self.shutdown()
        super().reject()
