"""The training child's JSON-lines progress (``--progress json``), read without Qt.

The schema is documented in ``training/progress.py``: every line is an object with
``event`` (start, note, warning, stage, step, epoch, done, stopped, error) and ``t``.
:class:`LineBuffer` splits a byte stream into lines; :class:`RunState` folds events into
what the dialog shows (stage, fraction, ETA, the epoch history for the curves, messages,
the final outcome). Lines that are not JSON objects are kept as log text, never fatal.
"""

from __future__ import annotations

import json
from collections import deque

FINAL = ("done", "stopped", "error")
STAGE_NAMES = {"embeddings": "Computing embeddings", "train": "Training",
               "evaluate": "Evaluating", "report": "Writing the report"}


def parse_line(line: str) -> dict | None:
    """The event of one stdout line, or None when it is not an event."""
    line = line.strip()
    if not line.startswith("{"):
        return None
    try:
        ev = json.loads(line)
    except ValueError:
        return None
    return ev if isinstance(ev, dict) and isinstance(ev.get("event"), str) else None


class LineBuffer:
    """Bytes in, complete text lines out (a partial last line waits for its newline)."""

    def __init__(self):
        self._rest = b""

    def feed(self, data: bytes) -> list[str]:
        data = self._rest + bytes(data)
        *lines, self._rest = data.split(b"\n")
        return [ln.decode("utf-8", "replace").rstrip("\r") for ln in lines]

    def flush(self) -> list[str]:
        rest, self._rest = self._rest, b""
        return [rest.decode("utf-8", "replace")] if rest.strip() else []


def format_eta(seconds) -> str:
    if seconds is None:
        return ""
    s = int(round(max(0.0, float(seconds))))
    if s >= 3600:
        return f"{s // 3600} h {s % 3600 // 60:02d} min"
    if s >= 60:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s} s"


class RunState:
    """What one training run has reported so far."""

    def __init__(self, log_lines: int = 400, epochs: int | None = None):
        self.info: dict = {}  # the start event
        self.stage: str | None = None
        self.stage_total: int | None = None
        self.step = 0
        self.steps = 0
        self.step_epoch: int | None = None
        self.epoch: int | None = None
        self.epochs: int | None = epochs  # expected (the start event may not know them)
        self.eta_s: float | None = None
        self.history: list[dict] = []  # epoch events
        self.warnings: list[str] = []
        self.log: deque[str] = deque(maxlen=log_lines)
        self.final: dict | None = None
        self.said = 0  # lines ever added to the log (the log keeps the last log_lines)

    def _say(self, text: str) -> None:
        self.log.append(text)
        self.said += 1

    def new_lines(self, since: int) -> list[str]:
        """The log lines added after ``said`` was ``since``."""
        n = min(self.said - since, len(self.log))
        return list(self.log)[len(self.log) - n:] if n > 0 else []

    # -- folding ------------------------------------------------------------------------
    def apply(self, ev: dict) -> None:
        kind = ev.get("event")
        if kind == "start":
            self.info = ev
            self.epochs = ev.get("epochs") or self.epochs
            self._say(f"{ev.get('verb', 'run')}: {ev.get('head', '')} → {ev.get('out')}"
                            f" ({len(ev.get('classes') or [])} classes)")
        elif kind in ("note", "warning"):
            msg = str(ev.get("message", ""))
            if kind == "warning":
                self.warnings.append(msg)
            self._say(f"{kind}: {msg}")
        elif kind == "stage":
            self.stage, self.stage_total = ev.get("stage"), ev.get("total")
            self.step, self.steps, self.eta_s = 0, ev.get("total") or 0, None
            self.step_epoch = None
            self._say(f"— {STAGE_NAMES.get(self.stage, self.stage)}")
        elif kind == "step":
            self.stage = ev.get("stage") or self.stage
            self.step, self.steps = ev.get("step") or 0, ev.get("steps") or 0
            self.step_epoch = ev.get("epoch")
            if self.epoch is None or self.stage != "train":
                self.eta_s = ev.get("eta_s")
        elif kind == "epoch":
            self.history.append(ev)
            self.epoch, self.epochs = ev.get("epoch"), ev.get("epochs") or self.epochs
            self.eta_s = ev.get("eta_s")
            self._say(self._epoch_line(ev))
        elif kind in FINAL:
            self.final = ev
            if kind == "done":
                self.eta_s = 0
            self._say(f"{kind}: {ev.get('message') or ev.get('out') or ''}".rstrip(": "))

    def feed(self, line: str) -> dict | None:
        ev = parse_line(line)
        if ev is None:
            if line.strip():
                self._say(line.rstrip())
            return None
        self.apply(ev)
        return ev

    @staticmethod
    def _epoch_line(ev: dict) -> str:
        def f(key, fmt="{:.4f}"):
            v = ev.get(key)
            return "-" if v is None else fmt.format(v)

        return (f"epoch {ev.get('epoch')}/{ev.get('epochs')}: train loss {f('train_loss')} "
                f"acc {f('train_acc', '{:.3f}')}, val loss {f('val_loss')} acc "
                f"{f('val_acc', '{:.3f}')}" + (" *" if ev.get("improved") else ""))

    # -- reading ------------------------------------------------------------------------
    @property
    def outcome(self) -> str | None:
        return None if self.final is None else self.final.get("event")

    def fraction(self) -> float | None:
        """Progress through the current stage, 0..1 (epochs for a trained head), or None."""
        if self.stage == "train" and self.epochs:
            done = self.history[-1].get("epoch") or 0 if self.history else 0
            within = (self.step / self.steps if self.steps and self.step_epoch == done + 1
                      else 0.0)
            return min(1.0, (done + within) / self.epochs)
        if self.steps:
            return min(1.0, self.step / self.steps)
        return None

    def status_text(self) -> str:
        name = STAGE_NAMES.get(self.stage or "", self.stage or "Starting")
        parts = [name]
        if self.stage == "train" and self.epoch is not None and self.epochs:
            parts.append(f"epoch {self.epoch}/{self.epochs}")
        elif self.steps:
            parts.append(f"{self.step}/{self.steps}")
        eta = format_eta(self.eta_s)
        if eta and self.final is None:
            parts.append(f"about {eta} left")
        return ", ".join(parts)

    def curves(self) -> dict[str, list]:
        """Per-epoch series for the plots: epoch, train/val loss and accuracy."""
        keys = ("epoch", "train_loss", "val_loss", "train_acc", "val_acc")
        return {k: [h.get(k) for h in self.history] for k in keys}

    def error_text(self, stderr_tail: str = "") -> str:
        """Why the run failed: the error event's message, else the last stderr lines."""
        if self.final and self.final.get("event") == "error":
            return str(self.final.get("message") or "training failed")
        tail = stderr_tail.strip()
        return tail or "training failed without a message"
