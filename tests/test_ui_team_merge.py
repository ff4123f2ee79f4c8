"""Team review in the window, readers together: merging two readers' projects, agreement (equal
to scikit-learn's), adjudication of the disputed tiles, and a head retrained on the consensus
export. One reader at a time is in tests/test_ui_team_blinded.py."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from team_window_support import (
    acked,
    fake_model_env,
    label_tiles,
    open_project,
    run_model,
    switched,
)
from ui_support import show_window

from pvdesk.export.csv import read_predictions_csv
from pvdesk.models.bundle import Bundle
from pvdesk.taxonomy import label_for_key

REAL_LOAD = Bundle.load  # training loads its backbone for real
SHOTS = Path(os.environ.get("PVDESK_SHOTS", "/tmp/pvdesk-shots"))


@pytest.fixture
def env(monkeypatch, pvdesk_home):
    return fake_model_env(monkeypatch)


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
