"""Team review in the window: switching reviewer, blinded reading, merging two readers'
projects, agreement (equal to scikit-learn's), adjudication of the disputed tiles, and a
head retrained on the consensus export.

The model is the engine's FakeClassifier (``Bundle.load`` patched), as in test_ui_review:
the subject is the reviewers' path through the window and the store.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import pytest
from inference_fakes import FakeClassifier
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox
from ui_support import show_window

from pvdesk.export.csv import read_predictions_csv
from pvdesk.models.bundle import Bundle
from pvdesk.paths import sample_slide
from pvdesk.review.blind_order import random_keys
from pvdesk.taxonomy import label_for_key
from pvdesk.ui.worker import RunRequest

REAL_LOAD = Bundle.load  # training loads its backbone for real
SHOTS = Path(os.environ.get("PVDESK_SHOTS", "/tmp/pvdesk-shots"))
KEYS = {str(k): getattr(Qt.Key, f"Key_{k}") for k in range(9)} | {"u": Qt.Key.Key_U}


@pytest.fixture
def env(monkeypatch, pvdesk_home):
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
    w.view.setFocus()  # review keys go to the slide view, never to a field that had focus
    for xy, key in zip(coords, keys, strict=True):
        s.goto_tile(by_xy[xy])
        w.review.sync.refresh(center=True)
        qtbot.keyClick(w.view, KEYS[key])
    acked(qtbot, w)


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


def test_merge_in_the_window_reports_one_line(qtbot, env, tmp_path):
    w = show_window(qtbot)
    r = w.review
    project = tmp_path / "p.pvdb"
    open_project(qtbot, w, project, "alice")
    bad = tmp_path / "notes.pvdb"
    bad.write_text("not a review store\n")
    out = tmp_path / "merged.pvdb"
    assert r.team.merge_to(out, [project, bad])
    qtbot.waitUntil(lambda: not r.team.tasks.busy and hasattr(r.team, "last_merge"),
                    timeout=30000)
    msg = r.team.last_merge
    assert msg.startswith("Not merged: ") and "notes.pvdb" in msg and "\n" not in msg
    assert "Traceback" not in msg and not out.exists()
    assert w.status.currentMessage() == msg
    assert not r.team.merge_to(project, [bad])  # the project open here is not merged into
    assert "is open for review here" in w.status.currentMessage()
    assert r.team.merge_to(out, [project])
    qtbot.waitUntil(lambda: not r.team.tasks.busy and r.team.last_merge != msg, timeout=30000)
    assert r.team.last_merge.startswith(f"Merged 1 review store into {out}: ") and out.exists()
    assert "slides" in r.team.last_merge, r.team.last_merge


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


def pair_kappa(path: Path, a: str, b: str) -> float:
    """Cohen's kappa of readers a and b in an agreement.json."""
    import json

    pairs = json.loads(path.read_text())["pairs"]
    (p,) = [p for p in pairs if {p["a"], p["b"]} == {a, b}]
    return p["kappa"]


# 40 tiles of the sample, read by alice, then by bob (blinded), who differs on 8 of them
N_TILES = 40
KEYS_A = ["1" if i % 3 else "5" for i in range(N_TILES)]
DIFFER = (2, 7, 11, 16, 22, 29, 33, 38)
KEYS_B = [("5" if k == "1" else "1") if i in DIFFER else k for i, k in enumerate(KEYS_A)]


@pytest.mark.slow
def test_two_readers_merge_agree_adjudicate_and_retrain(qtbot, env, tmp_path, capsys,
                                                       monkeypatch):
    from sklearn.metrics import cohen_kappa_score

    w = show_window(qtbot)
    r = w.review
    a, b, merged = tmp_path / "alice.pvdb", tmp_path / "bob.pvdb", tmp_path / "team.pvdb"
    # reader A: her own copy of the project
    open_project(qtbot, w, a, "alice")
    run_model(qtbot, w)
    coords = sorted(((t.tile_x, t.tile_y) for t in r.session.all.values()),
                    key=lambda xy: (xy[1], xy[0]))[:N_TILES]
    assert len(coords) == N_TILES
    r.set_mode(True)
    label_tiles(qtbot, w, coords, KEYS_A)
    assert r.session.counts().reviewed == N_TILES

    # reader B: another copy, blinded before the model runs in it
    r.use_project(b)
    qtbot.waitUntil(lambda: r.store is not None and r.store.path == b, timeout=20000)
    assert r.team.switch_reviewer("bob")  # no run in this copy yet: no session to wait for
    qtbot.waitUntil(lambda: r.store is not None and r.store.reviewer == "bob"
                    and r.team.state is not None, timeout=20000)
    assert r.team.set_reading(True, "spatial", 0)
    qtbot.waitUntil(lambda: r.team.blinded, timeout=20000)
    run_model(qtbot, w)
    assert r.session.order == "spatial" and not w.overlay.layer.visible
    assert r.team.label.text() == "Reviewer: bob · BLINDED"
    label_tiles(qtbot, w, coords, KEYS_B)
    assert r.session.counts().reviewed == N_TILES

    # File > Merge review projects…
    assert r.team.merge_to(merged, [a, b])
    qtbot.waitUntil(lambda: not r.team.tasks.busy and hasattr(r.team, "last_merge"),
                    timeout=30000)
    assert merged.exists() and not r.team.last_merge.startswith("Not merged"), \
        r.team.last_merge

    # pvdesk review agreement: Cohen's kappa equals scikit-learn's on the same labels
    from pvdesk.cli import main

    labels_a = [label_for_key(k) for k in KEYS_A]
    labels_b = [label_for_key(k) for k in KEYS_B]
    want = cohen_kappa_score(labels_a, labels_b)
    out = tmp_path / "agreement"
    assert main(["review", "agreement", str(merged), "--out", str(out)]) == 0
    got = pair_kappa(out / "agreement.json", "alice", "bob")
    assert got == pytest.approx(want, abs=1e-6)  # the JSON keeps 6 decimals

    # the adjudicator resolves the disputed tiles in the window
    r.use_project(merged)
    qtbot.waitUntil(lambda: r.session is not None and r.store.path == merged, timeout=20000)
    switched(qtbot, w, "carol", "adjudicator")
    qtbot.waitUntil(lambda: r.team.state.adjudicator, timeout=20000)
    s = r.session
    assert r.team.label.text() == "Reviewer: carol (adjudicator)"
    assert not r.team.blinded and w.overlay.panel.isEnabled()  # the adjudicator sees all
    disputed = set(s.store.disputed(s.run_id))
    assert len(disputed) == len(DIFFER)
    assert {e.tile_id for e in s.entries} == disputed  # the Disputed queue
    model = r.dock.model
    assert not r.dock.table.isColumnHidden(4)
    readers = model.data(model.index(0, 4))
    assert "alice" in readers and "bob" in readers
    r.set_mode(True)
    w.activateWindow()
    w.view.setFocus()
    s.first()
    for _ in range(len(DIFFER)):
        qtbot.keyClick(w.view, Qt.Key.Key_5)  # consensus: ductal carcinoma
    acked(qtbot, w)
    assert s.store.disputed(s.run_id) == []
    qtbot.wait(200)
    w.grab().save(str(SHOTS / "team_adjudicator_1366x768.png"))
    assert w.width() == 1366  # the status bar's reviewer never widened the window

    # View > Team: the same kappa, with its n
    assert r.team.compute()
    qtbot.waitUntil(lambda: r.team.panel.compute.isEnabled(), timeout=30000)
    rows = r.team.panel.rows()
    by = {f: (v, ci, n) for f, v, ci, n in rows}
    assert by["Cohen's kappa, alice – bob"][0] == f"{want:.3f}"  # the CLI's, to 3 places
    assert by["Cohen's kappa, alice – bob"][2] == "40 of 40 tiles (labelled by both)"
    assert "only 1 slide" in by["Cohen's kappa, alice – bob"][1]  # no interval, said why
    w.grab().save(str(SHOTS / "team_panel_1366x768.png"))
    bar = r.team.panel.figures.verticalScrollBar()
    bar.setValue(bar.maximum())
    assert "Confusion: alice (rows) × bob (columns)" in r.team.panel.figures.toPlainText()
    r.team.panel.grab().save(str(SHOTS / "team_panel_confusion.png"))
    run_id = s.run_id
    w.close()

    # the consensus export retrains a head and says where its labels came from
    csv_path = tmp_path / "consensus.csv"
    assert main(["review", "export", str(merged), "--csv", str(csv_path), "--run",
                 str(run_id)]) == 0
    table = read_predictions_csv(csv_path)
    sources = Counter(row["consensus_source"] for row in table.rows if row["consensus_source"])
    assert sources == {"adjudicated": len(DIFFER), "unanimous": N_TILES - len(DIFFER)}
    by_xy = {(row["tile_x"], row["tile_y"]): row for row in table.rows}
    for xy, ka, kb in zip(coords, KEYS_A, KEYS_B, strict=True):
        row = by_xy[xy]
        assert (row["label_by:alice"], row["label_by:bob"]) == (label_for_key(ka),
                                                              label_for_key(kb))
        assert row["consensus_label"] == label_for_key(ka if ka == kb else "5")
    from training.cli import main as train

    monkeypatch.setattr(Bundle, "load", REAL_LOAD)

    head = tmp_path / "head"
    rc = train(["train", "--data", str(csv_path), "--head", "clip-linear", "--backbone",
                "demo-clip-rn50", "--out", str(head), "--fractions", "0.5,0.25,0.25",
                "--split-unit", "image", "--progress", "plain", "--bootstrap", "0",
                "--workers", "1"])
    err = capsys.readouterr()
    assert rc == 0, err.err
    import json

    sources = json.loads((head / "manifest.json").read_text())["provenance"]["label_sources"]
    assert set(sources) <= {"adjudicated", "unanimous"} and sources.get("unanimous", 0) > 0
    adj, una = sources.get("adjudicated", 0), sources["unanimous"]
    report = (head / "report.md").read_text()
    assert f"{adj + una} consensus labels ({adj} adjudicated, {una} unanimous)" in report
