"""Any taxonomy: the Taxonomy value, taxonomy files and a bundle's classes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from ui_support import LAPTOP, open_window

from pvdesk.errors import ModelError
from pvdesk.models.manifest import validate_manifest
from pvdesk.taxonomy import (
    CLASS_NAMES,
    NON_TISSUE,
    SUBTYPES,
    UNCERTAIN,
    Taxonomy,
    colour_of,
    from_manifest,
    label_for_key,
    label_parts,
    load_taxonomy_file,
)

TSN = ["tumor", "stroma", "normal"]


def test_breakhis_is_the_built_in_with_todays_values():
    t = Taxonomy.breakhis()
    assert t.names == CLASS_NAMES and t.classes == SUBTYPES and t.is_breakhis
    assert t.groups == ("benign", "malignant") and t.benign_malignant
    for s in SUBTYPES:
        assert t.label_parts(s.name) == label_parts(s.name) == (s.key, s.label, s.code)
        assert t.colour_of(s.name) == colour_of(s.name) == s.colour
        assert t.label_for_key(s.key) == label_for_key(s.key) == s.name
    assert t.normalise("DC") == "ductal_carcinoma"
    assert Taxonomy.from_names(["DC", "adenosis"]) is t
    assert Taxonomy.from_dict(t.to_dict()) is t


def test_from_names_gives_keys_in_order_display_names_and_no_groups():
    t = Taxonomy.from_names(TSN)
    assert t.names == tuple(TSN) and not t.has_groups and not t.is_breakhis
    assert [t.label_for_key(k) for k in "123"] == TSN
    assert t.label_for_key("0") == NON_TISSUE and t.label_for_key("u") == UNCERTAIN
    assert t.label_for_key("4") is None
    assert t.label_parts("stroma") == ("2", "Stroma", "STR")
    assert t.review_labels == (*TSN, NON_TISSUE, UNCERTAIN)
    assert t.normalise("Tumor") == "tumor"
    with pytest.raises(KeyError):
        t.normalise("adenosis")
    assert t.rollup(TSN, np.ones((4, 3))).shape == (4, 0)
    assert Taxonomy.from_dict(json.loads(json.dumps(t.to_dict()))) == t


def test_more_than_nine_classes_have_no_keys_past_nine():
    t = Taxonomy.from_names([f"c{i}" for i in range(12)])
    assert [s.key for s in t.classes] == [*"123456789", "", "", ""]
    assert len({s.colour for s in t.classes}) == 12
    assert t.label_parts("c10")[0] == ""


def _write(tmp_path, obj, name="taxonomy.json"):
    p = tmp_path / name
    p.write_text(json.dumps(obj) if not isinstance(obj, str) else obj)
    return p


def test_a_taxonomy_file_with_groups(tmp_path):
    p = _write(tmp_path, {"name": "tsn", "classes": [
        {"name": "tumor", "display": "Tumour", "colour": "#E69F00", "key": "3",
         "group": "malignant"},
        {"name": "stroma", "group": "benign"},
        {"name": "normal", "display": "Normal tissue", "group": "benign"}]})
    t = load_taxonomy_file(p)
    assert t.names == tuple(TSN) and t.benign_malignant
    assert [s.key for s in t.classes] == ["3", "1", "2"]
    assert t.colour_of("tumor") == "#e69f00" and t.display("normal") == "Normal tissue"
    assert t.group_of("stroma") == "benign"
    g = t.rollup(TSN, np.array([[0.5, 0.3, 0.2]]))
    assert g.tolist() == [[0.5, 0.5]] and t.groups == ("malignant", "benign")


@pytest.mark.parametrize("obj, words", [
    ({"classes": [{"name": "a", "colour": "red"}, {"name": "b"}]}, "is not a colour"),
    ({"classes": [{"name": "a", "key": "1"}, {"name": "b", "key": 1}]}, "key 1 is already"),
    ({"classes": [{"name": f"c{i}"} for i in range(12)]}, "12 classes"),
    ({"classes": [{"name": "a"}, {"name": "a"}]}, "listed twice"),
    ({"classes": [{"name": "a", "group": "x"}, {"name": "b"}]}, "some classes have a group"),
    ({"classes": [{"name": "a"}, {"name": "B c"}]}, "not a lowercase name"),
    ({"classes": [{"name": "a", "key": "0"}, {"name": "b"}]}, "not a key from 1 to 9"),
    ({"classes": [{"name": "a", "shape": 1}, {"name": "b"}]}, "unknown field 'shape'"),
    ([1, 2], "JSON object with a 'classes' list"),
    ("{not json", "not a usable taxonomy file"),
])
def test_bad_taxonomy_files_give_one_line_naming_the_file(tmp_path, obj, words):
    p = _write(tmp_path, obj)
    with pytest.raises(ModelError) as err:
        load_taxonomy_file(p)
    msg = str(err.value)
    assert msg.startswith(str(p) + ": ") and words in msg and "\n" not in msg, msg


def test_manifest_takes_custom_classes_and_a_taxonomy_file_inside_the_bundle(tmp_path):
    from models_support import manifest

    m = validate_manifest(manifest("tsn", "clip-linear", classes=TSN))
    assert m["classes"] == TSN
    assert from_manifest(m, tmp_path) == Taxonomy.from_names(TSN)
    _write(tmp_path, {"classes": [{"name": n, "display": n.upper()} for n in TSN]})
    m["taxonomy"] = "taxonomy.json"
    assert from_manifest(m, tmp_path).display("tumor") == "TUMOR"
    m["classes"] = ["stroma", "tumor", "normal"]
    with pytest.raises(ModelError, match="not the manifest's"):
        from_manifest(m, tmp_path)
    m["classes"], m["taxonomy"] = TSN, "../taxonomy.json"
    with pytest.raises(ModelError, match="outside the bundle"):
        from_manifest(m, tmp_path / "sub")


# -- end to end: predict, keyboard review, export, retrain ----------------------------------

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


def test_zero_shot_custom_classes_use_their_display_names_unless_a_prompt_file_says(tmp_path):
    from models_support import manifest

    from pvdesk.models import Bundle
    from pvdesk.models.prompts import class_texts

    b = Bundle(manifest("z", "clip-zeroshot", classes=TSN))
    texts = class_texts(b)
    assert list(texts) == TSN and texts["stroma"][0] == "an H&E image of Stroma."
    folder = tmp_path / "z"
    folder.mkdir()
    (folder / "taxonomy.json").write_text(json.dumps({"classes": [
        {"name": "tumor", "display": "invasive tumour"}, {"name": "stroma"},
        {"name": "normal"}]}))
    (folder / "prompts.json").write_text(json.dumps({"templates": ["a slide of {}."],
                                                     "classes": {"normal": ["normal ducts"]}}))
    b = Bundle(manifest("z", "clip-zeroshot", classes=TSN, taxonomy="taxonomy.json",
                        prompts="prompts.json"), folder)
    texts = class_texts(b)
    assert texts["normal"] == ["a slide of normal ducts."]
    assert texts["tumor"][0] == "an H&E image of invasive tumour."
    with pytest.raises(ModelError, match="field 'prompts'"):  # BreakHis still needs them
        Bundle(manifest("z", "clip-zeroshot"))


def test_a_bundle_with_a_bad_taxonomy_file_is_refused_naming_the_file(tmp_path):
    from models_support import linear_tensors, manifest

    from pvdesk.models import resolve_bundle, write_bundle

    folder = tmp_path / "b"
    write_bundle(folder, manifest("b", "clip-linear", classes=TSN), linear_tensors(3))
    m = json.loads((folder / "manifest.json").read_text())
    m["taxonomy"] = "taxonomy.json"
    (folder / "manifest.json").write_text(json.dumps(m))
    (folder / "taxonomy.json").write_text(json.dumps({"classes": [
        {"name": "tumor", "key": "1"}, {"name": "stroma", "key": "1"}, {"name": "normal"}]}))
    with pytest.raises(ModelError) as err:
        resolve_bundle(str(folder))
    assert str(err.value).startswith(str(folder / "taxonomy.json") + ": field 'classes[1].key'")


def test_heatmap_and_summary_follow_the_taxonomy_groups(tmp_path):
    from test_heatmap import _grid, _tiles

    from pvdesk.heatmap import ARGMAX, ROLLUP, HeatmapGrid, render
    from pvdesk.predict.summary import NO_RULE, ModelTally, summary_text

    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6]])
    plain = Taxonomy.from_names(TSN)
    hm = HeatmapGrid(_grid(_tiles()), TSN, taxonomy=plain)
    hm.add(_tiles(), probs)
    assert hm.layers == (*TSN, ARGMAX)  # no groups: no roll-up layer
    with pytest.raises(KeyError, match="no roll-up"):
        render(hm, ROLLUP)
    img = np.asarray(render(hm, "tumor", opacity=1.0))
    assert tuple(img[0, 0, :3]) == tuple(int(plain.colour_of("tumor")[i:i + 2], 16)
                                         for i in (1, 3, 5))
    t = ModelTally("m", TSN, True, plain)
    t.add(probs)
    d = t.to_dict()
    assert d["slide_call"] is None and d["slide_call_rule"] == NO_RULE
    assert d["tiles_per_group"] == {} and d["malignant_share"] is None

    p = _write(tmp_path, {"classes": [{"name": "tumor", "group": "malignant"},
                                      {"name": "stroma", "group": "benign"},
                                      {"name": "normal", "group": "benign"}]})
    grouped = load_taxonomy_file(p)
    hm = HeatmapGrid(_grid(_tiles()), TSN, taxonomy=grouped)
    hm.add(_tiles(), probs)
    assert ROLLUP in hm.layers
    assert np.nanmax(hm.values(ROLLUP)) <= 1.0
    t = ModelTally("m", TSN, True, grouped)
    t.add(probs)
    d = t.to_dict()
    assert d["tiles_per_group"] == {"malignant": 1, "benign": 2}
    assert d["slide_call"] == "malignant"  # 1 of 3 tiles >= 10%
    info = {"models": [d], "source": "s", "grid": "g", "seconds": 1.0, "tiles_per_s": 3.0}
    assert "malignant 1, benign 2" in summary_text(info)


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


def test_the_key_hint_says_which_classes_have_no_key(qtbot):
    from pvdesk.ui.review_dock import ReviewDock, key_range

    assert key_range(Taxonomy.breakhis()) == "1–8 subtype"
    assert key_range(Taxonomy.from_names(TSN)) == "1–3 class"
    twelve = Taxonomy.from_names([f"c{i}" for i in range(12)])
    assert "the other 3 classes have no key" in key_range(twelve)
    dock = ReviewDock()
    qtbot.addWidget(dock)
    dock.set_taxonomy(twelve)
    assert len(dock.key_buttons) == 11  # 9 keyed classes, 0 and U
    assert dock.klass.count() == 13 and dock.diagnosis.findData("c11") > 0
    dock.set_mode(True)
    assert "other 3 classes have no key" in dock.hint.text()
    dock.show()
    old = list(dock.key_buttons.values())
    assert all(b.isVisible() for b in old)
    dock.set_taxonomy(Taxonomy.from_names(TSN))  # another run: its buttons replace these
    assert len(dock.key_buttons) == 5 and not any(b.isVisible() for b in old)
    assert dock.hint.text().startswith("<b>Keys:</b> 1–3 class")


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


def test_a_retrained_bundle_keeps_the_starting_taxonomy(tmp_path):
    from training.taxonomy_carry import ordered, write_taxonomy

    p = _write(tmp_path, {"name": "tsn", "classes": [
        {"name": "tumor", "display": "Tumour", "group": "malignant"},
        {"name": "stroma", "group": "benign"}, {"name": "normal", "group": "benign"}]})
    tax = load_taxonomy_file(p)
    assert ordered(["normal", "stroma", "tumor"], tax) == TSN
    assert ordered(["normal", "tumor"], None) == ["normal", "tumor"]
    out = tmp_path / "new"
    assert write_taxonomy(out, tax, TSN) == "taxonomy.json"
    again = load_taxonomy_file(out / "taxonomy.json")
    assert again == tax
    assert write_taxonomy(out, tax, ["tumor", "stroma"]) == "taxonomy.json"
    two = load_taxonomy_file(out / "taxonomy.json")
    assert two.names == ("tumor", "stroma") and two.groups == ("malignant", "benign")
    # both left in one group: nothing to roll up, so the file has no groups
    assert write_taxonomy(out, tax, ["stroma", "normal"]) == "taxonomy.json"
    benign = load_taxonomy_file(out / "taxonomy.json")
    assert benign.names == ("stroma", "normal") and not benign.has_groups
    plain = Taxonomy.from_names(TSN)
    assert write_taxonomy(tmp_path / "plain", plain, TSN) is None  # nothing beyond names


def test_heatmap_panel_layers_and_legend_follow_a_grouped_taxonomy_file(qtbot, tmp_path):
    from pvdesk.heatmap import ARGMAX, ROLLUP
    from pvdesk.ui.overlay_panel import OverlayPanel

    p = _write(tmp_path, {"name": "tsn", "classes": [
        {"name": "tumor", "display": "Tumour", "colour": "#000000", "group": "malignant"},
        {"name": "stroma", "group": "benign"},
        {"name": "normal", "display": "Normal tissue", "group": "benign"}]})
    tax = load_taxonomy_file(p)
    panel = OverlayPanel()
    qtbot.addWidget(panel)
    panel.resize(320, 420)
    panel.set_models(["tsn"], TSN, tax)
    layers = [panel.layer.itemData(i) for i in range(panel.layer.count())]
    assert layers == [ARGMAX, ROLLUP, *TSN]
    assert panel.layer.itemText(1) == "Benign / malignant roll-up"
    assert panel.layer.itemText(2) == "1  Tumour"
    panel.update_legend(ARGMAX, TSN, tax)
    assert panel.legend._entries == [("1  Tumour", "#000000"), ("2  Stroma", "#0072b2"),
                                     ("3  Normal tissue", "#009e73")]
    panel.show()
    qtbot.waitExposed(panel)
    SHOTS.mkdir(parents=True, exist_ok=True)
    panel.grab().save(str(SHOTS / "taxonomy_legend_grouped.png"))
    panel.update_legend(ROLLUP, TSN, tax)
    assert panel.legend._gradient == (["#0072b2", "#e69f00"], "benign", "malignant")
    panel.set_models(["plain"], TSN, Taxonomy.from_names(TSN))  # no groups: no roll-up
    assert ROLLUP not in [panel.layer.itemData(i) for i in range(panel.layer.count())]


def test_a_review_export_of_custom_classes_trains_in_its_own_class_order(tmp_path):
    from training_fixtures import colour_slide, review_rows

    from pvdesk.export.csv import write_rows_csv
    from training.data.review_csv import load_review_csv
    from training.errors import DataError

    slide, tiles = colour_slide(tmp_path / "s.tif", classes=3, per_class=2)
    names = {"adenosis": "tumor", "fibroadenoma": "stroma", "tubular_adenoma": "normal"}
    rows = [dict(r, probs=[1 / 3] * 3, review_label=names[r["review_label"]])
            for r in review_rows(slide, tiles)]
    path = tmp_path / "e.csv"
    write_rows_csv(path, TSN, rows)
    ds = load_review_csv(path)
    assert ds.classes == TSN  # the file's order, not sorted
    assert ds.with_samples(ds.samples[:4]).classes == [c for c in TSN
                                                       if c in {s.label for s in ds.samples[:4]}]
    write_rows_csv(path, TSN, [dict(rows[0], review_label="adenosis")])
    with pytest.raises(DataError, match="unknown label 'adenosis'.*tumor, stroma, normal"):
        load_review_csv(path)


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


def test_the_review_menu_lists_every_class_and_labels_keyless_ones_by_name(qtbot):
    from PySide6.QtWidgets import QMainWindow, QMenu

    from pvdesk.ui.review_menus import set_label_actions

    w = QMainWindow()
    qtbot.addWidget(w)
    w.review_menu = QMenu("Review", w)
    w.review_label_end = w.review_menu.addSeparator()
    w.review_label_actions = []
    keys, labelled = [], []
    twelve = Taxonomy.from_names([f"c{i}" for i in range(12)])
    set_label_actions(w, twelve, keys.append, label=labelled.append)
    texts = [a.text() for a in w.review_label_actions]
    assert texts[0] == "Label as C0\t1" and texts[11] == "Label as C11"
    assert texts[-2:] == ["Label as Non-tissue / artefact\t0", "Label as Uncertain\tU"]
    w.review_label_actions[0].trigger()
    w.review_label_actions[11].trigger()
    assert keys == ["1"] and labelled == ["c11"]
    set_label_actions(w, Taxonomy.breakhis(), keys.append)  # another run: replaced, not added
    assert len(w.review_label_actions) == 10
    assert [a for a in w.review_menu.actions() if a.text().startswith("Label as")] == \
        w.review_label_actions


def test_a_hostile_stored_taxonomy_falls_back_to_the_class_names(capsys):
    from types import SimpleNamespace

    tax = Taxonomy.from_names(TSN)
    stored = tax.to_dict()
    stored["classes"][0]["colour"] = "url(javascript:1)"
    run = SimpleNamespace(run_id=7, classes=TSN, settings={"taxonomy": stored})
    assert Taxonomy.of_run(run) == tax
    assert "run 7: stored taxonomy unusable" in capsys.readouterr().err
    assert Taxonomy.of_run(run) is Taxonomy.of_run(run)  # parsed once per run object
    assert capsys.readouterr().err == ""  # and reported once, not at every correction
    for bad in ({"classes": "x"}, {"classes": [{"name": "a"}]},
                {"classes": [dict(c, key="7") for c in tax.to_dict()["classes"]]}):
        run = SimpleNamespace(run_id=8, classes=TSN, settings={"taxonomy": bad})
        assert Taxonomy.of_run(run) == tax


def test_a_long_taxonomy_keeps_its_legends_bounded(qtbot):
    from PIL import Image
    from test_heatmap import _grid, _tiles

    from pvdesk.heatmap import ARGMAX, HeatmapGrid, figure
    from pvdesk.ui.overlay_panel import MAX_LEGEND, Legend

    names = [f"c{i}" for i in range(300)]
    tax = Taxonomy.from_names(names)
    legend = Legend()
    qtbot.addWidget(legend)
    legend.show_classes(names, tax)
    assert len(legend._entries) == MAX_LEGEND and legend._entries[-1] == (
        "… and 281 more classes (Layer list)", None)
    assert legend.height() <= MAX_LEGEND * 20 + 6
    legend.grab()  # paints the count line without a swatch
    hm = HeatmapGrid(_grid(_tiles()), names, taxonomy=tax)
    probs = np.full((3, 300), 1 / 300)
    hm.add(_tiles(), probs)
    img = figure(Image.new("RGB", (400, 400), "white"), hm, ARGMAX, "m")
    assert img.height < 400 + 600


def test_team_hints_follow_the_runs_keys(qtbot):
    """Blinded reading and adjudication name the run's keys, not BreakHis's 1–8."""
    from pvdesk.app.team import ADJUDICATOR, TeamState
    from pvdesk.ui.review_dock import ReviewDock
    from pvdesk.ui.team_view import apply_to_dock

    dock = ReviewDock()
    qtbot.addWidget(dock)
    dock.set_taxonomy(Taxonomy.from_names(TSN))
    apply_to_dock(dock, TeamState("bob", blinded_setting=True))
    dock.set_mode(True)
    assert "<b>Keys:</b> 1–3 class" in dock.hint.text() and "1–8" not in dock.hint.text()
    apply_to_dock(dock, TeamState("carol", role=ADJUDICATOR, disputed=frozenset()))
    assert "1–3 / 0 / U record the consensus" in dock.hint.text()
