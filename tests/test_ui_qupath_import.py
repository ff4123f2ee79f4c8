"""File ▸ Import QuPath objects…: the menu item, the dialog's options, and an import into the
open slide's review store that lands in the store and reloads the slide."""

from __future__ import annotations

import json
import uuid

import numpy as np
import pytest
from PySide6.QtWidgets import QDialog, QMessageBox
from slide_factory import paint, write_pyramid

from pvdesk.review import ReviewStore, TilePrediction
from pvdesk.taxonomy import CLASS_NAMES
from pvdesk.ui import qupath_import
from pvdesk.ui.main_window import MainWindow


@pytest.fixture
def env(tmp_path, monkeypatch, pvdesk_home):
    shown: list[str] = []
    for name in ("information", "warning"):
        monkeypatch.setattr(QMessageBox, name, staticmethod(
            lambda parent, title, text, *a, **k: shown.append(text)))
    img = paint(900, 700, [(50, 50, 850, 650)], seed=2)
    return write_pyramid(tmp_path / "slide.tif", img, levels=2, mpp=0.5), shown


def test_dialog_options(qtbot):
    d = qupath_import.QuPathImportDialog("slide.svs", "ana")
    qtbot.addWidget(d)
    d.path.setText("~/objects.geojson")
    assert d.options()["as_region"] is False and d.options()["min_coverage"] == 0.5
    d.as_regions.setChecked(True)
    d.coverage.setValue(0.8)
    o = d.options()
    assert o["as_region"] and o["min_coverage"] == pytest.approx(0.8)
    assert not d.coverage.isEnabled() and not str(o["path"]).startswith("~")


def test_import_into_the_open_slides_store(qtbot, env, tmp_path, monkeypatch):
    slide, shown = env
    w = MainWindow()
    qtbot.addWidget(w)
    act = w.actions_["import_qupath"]
    assert act in w.file_menu.actions()
    act.trigger()  # no slide yet: says so
    assert shown and "Open a slide first" in shown[-1]

    w.open_path(slide)
    qtbot.waitUntil(lambda: w.source is not None and w.review.ctx is not None, timeout=20000)
    store_path, slide_id, reviewer = qupath_import._context(w)
    # a run of 2 x 2 tiles of 224 px recorded into the slide's store
    store_path.parent.mkdir(parents=True, exist_ok=True)
    with ReviewStore(store_path, reviewer="model") as store:
        store.add_slide(slide_id, str(slide), {})
        run = store.add_run("fake", "1", "h", list(CLASS_NAMES), "cpu", {})
        probs = np.full(8, 1 / 8)
        probs[0] += 0.1
        store.add_predictions(run, slide_id, [
            TilePrediction(str(slide), x, y, 224, 224, 0.5, probs / probs.sum())
            for y in (0, 224) for x in (0, 224)])
    polygon = [[0, 0], [448, 0], [448, 224], [0, 224], [0, 0]]  # the top row of tiles
    geo = tmp_path / "qp.geojson"
    geo.write_text(json.dumps([{
        "type": "Feature", "id": str(uuid.uuid4()),
        "geometry": {"type": "Polygon", "coordinates": [polygon]},
        "properties": {"objectType": "annotation",
                       "classification": {"name": "Mucinous carcinoma", "color": [1, 2, 3]}}}]))
    monkeypatch.setattr(qupath_import.QuPathImportDialog, "exec",
                        lambda self: QDialog.DialogCode.Accepted)
    monkeypatch.setattr(qupath_import.QuPathImportDialog, "options", lambda self: {
        "path": geo, "as_region": False, "min_coverage": 0.5})
    reopened: list[str] = []
    monkeypatch.setattr(w, "open_path", lambda p: reopened.append(str(p)))
    with qtbot.waitSignal(w.qupath_importer.finished, timeout=20000) as sig:
        act.trigger()
    assert sig.args[0]["labelled"] == {"mucinous_carcinoma": 2}
    assert reopened == [str(slide)]
    assert "labelled 2 tiles" in shown[-1]
    with ReviewStore(store_path) as store:
        decisions = store.decisions()
        assert {d.label for d in decisions.values()} == {"mucinous_carcinoma"}
        assert {d.reviewer for d in decisions.values()} == {reviewer} and len(decisions) == 2
    w.qupath_importer.shutdown()
