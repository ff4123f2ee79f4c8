"""Issue 7's whole flow without a terminal, through the window: open a slide, run a real
(demo) model, review 20 tiles from the keyboard, export the CSV, retrain a CLIP linear
probe on those labels from Training > Retrain (the real training package in a child
process), load the new bundle, run it and see its predictions.

The slide has two colour-coded "subtypes" so the retrained head has something to learn;
the backbone is the offline demo CLIP RN50 (random weights), the same code path as real
weights.
"""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox
from training_fixtures import colour_slide
from ui_support import DESKTOP, open_window

from pvdesk.export.csv import read_predictions_csv
from pvdesk.models import resolve_bundle
from pvdesk.taxonomy import subtype
from pvdesk.ui.worker import RunRequest

pytest.importorskip("open_clip")


def test_open_run_review_export_retrain_load_and_run(qtbot, tmp_path, monkeypatch, pvdesk_home):
    for name in ("warning", "information"):
        monkeypatch.setattr(QMessageBox, name, staticmethod(lambda *a, **k: None))
    slide, truth = colour_slide(tmp_path / "two subtypes.tiff", classes=2, tile=224,
                                per_class=10)
    true_label = {(x, y): label for x, y, _, _, label in truth}

    w = open_window(qtbot, slide, DESKTOP, timeout=30000)

    # Analysis > Run model with demo-clip-rn50: 20 tissue tiles of 112 um
    states: list[str] = []
    w.runs.finished.connect(states.append)
    assert w.start_run(RunRequest(["demo-clip-rn50"], device="cpu", tile_um=112.0,
                                  batch_size=8))
    qtbot.waitUntil(lambda: bool(states), timeout=180000)
    assert states == ["done"]
    qtbot.waitUntil(lambda: w.review.session is not None
                    and len(w.review.session.entries) == 20, timeout=30000)
    s = w.review.session

    # review all 20 tiles from the keyboard, each to its true subtype (keys 1 and 2)
    w.activateWindow()
    qtbot.keyClick(w.view, Qt.Key.Key_R)
    assert w.review.mode
    for _ in range(20):
        cur = s.current
        qtbot.keyClick(w.view, subtype(true_label[(cur.tile_x, cur.tile_y)]).key)
    assert s.counts().reviewed == 20
    qtbot.waitUntil(lambda: s.pending == 0, timeout=10000)  # every key stored, acknowledged
    decided = {(r.tile_x, r.tile_y): s.store.decision(r.tile_id).label
               for r in s.store.tiles(run_id=s.run_id)}
    assert decided == true_label

    # File > Export predictions
    csv = tmp_path / "clip_predictions.csv"
    exported: list[dict] = []
    w.review.exporter.quiet = True
    w.review.exporter.finished.connect(exported.append)
    assert w.review.export_to(csv)
    qtbot.waitUntil(lambda: bool(exported), timeout=30000)
    rows = read_predictions_csv(csv).rows
    assert len(rows) == 20
    assert {(int(r["tile_x"]), int(r["tile_y"])): r["review_label"] for r in rows} == true_label
    assert {r["review_status"] for r in rows} <= {"confirmed", "corrected"}

    # Training > Retrain on this project's reviewed tiles
    w.training.extra_args = ["--bootstrap", "20", "--workers", "1"]
    dlg = w.training.open_retrain()
    assert dlg.data.use_store.isEnabled() and dlg.data.use_store.isChecked()
    dlg.model.choose("clip-linear", "demo-clip-rn50", epochs=0, device="cpu")
    outcome: list[tuple[str, str]] = []
    dlg.process.finished.connect(lambda o, m: outcome.append((o, m)))
    assert dlg.start()
    qtbot.waitUntil(lambda: bool(outcome), timeout=300000)
    assert outcome[0][0] == "done", dlg.log.toPlainText()
    bundle = resolve_bundle(outcome[0][1])
    # a head trained on the demo backbone (random weights) is untrained by lineage: the
    # window must say so even though the head itself learned
    assert bundle.kind == "clip-linear" and not bundle.trained

    # load the new bundle and run it on the open slide
    states.clear()
    dlg.load_btn.click()
    qtbot.waitUntil(lambda: bool(states), timeout=180000)
    assert states == ["done"]
    assert [b.name for b in w.overlay.info.bundles] == [bundle.name]
    assert w.overlay.tiles_done == 20 and w.overlay.layer.image is not None
    assert w.banner.isVisible() and bundle.name in w.banner.text()
    # the retrained head learned the two colours from the reviewer's labels
    qtbot.waitUntil(lambda: s.store.counts(run_id=s.store.latest_run()).total == 20,
                    timeout=30000)
    run = s.store.latest_run()
    predicted = {(r.tile_x, r.tile_y): r.predicted for r in s.store.tiles(run_id=run)}
    agree = sum(predicted[k] == v for k, v in true_label.items())
    assert agree >= 16, predicted
    w.close()
