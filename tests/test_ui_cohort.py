"""The cohort table of a review project: rows computed from the store (Qt-free), the
Cohort dock in the window (screenshot at 1366 x 768) and opening a slide with its run."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from slide_factory import paint, write_pyramid

from pvdesk.cohort.table import cohort_table
from pvdesk.review.store import ReviewStore
from pvdesk.review.types import TilePrediction
from pvdesk.slides import open_source
from pvdesk.taxonomy import CLASS_NAMES

SHOTS = Path(os.environ.get("PVDESK_SHOTS", "/tmp/pvdesk-shots"))
BENIGN, MALIGNANT = 0, 4  # adenosis, ductal carcinoma


def _probs(best: int, confidence: float) -> list[float]:
    p = np.full(len(CLASS_NAMES), (1 - confidence) / (len(CLASS_NAMES) - 1))
    p[best] = confidence
    return list(p)


def make_project(folder: Path) -> tuple[Path, dict]:
    """Four slides: a benign one, two malignant ones (one with more hesitant tiles) and a
    fully reviewed malignant one; 12 tiles each."""
    folder.mkdir(parents=True, exist_ok=True)
    plans = {  # name: (tiles' classes, confidences, reviewed tiles)
        "benign": ([BENIGN] * 12, [0.9] * 12, 0),
        "malignant-sure": ([MALIGNANT] * 6 + [BENIGN] * 6, [0.9] * 12, 2),
        "malignant-hesitant": ([MALIGNANT] * 3 + [BENIGN] * 9, [0.3] * 6 + [0.9] * 6, 0),
        "reviewed": ([MALIGNANT] * 12, [0.3] * 12, 12),
    }
    project = folder / "project.pvdb"
    runs = {}
    with ReviewStore(project, reviewer="dr-a") as store:
        for i, (name, (classes, conf, n_reviewed)) in enumerate(plans.items()):
            img = paint(900, 700, [(40, 40, 860, 660)], seed=i)
            path = write_pyramid(folder / f"{name}.tif", img, levels=2, mpp=0.5)
            with open_source(path) as src:
                sid = src.slide_id  # the id the window finds the slide under
            store.add_slide(sid, str(path))
            run = store.add_run("tiny", "1", "h", list(CLASS_NAMES), "cpu",
                                {"side": 224, "stride": 224, "out_size": 224}, trained=False)
            runs[name] = run
            preds = [TilePrediction(str(path), 224 * (k % 4), 224 * (k // 4), 224, 224, 0.5,
                                    _probs(c, q))
                     for k, (c, q) in enumerate(zip(classes, conf, strict=True))]
            store.add_predictions(run, sid, preds)
            ids = [r.tile_id for r in store.tiles(slide_id=sid, run_id=run)]
            if n_reviewed:
                store.confirm_many(ids[:n_reviewed], run_id=run)
    return project, runs


def test_cohort_rows_most_in_need_of_review_first(tmp_path):
    project, runs = make_project(tmp_path / "p")
    with ReviewStore(project, readonly=True) as store:
        rows = cohort_table(store)
    assert [Path(r.path).stem for r in rows] == ["malignant-hesitant", "malignant-sure",
                                                 "benign", "reviewed"]
    hes, sure, benign, done = rows
    assert hes.call == "malignant" and hes.malignant_share == pytest.approx(3 / 12)
    assert (hes.tiles, hes.flagged, hes.reviewed) == (12, 6, 0)
    assert (sure.flagged, sure.reviewed, sure.run_id) == (0, 2, runs["malignant-sure"])
    assert benign.call == "benign" and benign.malignant_share == 0
    assert done.done and done.reviewed == 12 and done.model == "tiny@1 (UNTRAINED)"


def test_cohort_dock_opens_a_slide_with_its_run(qtbot, tmp_path, pvdesk_home):
    from screen_support import fit_screen
    from ui_support import LAPTOP, show_window

    project, runs = make_project(tmp_path / "p")
    w = show_window(qtbot, fit=lambda w: fit_screen(w, LAPTOP))
    w.review.use_project(project)
    cohort = w.review.cohort
    cohort.show()
    table = cohort.dock.model
    qtbot.waitUntil(lambda: table.rowCount() == 4, timeout=20000)
    assert cohort.dock_widget.isVisible()
    assert table.index(0, 1).data() == "malignant (25%) *"
    assert "UNTRAINED" in cohort.dock.title.text()
    assert table.index(0, 3).data() == "6 (50%)" and table.index(3, 4).data() == "12 of 12"
    SHOTS.mkdir(parents=True, exist_ok=True)
    w.grab().save(str(SHOTS / "cohort-dock-1366x768.png"))
    cohort.dock._open_index(table.index(1, 0))  # malignant-sure
    qtbot.waitUntil(lambda: w.review.session is not None, timeout=30000)
    assert Path(w.source.path).stem == "malignant-sure"
    assert w.review.session.run_id == runs["malignant-sure"]
    assert w.review.session.store.path == project
    w.grab().save(str(SHOTS / "cohort-opened-1366x768.png"))
    w.close()


def test_a_custom_taxonomy_gets_its_own_call(tmp_path):
    """The call follows the run's taxonomy, as predict's summary does: benign/malignant
    groups from a taxonomy file give one; classes without groups give none."""
    from pvdesk.taxonomy import parse_taxonomy

    grouped = parse_taxonomy({"classes": [{"name": "tumor", "group": "malignant"},
                                          {"name": "stroma", "group": "benign"}]}, "t.json")
    with ReviewStore(tmp_path / "p.pvdb") as store:
        for sid, settings in (("grouped", {"taxonomy": grouped.to_dict()}), ("plain", {})):
            store.add_slide(sid, f"/x/{sid}.svs")
            run = store.add_run("tiny", "1", "h", ["tumor", "stroma"], "cpu", settings)
            store.add_predictions(run, sid, [
                TilePrediction(f"/x/{sid}.svs", 224 * k, 0, 224, 224, 0.5,
                               [0.8, 0.2] if k < 3 else [0.2, 0.8]) for k in range(10)])
        rows = {r.slide_id: r for r in cohort_table(store)}
    assert rows["grouped"].call == "malignant"
    assert rows["grouped"].malignant_share == pytest.approx(3 / 10)
    assert rows["plain"].call is None and rows["plain"].malignant_share is None
