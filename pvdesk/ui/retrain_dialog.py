"""Training ▸ Retrain: choose data, head and settings; run ``python -m training`` as a child.

Left: the choices (this project's reviewed tiles, exported CSVs or a folder dataset; the
head; backbone, epochs, learning rate with the training package's defaults; the output
folder). Right: live progress (bar, ETA, the run's phases, train/validation curves for heads
with epochs, log tail) and, after a successful run, its metrics. A linear probe has no
epochs: its phases, each with a line saying what it does, take the place of the curves. The work is in pvdesk.app.retrain_plan / retrain_progress and
pvdesk.ui.retrain_process; this module only wires widgets to them.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QDialog,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from pvdesk.app.retrain_plan import HEADS, RetrainPlan, child_env
from pvdesk.app.retrain_plan import prepare_data as plan_data
from pvdesk.bundle_metrics import bundle_reports
from pvdesk.errors import PvdeskError
from pvdesk.ui.curves_canvas import CurvesCanvas
from pvdesk.ui.glossary import GLOSSARY, tip_text
from pvdesk.ui.metrics_view import MetricsPanel
from pvdesk.ui.retrain_form import HEAD_LABELS, HEAD_TERMS, DataBox, ModelBox
from pvdesk.ui.retrain_phases import PhaseTracker, PhaseView
from pvdesk.ui.retrain_process import RetrainProcess
from pvdesk.ui.screen_fit import fit_to_screen

ERROR_STYLE = "color: #b00020;"
WARNING_STYLE = ("QLabel { background: #fff4ce; color: #4d3800; border: 1px solid #c9a227; "
                 "padding: 4px; }")
MAX_WARNINGS = 3  # shown at once (all are in the log)
CHOOSE, PROGRESS, RESULTS = range(3)  # the tabs


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
        boxes = QHBoxLayout()
        self.data = DataBox(store_note, one_slide)
        self.model = ModelBox()
        boxes.addWidget(self.data, 1)
        boxes.addWidget(self.model, 1)
        sl.addLayout(boxes)
        what = QGroupBox("What Start training will do")
        wl = QVBoxLayout(what)
        self.head_note = QLabel()
        self.head_note.setWordWrap(True)
        self.head_note.setTextFormat(Qt.TextFormat.RichText)
        self.preview = PhaseView()
        self.setup_note = QLabel("It runs in the background: the Progress tab shows how it "
                                 "goes, the Results tab its scores on images it never saw "
                                 "in training.")
        self.setup_note.setWordWrap(True)
        self.setup_note.setStyleSheet("color: #444444;")
        wl.addWidget(self.head_note)
        wl.addWidget(self.preview)
        wl.addWidget(self.setup_note)
        sl.addWidget(what)
        sl.addStretch(1)

        self.tabs = QTabWidget()
        prog = QWidget()
        pl = QVBoxLayout(prog)
        self.status = QLabel()
        self.status.setWordWrap(True)
        self._set_status("Choose the data and the head, then Start training.")
        self.bar = QProgressBar()
        self.bar.setRange(0, 1000)
        self.bar.setValue(0)
        self.bar.setTextVisible(False)
        self.phases_title = QLabel()
        self.phases_title.setWordWrap(True)
        self.phases_title.setStyleSheet("font-weight: bold;")
        self.phases = PhaseView()
        self.curves = CurvesCanvas()
        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(500)
        self.log.setPlaceholderText("The training log appears here.")
        self.log.setMinimumHeight(80)
        pl.addWidget(self.status)
        pl.addWidget(self.bar)
        pl.addWidget(self.phases_title)
        pl.addWidget(self.phases)
        pl.addWidget(self.curves, 3)
        self.phase_room = QWidget()  # where the curves would be, for a linear probe
        pl.addWidget(self.phase_room, 1)
        log_title = QLabel("Training log (technical details, for troubleshooting)")
        log_title.setStyleSheet("color: #444444;")
        pl.addWidget(log_title)
        pl.addWidget(self.log, 2)
        self.results = MetricsPanel()
        self.tabs.addTab(setup, "1  Choose data and model")
        self.tabs.addTab(prog, "2  Progress")
        self.tabs.addTab(self.results, "3  Results")

        self.error = QLabel()
        self.error.setWordWrap(True)
        self.error.setStyleSheet(ERROR_STYLE)
        self.error.hide()
        self.warnings = QLabel()  # what may make the results wrong: never only in the log
        self.warnings.setWordWrap(True)
        self.warnings.setStyleSheet(WARNING_STYLE)
        self.warnings.hide()
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
        lay.addWidget(self.tabs, 1)
        lay.addWidget(self.warnings)
        lay.addWidget(self.error)
        lay.addLayout(buttons)
        fit_to_screen(self, 1180, 720)
        self.model.head.currentIndexChanged.connect(self._show_head)
        self._show_head()

    def _show_head(self, *_) -> None:
        """Before a run: what the Progress tab will show for the chosen head."""
        kind = self.model.kind
        if not self.running:
            self._set_tracker(PhaseTracker(kind))
        self.preview.set_tracker(PhaseTracker(kind), detailed=True)
        label = HEAD_LABELS.get(kind, kind)
        plain = GLOSSARY[HEAD_TERMS.get(kind, ("head",))[0]].plain
        self.head_note.setText(f"<b>{label}.</b> {plain}")
        tip_text(self.head_note, f"{label} {plain}")

    def _set_tracker(self, tracker: PhaseTracker) -> None:
        self.tracker = tracker
        linear = not tracker.has_epochs
        self.phases.set_tracker(tracker, detailed=linear)
        self.curves.setVisible(not linear)
        self.phase_room.setVisible(linear)
        title = ("A linear probe has no epochs, so no curves are drawn: it goes through "
                 "these phases." if linear else "Phases")
        self.phases_title.setText(title)
        tip_text(self.phases_title, title)

    def _show_warnings(self, warnings: list[str]) -> None:
        shown = warnings[-MAX_WARNINGS:]
        more = len(warnings) - len(shown)
        text = "\n".join(f"⚠ {w}" for w in shown) + (
            f"\n(and {more} more in the training log)" if more else "")
        self.warnings.setText(text)
        tip_text(self.warnings, text)
        self.warnings.setVisible(bool(warnings))

    def _set_status(self, text: str) -> None:
        self.status.setText(text)
        tip_text(self.status, text)

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
        self._show_warnings([])
        self.log.clear()
        self.curves.clear()
        self._set_tracker(PhaseTracker(self.plan.head))
        self.results.show_report(None)
        self.bar.setRange(0, 0)
        self._set_status("Starting the training process…")
        self.tabs.setCurrentIndex(PROGRESS)
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
            self._set_status("Cancelling…")
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
        self.tracker.apply(ev)
        self.phases.refresh()
        if ev.get("event") == "warning":
            self._show_warnings(st.warnings)
        cur = self.tracker.current
        detail = self.tracker.detail(cur) if cur is not None else ""
        self._set_status(f"{self.tracker.title(cur)}: {detail}" if detail
                         else self.tracker.title(cur) if cur is not None else st.status_text())
        if ev.get("event") == "epoch":
            self.curves.show_curves(st.curves())

    def _on_finished(self, outcome: str, message: str) -> None:
        self.bar.setRange(0, 1000)
        if outcome == "done":
            self.bar.setValue(1000)
            self.bundle_folder = message
            reports = bundle_reports(message)
            self.results.show_report(reports[0] if reports else None,
                                     "The bundle was exported without a held-out evaluation.")
            m = reports[0].metrics if reports else {}
            acc, n = m.get("accuracy"), m.get("n")
            self._set_status(f"Done: the new model {Path(message).name}" + (
                f" (accuracy {acc:.3f} on {n} held-out images)" if acc is not None and n
                else f" (accuracy {acc:.3f})" if acc is not None else ""))
            self.status.setToolTip(f"{message}\n\n{self.status.toolTip()}".strip())
            self.tracker.apply({"event": "done"})
            self.tabs.setCurrentIndex(RESULTS)
            self.trained.emit(message)
        elif outcome == "cancelled":
            self.bar.setValue(0)
            self.tracker.end("stopped")
            self._set_status("Cancelled. Nothing was loaded; start again when ready.")
        else:
            self.bar.setValue(0)
            self.tracker.end("failed" if outcome == "error" else "stopped")
            self._set_status("Training failed." if outcome == "error" else message)
            self.show_message(("Training failed: " if outcome == "error" else "") + message)
        self.phases.refresh()
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
