"""What the team-review window tests share: the environment (a stand-in model, warnings
recorded), acting as a reviewer in a project, running the model, switching reviewer and
labelling tiles from the keyboard.

The model is the engine's FakeClassifier (``Bundle.load`` patched), as in test_ui_review:
the subject is the reviewers' path through the window and the store.
"""

from __future__ import annotations

from pathlib import Path

from inference_fakes import FakeClassifier
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox
from ui_support import run_and_wait

from pvdesk.models.bundle import Bundle
from pvdesk.paths import sample_slide

KEYS = {str(k): getattr(Qt.Key, f"Key_{k}") for k in range(9)} | {"u": Qt.Key.Key_U}


def fake_model_env(monkeypatch) -> list[str]:
    """Offline, every model answered by the FakeClassifier, QMessageBox.warning recorded (the
    list returned) instead of shown."""
    monkeypatch.setenv("PVDESK_OFFLINE", "1")
    monkeypatch.setattr(Bundle, "load", lambda self, *a, **k: FakeClassifier(self.classes))
    seen: list[str] = []
    monkeypatch.setattr(QMessageBox, "warning", staticmethod(
        lambda parent, title, text, *a, **k: seen.append(text)))
    return seen


def acked(qtbot, w, timeout=10000):
    qtbot.waitUntil(lambda: w.review.session is not None and w.review.session.pending == 0,
                    timeout=timeout)


def open_project(qtbot, w, project: Path, reviewer: str) -> None:
    """Act as ``reviewer`` in ``project`` on the sample slide."""
    w.settings.reviewer = reviewer
    w.review.use_project(project)
    if w.opened is None:
        w.open_path(sample_slide())
    qtbot.waitUntil(lambda: w.review.ctx is not None and w.review.store is not None
                    and w.review.store.reviewer == reviewer, timeout=20000)


def run_model(qtbot, w) -> None:
    """demo-resnet50 (patched) on the open slide, every tile of the run in the session."""
    run_and_wait(qtbot, w, batch_size=8, rows="all")


def switched(qtbot, w, name: str, role=None, blinded=None) -> None:
    """Review ▸ Switch reviewer… (the dialog's choice), then wait for the reload."""
    assert w.review.team.switch_reviewer(name, role)
    qtbot.waitUntil(lambda: w.review.session is not None
                    and w.review.session.store.reviewer == name
                    and w.review.team.state is not None
                    and w.review.team.state.reviewer == name
                    and (blinded is None or w.review.team.blinded == blinded), timeout=20000)


def label_tiles(qtbot, w, coords, keys) -> None:
    """Press a label key on each tile (made current as a click on it would)."""
    s = w.review.session
    by_xy = {(r.tile_x, r.tile_y): r.tile_id for r in s.all.values()}
    w.activateWindow()
    w.view.setFocus()  # review keys go to the slide view, never to a field that had focus
    for xy, key in zip(coords, keys, strict=True):
        s.goto_tile(by_xy[xy])
        w.review.sync.refresh(center=True)
        qtbot.keyClick(w.view, KEYS[key])
    acked(qtbot, w)
