"""The phases of a training run, in plain words, for the retrain dialog's Progress tab.

A CLIP head is trained in phases: describing every tile once (embeddings), training the head,
then writing the report; a ResNet50 fine-tune trains, scores the held-out images and writes
the report. A linear probe has no epochs, so it has no curves: its phases are what the
dialog shows instead, each with a line saying what it does. Heads with epochs show the same
list, compact, above their curves.

:class:`PhaseTracker` folds the child's JSON-lines events (``stage``, ``step``, ``epoch``
and the final ``done``/``stopped``/``error``; see pvdesk.app.retrain_progress) into one
state per phase; it holds no Qt. :class:`PhaseView` draws it.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QGridLayout, QLabel, QWidget

from pvdesk.app.retrain_progress import format_eta
from pvdesk.ui.glossary import tip_text

PHASES = {"clip-linear": ("embeddings", "train", "report"),
          "clip-mlp": ("embeddings", "train", "report"),
          "resnet50": ("train", "evaluate", "report")}
TRAIN_TITLE = {"clip-linear": "Training the linear probe", "clip-mlp": "Training the MLP head",
               "resnet50": "Fine-tuning ResNet50"}
TITLES = {"embeddings": "Describing each tile (embeddings)",
          "evaluate": "Scoring the held-out test images",
          "report": "Writing the report"}
WHAT = {
    "embeddings": "The backbone looks at every tile once and writes down what it sees as "
                  "numbers (its embeddings); the head learns from these, not from the pixels.",
    "train-linear": "It fits in one go for each of a few settings and keeps the one that "
                    "scores best on the validation images.",
    "train-epochs": "One epoch is one pass over the training tiles; the curves below show "
                    "each epoch's loss and accuracy, on training and validation images.",
    "evaluate": "Images kept out of training are classified to measure the new model.",
    "report": "The scores, the per-class table and the confusion matrix are saved with the "
              "new model and shown in the Results tab.",
}
MARKS = {"pending": "○", "running": "▶", "done": "✓", "failed": "✗", "stopped": "■",
         "skipped": "–"}
COLOURS = {"pending": "#555555", "running": "#0b4f8a", "done": "#1b5e20", "failed": "#b00020",
           "stopped": "#7a4f00", "skipped": "#555555"}


@dataclass
class Phase:
    key: str
    state: str = "pending"
    started: float | None = None
    ended: float | None = None
    step: int = 0
    steps: int = 0
    epoch: int | None = None
    epochs: int | None = None
    eta_s: float | None = None


class PhaseTracker:
    """One training run's phases, from its progress events."""

    def __init__(self, head: str | None = None):
        self.head = head
        self.phases = [Phase(k) for k in PHASES.get(head or "", ("train", "report"))]

    @property
    def has_epochs(self) -> bool:
        return self.head != "clip-linear"

    def phase(self, key: str) -> Phase:
        for p in self.phases:
            if p.key == key:
                return p
        p = Phase(key)  # a stage this head was not expected to have: before the report
        at = next((i for i, q in enumerate(self.phases) if q.key == "report"),
                  len(self.phases))
        self.phases.insert(at, p)
        return p

    @property
    def current(self) -> Phase | None:
        return next((p for p in self.phases if p.state == "running"), None)

    def apply(self, ev: dict) -> None:
        kind, t = ev.get("event"), ev.get("t")
        if kind == "start" and ev.get("head") and ev.get("head") != self.head \
                and self.current is None:
            self.__init__(ev["head"])
        elif kind == "stage" and ev.get("stage"):
            new = self.phase(str(ev["stage"]))
            for p in self.phases:
                if p is new:
                    break
                if p.state in ("pending", "running"):
                    p.state = "done" if p.state == "running" else "skipped"
                    p.ended = t
            new.state, new.started, new.ended = "running", t, None
            new.step, new.steps, new.eta_s = 0, ev.get("total") or 0, None
        elif kind == "step":
            p = self.current
            if p is not None:
                p.step, p.steps = ev.get("step") or 0, ev.get("steps") or p.steps
                p.eta_s = ev.get("eta_s")
                p.epoch = ev.get("epoch") or p.epoch
        elif kind == "epoch":
            p = self.current or self.phase("train")
            p.epoch, p.epochs, p.eta_s = ev.get("epoch"), ev.get("epochs"), ev.get("eta_s")
        elif kind == "done":
            for p in self.phases:
                if p.state == "running":
                    p.state, p.ended = "done", t
                elif p.state == "pending":
                    p.state = "skipped"
        elif kind in ("error", "stopped"):
            self.end("failed" if kind == "error" else "stopped", t)

    def end(self, state: str, t: float | None = None) -> None:
        """The run ended early (failed, stopped, cancelled): the running phase says so."""
        for p in self.phases:
            if p.state == "running":
                p.state, p.ended = state, t

    # -- words ------------------------------------------------------------------------------
    def title(self, p: Phase) -> str:
        if p.key == "train":
            return TRAIN_TITLE.get(self.head or "", "Training")
        return TITLES.get(p.key, p.key.capitalize())

    def what(self, p: Phase) -> str:
        if p.key == "train":
            return WHAT["train-epochs" if self.has_epochs else "train-linear"]
        return WHAT.get(p.key, "")

    def detail(self, p: Phase) -> str:
        unit = {"embeddings": "tiles", "evaluate": "images"}.get(p.key, "")
        if p.state == "pending":
            return ""
        if p.state == "skipped":
            return "not needed this time"
        parts = []
        if p.key == "train" and p.epoch and p.epochs:
            parts.append(f"epoch {p.epoch} of {p.epochs}")
        elif p.key == "train" and not self.has_epochs and p.steps:
            parts.append(f"setting {min(p.step, p.steps)} of {p.steps}" if p.state == "running"
                         else f"{p.steps} settings tried")
        elif p.steps:
            parts.append(f"{p.step} of {p.steps} {unit}".strip() if p.state == "running"
                         else f"{p.steps} {unit}".strip())
        if p.state == "running":
            if p.eta_s:
                parts.append(f"about {format_eta(p.eta_s)} left")
        elif p.state == "done":
            took = (p.ended - p.started) if p.ended is not None and p.started is not None \
                else None
            parts.append(f"done in {format_eta(took)}" if took and took >= 1 else "done")
        else:
            parts.append({"failed": "failed", "stopped": "stopped"}[p.state])
        return ", ".join(parts)


class PhaseView(QWidget):
    """The phases as rows: a mark, the phase in words, how far it is; with ``detailed``,
    a line under each saying what it does (for a linear probe, in place of curves)."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.grid = QGridLayout(self)
        self.grid.setContentsMargins(0, 4, 0, 4)
        self.grid.setHorizontalSpacing(8)
        self.grid.setVerticalSpacing(2)
        self.grid.setColumnStretch(2, 1)
        self.detailed = False
        self.tracker = PhaseTracker()
        self.rows: list[tuple[QLabel, QLabel, QLabel, QLabel]] = []

    def set_tracker(self, tracker: PhaseTracker, detailed: bool) -> None:
        self.tracker, self.detailed = tracker, detailed
        self.refresh()

    def refresh(self) -> None:
        phases = self.tracker.phases
        while len(self.rows) < len(phases):
            r = len(self.rows)
            mark, title, detail, what = QLabel(), QLabel(), QLabel(), QLabel()
            mark.setFixedWidth(self.fontMetrics().horizontalAdvance("▶") + 6)
            mark.setAlignment(Qt.AlignmentFlag.AlignCenter)
            what.setWordWrap(True)
            what.setStyleSheet("color: #444444; margin-bottom: 6px;")
            self.grid.addWidget(mark, 2 * r, 0)
            self.grid.addWidget(title, 2 * r, 1)
            self.grid.addWidget(detail, 2 * r, 2)
            self.grid.addWidget(what, 2 * r + 1, 1, 1, 2)
            self.rows.append((mark, title, detail, what))
        for i, (mark, title, detail, what) in enumerate(self.rows):
            if i >= len(phases):
                for w in (mark, title, detail, what):
                    w.hide()
                continue
            p = phases[i]
            colour = COLOURS[p.state]
            mark.setText(MARKS[p.state])
            mark.setStyleSheet(f"color: {colour}; font-weight: bold;")
            mark.setToolTip(p.state)
            text = self.tracker.title(p)
            title.setText(text)
            weight = "bold" if p.state == "running" else "normal"
            title.setStyleSheet(f"color: {colour}; font-weight: {weight};")
            tip_text(title, text, self.tracker.what(p))
            detail.setText(self.tracker.detail(p))
            detail.setStyleSheet(f"color: {colour};")
            what.setText(self.tracker.what(p))
            tip_text(what, what.text())
            for w in (mark, title, detail):
                w.show()
            what.setVisible(self.detailed)
