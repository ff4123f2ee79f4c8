"""Progress reporting: tqdm bars on a terminal, or JSON lines on stdout for the GUI.

``--progress`` chooses: ``auto`` (tqdm when stderr is a terminal, else plain lines),
``tqdm``, ``plain`` (one line per epoch and message on stderr), ``json`` or ``none``.

JSON-lines schema (``--progress json``)
---------------------------------------
One JSON object per line on stdout, flushed at once; nothing else is written to stdout
in that mode. Every event has ``event`` (its type) and ``t`` (seconds since the run
started). Numbers that are unknown are ``null``. Events, in the order they come:

``start``    verb ("split", "train", "evaluate"), plus what the verb knows up front: head,
             backbone, out, classes, counts ({split: {class: images}}), epochs, seed.
``note``     message: something the user should know (e.g. "no ImageNet weights: random init").
``warning``  message: something that may make results wrong (e.g. too few patients).
``stage``    stage ("embeddings", "train", "evaluate", "report", ...), total (units or null).
``step``     stage, step (1-based, within the stage or epoch), steps, epoch (1-based or
             null), loss (last batch, or null), eta_s (the stage's remaining seconds, or
             null). Sent at most every 0.25 s, and always for the last step.
``epoch``    epoch, epochs, train_loss, train_acc, val_loss, val_acc, val_macro_f1, lr,
             best_epoch, best_val_macro_f1, improved (bool), elapsed_s, eta_s (whole run).
``done``     out (the bundle or report folder), metrics (accuracy, balanced_accuracy,
             macro_f1, weighted_f1, ece, benign/malignant accuracy, n, split; null when not
             evaluated), elapsed_s.
``stopped``  reason ("stop-after" or "interrupted"), epoch (last finished, or null),
             resumable (true: rerun the same command to resume), message, exit_code (3 or 130).
``error``    message, exit_code (2: a user-facing error, one line naming the file and the
             problem).

A run ends with exactly one ``done``, ``stopped`` or ``error`` event (a crash in the code
itself ends with a Python traceback on stderr and no final event).
"""

from __future__ import annotations

import json
import math
import sys
import time

MODES = ("auto", "tqdm", "plain", "json", "none")
STEP_INTERVAL_S = 0.25


def _clean(v):
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict):
        return {str(k): _clean(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_clean(x) for x in v]
    if hasattr(v, "item") and callable(v.item):  # numpy / torch scalars
        return _clean(v.item())
    return v


class Reporter:
    """One per command run. ``emit`` sends a raw event; the helpers format common ones."""

    def __init__(self, mode: str = "auto", out=None, err=None):
        if mode not in MODES:
            raise ValueError(f"progress mode {mode!r}: expected one of {', '.join(MODES)}")
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        if mode == "auto":
            mode = "tqdm" if getattr(self.err, "isatty", lambda: False)() else "plain"
        self.mode = mode
        self.started = time.monotonic()
        self._last_step = 0.0
        self._bar = None
        self._stage = None

    @property
    def json(self) -> bool:
        return self.mode == "json"

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def emit(self, event: str, **fields) -> None:
        if self.mode != "json":
            return
        rec = {"event": event, "t": round(self.elapsed(), 3), **_clean(fields)}
        self.out.write(json.dumps(rec, allow_nan=False) + "\n")
        self.out.flush()

    def _say(self, text: str) -> None:
        if self.mode in ("none", "json"):
            return
        if self._bar is not None:
            from tqdm import tqdm

            tqdm.write(text, file=self.err)
        else:
            print(text, file=self.err, flush=True)

    # -- messages ----------------------------------------------------------------------------
    def start(self, verb: str, **fields) -> None:
        self.emit("start", verb=verb, **fields)

    def note(self, message: str) -> None:
        self.emit("note", message=message)
        self._say(f"note: {message}")

    def warning(self, message: str) -> None:
        self.emit("warning", message=message)
        self._say(f"WARNING: {message}")

    def info(self, message: str) -> None:
        """A plain line for people (not sent in JSON mode)."""
        self._say(message)

    # -- stages and steps -------------------------------------------------------------------
    def stage(self, stage: str, total: int | None = None) -> None:
        self.close_bar()
        self._stage = stage
        self._stage_started = time.monotonic()
        self.emit("stage", stage=stage, total=total)
        if self.mode == "tqdm" and total:
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=stage, file=self.err, leave=False,
                             dynamic_ncols=True)

    def step(self, step: int, steps: int, epoch: int | None = None,
             loss: float | None = None, eta_s: float | None = None) -> None:
        if self._bar is not None:
            if self._bar.total != steps or step < self._bar.n:  # a new epoch starts over
                self._bar.reset(total=steps)
            self._bar.update(step - self._bar.n)
            if loss is not None:
                self._bar.set_postfix(loss=f"{loss:.4f}", refresh=False)
        now = time.monotonic()
        if step < steps and now - self._last_step < STEP_INTERVAL_S:
            return
        self._last_step = now
        if eta_s is None and step > 0:
            spent = now - self._stage_started
            eta_s = spent / step * (steps - step)
        self.emit("step", stage=self._stage, step=step, steps=steps, epoch=epoch,
                  loss=None if loss is None else float(loss),
                  eta_s=None if eta_s is None else round(eta_s, 1))

    def epoch(self, **fields) -> None:
        self.emit("epoch", **fields)
        f = _clean(fields)

        def num(k, fmt="{:.4f}"):
            v = f.get(k)
            return "-" if v is None else fmt.format(v)

        self._say(f"epoch {f.get('epoch')}/{f.get('epochs')}: train loss {num('train_loss')} "
                  f"acc {num('train_acc', '{:.3f}')}, val loss {num('val_loss')} acc "
                  f"{num('val_acc', '{:.3f}')} macro-F1 {num('val_macro_f1', '{:.3f}')}"
                  + (" *" if f.get("improved") else ""))

    def close_bar(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def done(self, out: str, metrics: dict | None = None) -> None:
        self.close_bar()
        self.emit("done", out=out, metrics=metrics, elapsed_s=round(self.elapsed(), 2))

    def error(self, message: str, exit_code: int = 2) -> None:
        self.close_bar()
        self.emit("error", message=message, exit_code=exit_code)
