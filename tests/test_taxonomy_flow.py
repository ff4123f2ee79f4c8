"""A custom taxonomy end to end: predict, keyboard review, export and retrain with a three-class
bundle; a run started in the window; a custom run's labels and keys; the GeoJSON round trip."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from taxonomy_support import TSN
from ui_support import LAPTOP, open_window

from pvdesk.taxonomy import CLASS_NAMES, NON_TISSUE, UNCERTAIN, Taxonomy

SHOTS = Path(os.environ.get("PVDESK_SHOTS", "/tmp/pvdesk-shots"))
BREAKHIS_COLUMNS = {f"p_{c}" for c in CLASS_NAMES} | {"p_benign", "p_malignant"}


@pytest.mark.slow
def test_a_three_class_bundle_goes_through_predict_review_export_and_retrain(
        qtbot, tmp_path, monkeypatch, capsys, pvdesk_home):
    pytest.importorskip("open_clip")
    from models_support import linear_tensors, manifest
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QMessageBox

    from pvdesk.cli import main
    from pvdesk.export.csv import read_predictions_csv
    from pvdesk.models import resolve_bundle, write_bundle
    from pvdesk.paths import sample_slide
    from pvdesk.review.project import default_store_path
    from pvdesk.slides import open_source
    from training.cli import main as train_main

    monkeypatch.setenv("PVDESK_OFFLINE", "1")
    for name in ("warning", "information"):
        monkeypatch.setattr(QMessageBox, name, staticmethod(lambda *a, **k: None))
    bundle = tmp_path / "tsn-linear"
    write_bundle(bundle, manifest("tsn-linear", "clip-linear", classes=TSN), linear_tensors(3))

    # pvdesk predict on the sample slide, recorded in the slide's default review store
    slide = sample_slide()
    with open_source(slide) as src:
        store_path = default_store_path(src.slide_id, src.path)
    store_path.parent.mkdir(parents=True, exist_ok=True)
    out = tmp_path / "out"
    assert main(["predict", str(slide), "--model", str(bundle), "--out", str(out),
                 "--tile-um", "224", "--heatmap-size", "300", "--store", str(store_path)]) == 0
    folder = out / slide.stem
    table = read_predictions_csv(folder / "clip_predictions.csv")
    assert table.classes == TSN
    header = (folder / "clip_predictions.csv").read_text().splitlines()[0].split(",")
    assert {"p_tumor", "p_stroma", "p_normal"} <= set(header)
    assert not BREAKHIS_COLUMNS & set(header)
    pngs = {p.name for p in (folder / "heatmaps" / "tsn-linear_1").glob("*.png")}
    assert pngs == {"tumor.png", "stroma.png", "normal.png", "argmax.png"}  # no roll-up
    summary = json.loads((folder / "summary.json").read_text())["models"][0]
    assert summary["slide_call"] is None and "no slide-level rule" in summary["slide_call_rule"]
    assert "no slide-level rule (class shares: tumor" in capsys.readouterr().out

    # the window reopens the run from the store; review from the keyboard
    w = open_window(qtbot, slide, LAPTOP, ready=lambda w: w.review.session is not None,
                    timeout=30000)
    s = w.review.session
    assert s.taxonomy.names == tuple(TSN)
    assert list(w.review.dock.key_buttons) == [*TSN, NON_TISSUE, UNCERTAIN]
    assert [b.text() for b in w.review.dock.key_buttons.values()][:3] == [
        "1 Tumor", "2 Stroma", "3 Normal"]
    w.activateWindow()
    qtbot.keyClick(w.view, Qt.Key.Key_R)
    assert w.review.mode and "1–3 class" in w.review.dock.hint.text()
    expected = {}
    keys = [*"123" * 4, "0", "U"]
    for k in keys:
        expected[s.current.tile_id] = {"1": "tumor", "2": "stroma", "3": "normal",
                                       "0": NON_TISSUE, "U": UNCERTAIN}[k]
        qtbot.keyClick(w.view, k)
    before = s.counts()
    qtbot.keyClick(w.view, "4")  # no fourth class: the key does nothing
    assert s.counts() == before and before.reviewed == len(keys)
    qtbot.waitUntil(lambda: s.pending == 0, timeout=10000)
    assert {t: s.store.decision(t).label for t in expected} == expected

    # the heatmap legend shows the bundle's classes in its colours: look at the screenshot
    panel = w.overlay.panel
    assert [panel.layer.itemText(i) for i in range(panel.layer.count())] == [
        "Class map (most likely class)", "1  Tumor", "2  Stroma", "3  Normal"]
    assert [e[0] for e in panel.legend._entries] == ["1  Tumor", "2  Stroma", "3  Normal"]
    qtbot.wait(300)
    SHOTS.mkdir(parents=True, exist_ok=True)
    w.grab().save(str(SHOTS / "taxonomy_custom_1366x768.png"))

    # export: the CSV and the GeoJSON carry the custom classes
    csv = tmp_path / "export" / "clip_predictions.csv"
    geo = tmp_path / "export" / "tiles.geojson"
    csv.parent.mkdir()
    exported: list = []
    w.review.exporter.quiet = True
    w.review.exporter.finished.connect(exported.append)
    assert w.review.export_to(csv, geo)
    qtbot.waitUntil(lambda: bool(exported), timeout=30000)
    rows = read_predictions_csv(csv).rows
    assert read_predictions_csv(csv).classes == TSN
    assert {r["review_label"] for r in rows} - {""} == {*TSN, NON_TISSUE, UNCERTAIN}
    feats = json.loads(geo.read_text())["features"]
    tax = Taxonomy.from_names(TSN)
    named = {f["properties"]["classification"]["name"]: f["properties"]["classification"]["color"]
             for f in feats}
    assert set(TSN) <= set(named)
    assert all(named[c] == list(int(tax.colour_of(c)[i:i + 2], 16) for i in (1, 3, 5))
               for c in TSN)
    assert all(set(f["properties"]["measurements"]) == {"p_tumor", "p_stroma", "p_normal",
                                                        "confidence"} for f in feats)
    w.close()

    # retrain a head from the export, starting from the bundle: the new bundle has the 3
    new = tmp_path / "retrained"
    assert train_main(["train", "--data", str(csv), "--head", "clip-linear", "--backbone",
                       str(bundle), "--out", str(new), "--progress", "none",
                       "--bootstrap", "0", "--workers", "1"]) == 0
    b = resolve_bundle(str(new))
    assert b.classes == TSN and b.taxonomy.names == tuple(TSN)


def test_a_run_started_in_the_window_follows_its_bundle_taxonomy(qtbot, tmp_path, monkeypatch,
                                                                  pvdesk_home):
    """Analysis ▸ Run model with a custom bundle (a stand-in classifier answers): the live
    run's review keys, buttons and legend follow the bundle's taxonomy file."""
    from inference_fakes import FakeClassifier
    from models_support import linear_tensors, manifest
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QMessageBox
    from slide_factory import paint, write_pyramid

    from pvdesk.models import write_bundle
    from pvdesk.models.bundle import Bundle
    from pvdesk.ui.worker import RunRequest

    monkeypatch.setattr(Bundle, "load", lambda self, *a, **k: FakeClassifier(self.classes))
    monkeypatch.setattr(QMessageBox, "warning", staticmethod(lambda *a, **k: None))
    folder = tmp_path / "tsn"
    folder.mkdir()
    (folder / "taxonomy.json").write_text(json.dumps({"classes": [
        {"name": "tumor", "display": "Tumour", "key": "3"},
        {"name": "stroma", "key": "1"}, {"name": "normal", "key": "2"}]}))
    write_bundle(folder, manifest("tsn", "clip-linear", classes=TSN, taxonomy="taxonomy.json"),
                 linear_tensors(3))
    slide = write_pyramid(tmp_path / "slide.tif", paint(1100, 800, [(60, 60, 1000, 740)],
                                                        seed=3), levels=3, mpp=0.5)
    w = open_window(qtbot, slide, LAPTOP)
    states: list[str] = []
    w.runs.finished.connect(states.append)
    assert w.start_run(RunRequest([str(folder)], device="cpu", tile_um=112.0, batch_size=4))
    qtbot.waitUntil(lambda: bool(states), timeout=60000)
    n = len(w.overlay.info.grid.tiles)
    qtbot.waitUntil(lambda: w.review.session is not None
                    and len(w.review.session.entries) == n, timeout=20000)
    s = w.review.session
    assert [b.text() for b in w.review.dock.key_buttons.values()][:3] == [
        "3 Tumour", "1 Stroma", "2 Normal"]
    assert [e[0] for e in w.overlay.panel.legend._entries] == [
        "3  Tumour", "1  Stroma", "2  Normal"]
    w.review.set_mode(True)
    first = s.current.tile_id
    qtbot.keyClick(w.view, Qt.Key.Key_3)
    qtbot.waitUntil(lambda: s.pending == 0, timeout=10000)
    assert s.store.decision(first).label == "tumor"
    w.close()


def test_a_custom_run_takes_its_own_labels_and_keys_and_refuses_breakhis_ones(tmp_path):
    from pvdesk.errors import StoreError
    from pvdesk.review.sample import make_sample_store
    from pvdesk.review.session import ReviewSession

    names = [f"c{i}" for i in range(12)]
    store, run, ids = make_sample_store(tmp_path / "s.pvdb", n_tiles=6, classes=names)
    s = ReviewSession(store, "slide-1", run)
    assert s.taxonomy.names == tuple(names)
    first = s.first().tile_id
    assert s.command("9") == "correct" and store.decision(first).label == "c8"
    second = s.current.tile_id
    assert second != first and s.command("U") == "correct"
    assert store.decision(second).label == UNCERTAIN
    store.correct(ids[1], "c11", run)  # past the ninth: no key, but a label all the same
    assert store.decision(ids[1]).label == "c11"
    with pytest.raises(StoreError, match="not a review label"):
        store.correct(ids[2], "adenosis", run)
    store.close()


def test_geojson_round_trip_and_qupath_class_names_of_a_custom_run(tmp_path):
    from pvdesk.export.geojson import write_geojson
    from pvdesk.export.geojson_import import import_geojson, review_label
    from pvdesk.review.sample import make_sample_store

    tax = Taxonomy.from_names(TSN)
    assert review_label("Stroma", tax) == "stroma" and review_label("NOR", tax) == "normal"
    assert review_label("Adenosis", tax) is None and review_label("Adenosis") == "adenosis"
    store, run, ids = make_sample_store(tmp_path / "s.pvdb", n_tiles=4, classes=TSN)
    path = tmp_path / "t.geojson"
    write_geojson(store, path, run_id=run)
    doc = json.loads(path.read_text())
    target = doc["features"][0]
    predicted = target["properties"]["metadata"]["predicted"]
    new = next(c for c in TSN if c != predicted)
    target["properties"]["classification"]["name"] = tax.display(new)  # renamed in QuPath
    path.write_text(json.dumps(doc))
    result = import_geojson(store, path)
    assert result["labelled"] == {new: 1}
    store.close()
