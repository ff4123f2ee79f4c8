"""Team review in the window: switching reviewer, blinded reading, merging two readers'
projects, agreement (equal to scikit-learn's), adjudication of the disputed tiles, and a
head retrained on the consensus export.

The model is the engine's FakeClassifier (``Bundle.load`` patched), as in test_ui_review:
the subject is the reviewers' path through the window and the store.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from inference_fakes import FakeClassifier
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox

from pvdesk.models.bundle import Bundle
from pvdesk.paths import sample_slide
from pvdesk.review.blind_order import random_keys
from pvdesk.taxonomy import label_for_key
from pvdesk.ui.main_window import MainWindow
from pvdesk.ui.worker import RunRequest

SHOTS = Path(os.environ.get("PVDESK_SHOTS", "/tmp/pvdesk-shots"))
KEYS = {str(k): getattr(Qt.Key, f"Key_{k}") for k in range(9)} | {"u": Qt.Key.Key_U}


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("PVDESK_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PVDESK_OFFLINE", "1")
    monkeypatch.setattr(Bundle, "load", lambda self, *a, **k: FakeClassifier(self.classes))
    seen: list[str] = []
    monkeypatch.setattr(QMessageBox, "warning", staticmethod(
        lambda parent, title, text, *a, **k: seen.append(text)))
    return seen


def acked(qtbot, w, timeout=10000):
    qtbot.waitUntil(lambda: w.review.session is not None and w.review.session.pending == 0,
                    timeout=timeout)


def window(qtbot, size=(1366, 768)) -> MainWindow:
    w = MainWindow()
    qtbot.addWidget(w)
    w.resize(*size)
    w.show()
    qtbot.waitExposed(w)
    return w


def open_project(qtbot, w, project: Path, reviewer: str) -> None:
    """Act as ``reviewer`` in ``project`` on the sample slide."""
    w.settings.reviewer = reviewer
    w.review.use_project(project)
    if w.opened is None:
        w.open_path(sample_slide())
    qtbot.waitUntil(lambda: w.review.ctx is not None and w.review.store is not None
                    and w.review.store.reviewer == reviewer, timeout=20000)


def run_model(qtbot, w) -> None:
    states: list[str] = []
    w.runs.finished.connect(states.append)
    assert w.start_run(RunRequest(["demo-resnet50"], device="cpu", tile_um=112.0, batch_size=8))
    qtbot.waitUntil(lambda: bool(states), timeout=60000)
    assert states == ["done"]
    n = len(w.overlay.info.grid.tiles)
    qtbot.waitUntil(lambda: w.review.session is not None
                    and len(w.review.session.all) == n, timeout=20000)


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
    for xy, key in zip(coords, keys, strict=True):
        s.goto_tile(by_xy[xy])
        w.review.sync.refresh(center=True)
        qtbot.keyClick(w.view, KEYS[key])
    acked(qtbot, w)


def test_blinded_reading_shows_nothing_of_the_model_or_other_readers(qtbot, env, tmp_path):
    w = window(qtbot)
    project = tmp_path / "study.pvdb"
    open_project(qtbot, w, project, "alice")
    run_model(qtbot, w)
    r, s = w.review, w.review.session
    r.set_mode(True)
    first = [(t.tile_x, t.tile_y) for t in s.entries[:5]]
    label_tiles(qtbot, w, first, ["5", "5", "1", "3", "0"])
    assert r.team.label.text() == "Reviewer: alice"
    assert w.overlay.layer.visible and w.overlay.panel.isEnabled()

    switched(qtbot, w, "bob")
    assert r.team.set_reading(True, "random", 7)  # Review ▸ Blinded reading…
    qtbot.waitUntil(lambda: r.team.blinded and r.session is not None
                    and r.session.order == "random", timeout=20000)
    s = r.session
    assert s.store.reviewer == "bob" and s.store.setting("blinded") is True
    assert r.team.label.text() == "Reviewer: bob · BLINDED"
    # the queue: nothing of the model, and in the stored seed's order
    model, table = r.dock.model, r.dock.table
    assert table.isColumnHidden(1) and table.isColumnHidden(2)
    keys = random_keys(s.entries, 7)
    assert list(keys) == sorted(keys)
    classes = [c for c in s.entries[0].classes]
    for row in range(model.rowCount()):
        for col in (1, 2):
            assert model.data(model.index(row, col)) is None
        tip = model.data(model.index(row, 0), Qt.ItemDataRole.ToolTipRole)
        assert "entropy" not in tip and not any(c.replace("_", " ") in tip.lower()
                                                for c in classes)
        assert model.data(model.index(row, 3)) == "–"  # alice's labels are not bob's
    assert not r.dock.filter_form.isRowVisible(r.dock.klass)
    assert not r.dock.confirm.isVisible()
    # no heatmap, its controls off, no probabilities under the cursor
    assert not w.overlay.layer.visible and not w.overlay.panel.isEnabled()
    assert "Blinded reading" in w.overlay.panel.hover.text()
    t = s.entries[0]
    w.overlay.hover(t.tile_x + 10, t.tile_y + 10, True)
    assert "Blinded reading" in w.overlay.panel.hover.text() and not w.view.toolTip()
    assert not r.layer.reviewed  # no other reader's outlines
    # Enter must not confirm a prediction nobody has seen
    r.set_mode(True)
    w.activateWindow()
    current = s.current
    qtbot.keyClick(w.view, Qt.Key.Key_Return)
    acked(qtbot, w)
    assert s.store.decision(current.tile_id).status == "unreviewed"
    assert "Blinded reading" in w.status.currentMessage()
    qtbot.keyClick(w.view, Qt.Key.Key_3)
    acked(qtbot, w)
    d = s.store.decision(current.tile_id)
    assert d.label == label_for_key("3") and d.reviewer == "bob"
    row = s.position(current.tile_id)
    assert model.data(model.index(row, 3)).startswith("● 3")  # no ✓ / ✎: that would tell
    assert [x.tile_id for x in r.layer.reviewed] == [current.tile_id]
    qtbot.wait(300)
    SHOTS.mkdir(parents=True, exist_ok=True)
    w.grab().save(str(SHOTS / "team_blinded_1366x768.png"))

    # blinded off again: the model comes back
    assert r.team.set_reading(False)
    qtbot.waitUntil(lambda: r.team.state is not None and not r.team.state.blinded_setting
                    and r.session is not None, timeout=20000)
    assert not table.isColumnHidden(1) and w.overlay.panel.isEnabled()
    assert r.team.label.text() == "Reviewer: bob"
    assert not env
