"""The training child process (``python -m training train ... --progress json``) under QProcess.

stdout carries JSON lines (parsed by :mod:`pvdesk.app.retrain_progress`); stderr is kept as a
tail for error messages. ``cancel()`` asks the child to stop (SIGTERM: the training CLI
stops like Ctrl-C, leaving a resumable folder) and kills it after a grace period;
``shutdown()`` does the same but waits, so closing the app never leaves an orphan.
"""

from __future__ import annotations

import os
import signal
import sys
from collections import deque
from pathlib import Path

from PySide6.QtCore import QObject, QProcess, QProcessEnvironment, QTimer, Signal

from pvdesk.app.retrain_progress import LineBuffer, RunState

GRACE_MS = 3000


def _descendants(pid: int) -> list[int]:
    """Child processes of ``pid`` (Linux /proc; empty elsewhere), deepest last."""
    proc = Path("/proc")
    if not proc.is_dir():
        return []
    parents: dict[int, list[int]] = {}
    for d in proc.iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
            ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        parents.setdefault(ppid, []).append(int(d.name))
    out, todo = [], [pid]
    while todo:
        kids = parents.get(todo.pop(), [])
        out += kids
        todo += kids
    return out


class RetrainProcess(QObject):
    """One training run at a time. Signals: event(dict), log(str), finished(outcome, message).

    outcome: "done" (message: the bundle folder), "error" (message: why), "stopped" (the
    child stopped itself: resumable), "cancelled" (the user cancelled).
    """

    event = Signal(dict)
    log = Signal(str)
    finished = Signal(str, str)

    def __init__(self, parent=None, grace_ms: int = GRACE_MS):
        super().__init__(parent)
        self.grace_ms = grace_ms
        self.state = RunState()
        self.stderr_tail: deque[str] = deque(maxlen=40)
        self.proc: QProcess | None = None
        self.pid: int | None = None
        self._out = LineBuffer()
        self._err = LineBuffer()
        self._cancelled = False
        self._kill_timer = QTimer(self)
        self._kill_timer.setSingleShot(True)
        self._kill_timer.timeout.connect(self._kill)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.state() != QProcess.ProcessState.NotRunning

    def start(self, command: list[str], env: dict[str, str] | None = None,
              cwd: str | None = None, epochs: int | None = None) -> None:
        """Run ``command``; ``epochs``: how many the run is expected to have (progress)."""
        if self.running:
            raise RuntimeError("a training run is already in progress")
        self.state = RunState(epochs=epochs)
        self.stderr_tail.clear()
        self._out, self._err = LineBuffer(), LineBuffer()
        self._cancelled = False
        proc = QProcess(self)
        if env is not None:
            qenv = QProcessEnvironment()
            for k, v in env.items():
                qenv.insert(k, v)
            proc.setProcessEnvironment(qenv)
        if cwd:
            proc.setWorkingDirectory(cwd)
        proc.readyReadStandardOutput.connect(self._read_out)
        proc.readyReadStandardError.connect(self._read_err)
        proc.finished.connect(self._on_finished)
        proc.errorOccurred.connect(self._on_error)
        self.proc = proc
        self.log.emit("$ " + " ".join(command))
        proc.start(command[0], command[1:])
        if proc.waitForStarted(10000):
            self.pid = int(proc.processId())

    # -- output ----------------------------------------------------------------------------
    def _read_out(self) -> None:
        if self.proc is not None:
            self._lines(self._out.feed(self.proc.readAllStandardOutput().data()))

    def _lines(self, lines: list[str]) -> None:
        for line in lines:
            before = self.state.said
            ev = self.state.feed(line)
            for text in self.state.new_lines(before):
                self.log.emit(text)
            if ev is not None:
                self.event.emit(ev)

    def _read_err(self) -> None:
        if self.proc is not None:
            self._err_lines(self._err.feed(self.proc.readAllStandardError().data()))

    def _err_lines(self, lines: list[str]) -> None:
        for line in lines:
            if line.strip():
                self.stderr_tail.append(line)
                self.log.emit(line)

    # -- ending ----------------------------------------------------------------------------
    def cancel(self) -> None:
        """Ask the child to stop; kill it when it has not stopped after the grace period."""
        if not self.running:
            return
        self._cancelled = True
        self.proc.terminate()
        self._kill_timer.start(self.grace_ms)

    def _kill(self) -> None:
        if self.running:
            for pid in _descendants(self.pid or 0):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    continue  # it ended on its own meanwhile
                except OSError as exc:  # not ours to kill: say so, kill the rest
                    print(f"pvdesk: could not stop training process {pid}: {exc}",
                          file=sys.stderr)
            self.proc.kill()

    def shutdown(self, grace_ms: int | None = None) -> None:
        """Stop the child and wait for it (closing the dialog or the app)."""
        if not self.running:
            return
        self._cancelled = True
        self.proc.terminate()
        if not self.proc.waitForFinished(self.grace_ms if grace_ms is None else grace_ms):
            self._kill()
            self.proc.waitForFinished(5000)

    def _on_error(self, error) -> None:
        if error == QProcess.ProcessError.FailedToStart and self.proc is not None:
            msg = f"could not start the training process: {self.proc.errorString()}"
            self.proc = None
            self.finished.emit("error", msg)

    def _on_finished(self, code: int, status) -> None:
        self._kill_timer.stop()
        self._read_out()
        self._read_err()
        self._lines(self._out.flush())
        self._err_lines(self._err.flush())
        st = self.state
        tail = "\n".join(list(self.stderr_tail)[-8:])
        if self._cancelled:
            outcome, msg = "cancelled", "training cancelled"
        elif st.outcome == "done" and code == 0:
            outcome, msg = "done", str(st.final.get("out") or "")
        elif st.outcome == "stopped":
            outcome, msg = "stopped", str(st.final.get("message") or "stopped")
        else:
            outcome = "error"
            msg = st.error_text(tail)
            if status == QProcess.ExitStatus.CrashExit:
                msg = f"the training process crashed\n{tail}".strip()
            elif st.outcome is None and code != 0:
                msg = f"training exited with status {code}\n{tail}".strip()
        self.finished.emit(outcome, msg)
