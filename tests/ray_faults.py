"""Fault injection for the Ray cohort tests, installed in every Ray worker process by the
test's ``ray.init(runtime_env={"worker_process_setup_hook": "ray_faults.install"})``.

When the test arms it (creates ``$PVDESK_FAULT_DIR/armed``), the first worker to finish a
batch of a slide takes the file (a rename: exactly one worker does) and kills its own
process with SIGKILL, in the middle of that slide's task. ``fired-<pid>`` records which.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path


def _maybe_die() -> None:
    folder = os.environ.get("PVDESK_FAULT_DIR")
    if not folder:
        return
    try:
        os.rename(Path(folder) / "armed", Path(folder) / f"fired-{os.getpid()}")
    except FileNotFoundError:  # not armed, or another worker took it
        return
    os.kill(os.getpid(), signal.SIGKILL)


def install() -> None:
    from pvdesk.inference.engine import InferenceEngine

    original = InferenceEngine.run

    def run(self):
        for i, batch in enumerate(original(self)):
            yield batch
            if i == 0:
                _maybe_die()

    InferenceEngine.run = run
