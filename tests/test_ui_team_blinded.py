"""Team review in the window, one reader at a time: blinded reading shows nothing of the model
or of other readers, switching reviewer is explicit, blinded patch-grid items. Merging and
adjudication are in tests/test_ui_team_merge.py."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from team_window_support import (
    KEYS,
    acked,
    fake_model_env,
    label_tiles,
    open_project,
    run_model,
    switched,
)
from ui_support import show_window

from pvdesk.review.blind_order import random_keys
from pvdesk.taxonomy import label_for_key

SHOTS = Path(os.environ.get("PVDESK_SHOTS", "/tmp/pvdesk-shots"))


@pytest.fixture
def env(monkeypatch, pvdesk_home):
    return fake_model_env(monkeypatch)


def test_blinded_reading_shows_nothing_of_the_model_or_other_readers(qtbot, env, tmp_path):
    w = show_window(qtbot)
    project = tmp_path / "study.pvdb"
    open_project(qtbot, w, project, "alice")
    run_model(qtbot, w)
    r, s = w.review, w.review.session
    r.set_mode(True)
    first = [(t.tile_x, t.tile_y) for t in s.entries[:5]]
    label_tiles(qtbot, w, first, ["5", "5", "1", "3", "0"])
    assert r.team.label.text() == "Reviewer: alice"
    assert w.overlay.layer.visible and w.overlay.panel.isEnabled()
    r.dock.diagnosis.setCurrentIndex(r.dock.diagnosis.findData("malignant"))
    r.dock.flush_diagnosis()
    assert r.store.diagnosis(s.slide_id)[:1] == ("malignant",)

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
    assert r.dock.diagnosis.currentData() is None and not r.dock.diagnosis.isEnabled()
    assert "hidden" in r.dock.diag_note.text()  # alice's slide diagnosis
    # Enter must not confirm a prediction nobody has seen
    r.set_mode(True)
    w.activateWindow()
    w.view.setFocus()
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
    assert w.width() == 1366

    # a label other than the prediction: nothing says "corrected" (that would tell it)
    nxt = s.current
    key = "1" if nxt.predicted != label_for_key("1") else "2"
    qtbot.keyClick(w.view, KEYS[key])
    acked(qtbot, w)
    assert s.store.decision(nxt.tile_id).status == "corrected" and s.counts().corrected
    assert "corrected" not in r.store_label.text() and "corrected" not in r.dock.counts.text()
    statuses = [r.dock.status.itemData(i) for i in range(r.dock.status.count())]
    assert statuses == [None, "unreviewed", "reviewed"]  # no Confirmed / Corrected filter
    for act in (r.explain.action, r.explain.similar_action, r.acts["export"],
                w.actions_["retrain"]):
        assert not act.isEnabled(), act.text()
    button = r.explain.toolbar.widgetForAction(r.explain.action)
    assert button.text() == "Why this tile? (E)" and not button.isEnabled()

    # blinded off again: the model comes back
    assert r.team.set_reading(False)
    qtbot.waitUntil(lambda: r.team.state is not None and not r.team.state.blinded_setting
                    and r.session is not None, timeout=20000)
    assert not table.isColumnHidden(1) and w.overlay.panel.isEnabled()
    assert r.team.label.text() == "Reviewer: bob"
    assert [r.dock.status.itemData(i) for i in range(r.dock.status.count())] == [
        None, "unreviewed", "reviewed", "confirmed", "corrected"]
    assert "corrected" in r.store_label.text() and r.acts["export"].isEnabled()
    assert r.dock.diagnosis.currentData() == "malignant" and r.dock.diagnosis.isEnabled()
    assert not env


def test_switching_reviewer_is_explicit(qtbot, env, tmp_path, monkeypatch):
    """Review ▸ Switch reviewer… and a new name in File ▸ Settings both switch (reopened as
    that reviewer, named in the status bar); the role chosen is stored."""
    from pvdesk.ui.settings_dialog import SettingsDialog
    from pvdesk.ui.team_dialogs import ReviewerDialog

    w = show_window(qtbot)
    r = w.review
    open_project(qtbot, w, tmp_path / "p.pvdb", "alice")
    run_model(qtbot, w)
    r.set_mode(True)
    label_tiles(qtbot, w, [(t.tile_x, t.tile_y) for t in r.session.entries[:2]], ["1", "2"])

    def choose(dlg):
        dlg.name.setCurrentText("carol")
        dlg.role.setCurrentIndex(dlg.role.findData("adjudicator"))
        return 1

    monkeypatch.setattr(ReviewerDialog, "exec", choose)
    r.team.switch_act.trigger()
    qtbot.waitUntil(lambda: r.team.state is not None and r.team.state.reviewer == "carol"
                    and r.session is not None, timeout=20000)
    assert r.team.state.adjudicator and r.store.roles()["carol"] == "adjudicator"
    assert r.team.label.text() == "Reviewer: carol (adjudicator)"
    assert r.session.counts().reviewed == 0  # alice's decisions are hers
    acked(qtbot, w)
    assert not r.session.can_undo and not r.dock.undo.isEnabled()  # carol's undo stack
    r.act("undo")
    acked(qtbot, w)
    alice = r.store.decisions_by_reviewer()["alice"]
    assert len(alice) == 2 and all(d.status != "unreviewed" for d in alice.values())
    assert w.settings.reviewer == "carol"

    for bad in ("", "   ", "x" * 65, "tab\there"):
        assert not r.team.switch_reviewer(bad)
        assert w.status.currentMessage().startswith("Reviewer not switched: ")
    assert r.team.state.reviewer == "carol" and w.settings.reviewer == "carol"

    def rename(dlg):
        dlg.reviewer.setText("dora")
        return 1

    monkeypatch.setattr(SettingsDialog, "exec", rename)
    w.actions_["settings"].trigger()
    qtbot.waitUntil(lambda: r.team.state is not None and r.team.state.reviewer == "dora"
                    and r.session is not None, timeout=20000)
    assert r.store.reviewer == "dora" and r.team.label.text() == "Reviewer: dora"
    qtbot.waitUntil(lambda: "Reviewer switched: carol → dora" in w.status.currentMessage(),
                    timeout=5000)


def test_blinded_patch_grid_items_show_no_prediction():
    from pvdesk.review.types import TileRecord
    from pvdesk.ui.patch_grid import GridItem, tooltip

    rec = TileRecord(1, "s", "/p/a.png", None, None, None, None, None, 1,
                     ("adenosis", "fibroadenoma"), (0.9, 0.1), "adenosis", 0.9, 0.3, 0.8,
                     status="corrected", label="fibroadenoma", reviewer="bob")
    it = GridItem("/p/a.png", None, rec)
    assert "Adenosis 0.90" in tooltip(it)
    blind = tooltip(it, blinded=True)
    assert "0.9" not in blind and "Adenosis" not in blind and "corrected" not in blind
    assert "your label: 2 Fibroadenoma" in blind
