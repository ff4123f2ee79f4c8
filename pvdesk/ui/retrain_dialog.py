"""Training ▸ Retrain: choose data, head and settings; run ``python -m training`` as a child.

Left: the choices (this project's reviewed tiles, exported CSVs or a folder dataset; the
head; backbone, epochs, learning rate with the training package's defaults; the output
folder). Right: live progress (bar, ETA, train/validation curves, log tail) and, after a
successful run, its metrics. The work is in pvdesk.app.retrain_plan / retrain_progress and
pvdesk.ui.retrain_process; this module only wires widgets to them.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QDialog,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from pvdesk.app.retrain_plan import HEADS, RetrainPlan, child_env
from pvdesk.app.retrain_plan import prepare_data as plan_data
from pvdesk.bundle_metrics import bundle_reports
from pvdesk.errors import PvdeskError
from pvdesk.ui.curves_canvas import CurvesCanvas
from pvdesk.ui.metrics_view import MetricsPanel
from pvdesk.ui.retrain_form import DataBox, ModelBox
from pvdesk.ui.retrain_process import RetrainProcess

ERROR_STYLE = "color: #b00020;"


class RetrainDialog(QDialog):
    """Signals: trained(bundle folder) after a successful run; load_requested(folder)."""

    trained = Signal(str)
    load_requested = Signal(str)

    def __init__(self, parent=None, store_provider=None, python: str | None = None,
                 extra_args: list[str] | None = None, store_note: str = "",
                 one_slide: bool = False):
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
        self.data = DataBox(store_note, one_slide)
        self.model = ModelBox()
        sl.addWidget(self.data)
        sl.addWidget(self.model)
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

    # -- running -----------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self.process.running

    def show_message(self, message: str) -> None:
        self.error.setText(message)
        self.error.setVisible(bool(message))

    def start(self) -> bool:
        if self.running:
            return False
        self.show_message("")
        kind, paths = self.data.choice()
        m = self.model
        if kind != "store" and not any(paths):
            what = "add an exported CSV file." if kind == "csv" else "choose a dataset folder."
            self.show_message("Choose the data first: " + what)
            return False
        try:
            if m.out.text().strip():
                Path(m.out.text().strip()).expanduser().parent.mkdir(parents=True,
                                                                     exist_ok=True)
            data = plan_data(kind, paths, self.store_provider() if kind == "store" else None)
            self.plan = RetrainPlan(
                kind, data, head=m.kind, backbone=m.backbone_value(),
                epochs=m.epochs.value() or None, lr=m.lr.value() or None,
                out=m.out.text().strip(), device=m.device.currentText(),
                include_unreviewed=self.data.unreviewed.isChecked(),
                split_by_image=self.data.by_image.isChecked(), extra=self.extra_args)
        except (PvdeskError, OSError, ValueError) as exc:
            self.show_message(f"Cannot start: {exc}")
            return False
        self.bundle_folder = None
        self.log.clear()
        self.curves.clear()
        self.results.show_report(None)
        self.bar.setRange(0, 0)
        self.status.setText("Starting the training process…")
        self.tabs.setCurrentIndex(0)
        self._set_running(True)
        Path(self.plan.out).parent.mkdir(parents=True, exist_ok=True)  # the models folder
        self.process.start(self.plan.command(self.python), child_env(),
                           cwd=str(Path(self.plan.out).parent),
                           epochs=self.plan.epochs or HEADS[self.plan.head][1])
        return True

    def _set_running(self, on: bool) -> None:
        self.start_btn.setEnabled(not on)
        self.cancel_btn.setEnabled(on)
        self.close_btn.setText("Stop and close" if on else "Close")
        self.load_btn.setEnabled(not on and self.bundle_folder is not None)
        self.data.set_locked(on)
        self.model.set_locked(on)

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
        elif ev.get("event") == "stage" and ev.get("stage") == "train" and not st.epochs \
                and not st.history:
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

    def reject(self) -> None:
        """Escape does not stop a training run (Cancel or Stop and close do)."""
        if not self.running:
            super().reject()
