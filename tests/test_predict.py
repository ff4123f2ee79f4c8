"""predict_source with fake bundles: CSV rows, heatmap PNGs, summary, store, patch folders."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
from inference_fakes import FakeClassifier, FlakySource, small_slide
from PIL import Image
from slide_factory import breakhis_tree

from pvdesk.export.csv import read_predictions_csv
from pvdesk.predict import LoadedModel, output_folder, predict_source, union_classes
from pvdesk.slides import open_source
from pvdesk.taxonomy import CLASS_NAMES, GROUPS
from pvdesk.tiling import make_grid


def _model(name, classes=CLASS_NAMES, trained=False, seed=0):
    bundle = SimpleNamespace(name=name, version="1", classes=list(classes), trained=trained,
                             input_size=32, tile_um=32.0, manifest_hash="h" + name,
                             label=f"{name} 1" + ("" if trained else " (UNTRAINED)"))
    return LoadedModel(bundle, FakeClassifier(classes, seed=seed))


@pytest.fixture(scope="module")
def slide_path(tmp_path_factory):
    return small_slide(tmp_path_factory.mktemp("pred"))


def test_slide_outputs(slide_path, tmp_path):
    models = [_model("eight", seed=1), _model("binary", GROUPS, trained=True, seed=2)]
    assert union_classes(models) == [*CLASS_NAMES, *GROUPS]
    with open_source(slide_path) as src:
        n_tiles = len(make_grid(src, 32.0, 32))
        info = predict_source(src, models, tmp_path / "s", batch_size=16, workers=2,
                              heatmap_size=300)
    table = read_predictions_csv(tmp_path / "s" / "clip_predictions.csv")
    assert table.classes == [*CLASS_NAMES, *GROUPS]
    assert len(table.rows) == 2 * n_tiles == info["csv_rows"]
    first = table.rows[0]
    # "eight" is untrained: the CSV's model column says so, the trained "binary" is plain
    assert first["model"] == "eight@1 (UNTRAINED)" and first["tile_w"] == 64
    assert first["mpp"] == 0.5
    assert first["p_benign"] is None and first["review_status"] == "unreviewed"
    probs = [first[f"p_{c}"] for c in CLASS_NAMES]
    assert first["predicted"] == CLASS_NAMES[int(np.argmax(probs))]
    assert first["confidence"] == pytest.approx(max(probs))
    assert {r["model"] for r in table.rows} == {"eight@1 (UNTRAINED)", "binary@1"}
    coords = {(r["tile_x"], r["tile_y"]) for r in table.rows}
    assert len(coords) == n_tiles
    pngs = sorted(p.name for p in (tmp_path / "s" / "heatmaps" / "eight_1").glob("*.png"))
    assert pngs == sorted([f"{c}.png" for c in CLASS_NAMES] + ["rollup.png", "argmax.png"])
    assert len(list((tmp_path / "s" / "heatmaps" / "binary_1").glob("*.png"))) == 4
    img = Image.open(tmp_path / "s" / "heatmaps" / "eight_1" / "argmax.png")
    assert img.width == 300 or img.height > 300
    summary = json.loads((tmp_path / "s" / "summary.json").read_text())
    eight = summary["models"][0]
    assert sum(eight["tiles_per_class"].values()) == n_tiles == eight["tiles_classified"]
    assert eight["slide_call"] in GROUPS and eight["warning"] and "UNTRAINED" in eight["warning"]
    assert summary["models"][1]["warning"] is None
    text = (tmp_path / "s" / "summary.txt").read_text()
    assert text.startswith("!!!") and "UNTRAINED" in text and ">= 10%" in text


def test_unreadable_tiles_get_a_row_and_are_counted(slide_path, tmp_path):
    with open_source(slide_path) as src:
        grid = make_grid(src, 32.0, 32)
        bad = grid.tiles[2]
        flaky = FlakySource(src, bad={bad.index})
        info = predict_source(flaky, [_model("m")], tmp_path / "f", heatmap_size=200)
    assert info["tiles_unreadable"] == 1 and info["csv_rows"] == len(grid)
    assert "damaged" in info["unreadable_examples"][0]
    rows = read_predictions_csv(tmp_path / "f" / "clip_predictions.csv").rows
    broken = [r for r in rows if r["tile_status"] == "unreadable"]
    assert [(r["tile_x"], r["tile_y"]) for r in broken] == [(bad.x, bad.y)]
    assert broken[0]["predicted"] == "" and broken[0]["p_adenosis"] is None
    assert sum(r["tile_status"] == "ok" for r in rows) == len(grid) - 1
    text = (tmp_path / "f" / "summary.txt").read_text()
    assert f"1 of {len(grid)} could not be read" in text
    assert f"{len(grid) - 1} of {len(grid)} tiles classified, 1 unreadable" in text
    assert "the 1 unreadable ones could change it" in text


def test_store_records_runs_and_predictions(slide_path, tmp_path):
    from pvdesk.review.store import ReviewStore

    with ReviewStore(tmp_path / "r.pvdb") as store, open_source(slide_path) as src:
        info = predict_source(src, [_model("a"), _model("b", GROUPS)], tmp_path / "o",
                              store=store, heatmap_size=200)
        runs = store.runs()
        assert [r.model for r in runs] == ["a@1", "b@1"] and not runs[0].trained
        assert store.counts(run_id=runs[0].run_id).total == info["tiles"]
        assert store.counts(run_id=runs[1].run_id).total == info["tiles"]
        rec = next(store.tiles(run_id=runs[0].run_id))
        assert rec.mpp == 0.5 and len(rec.probs) == 8


def test_patch_folder_has_rows_but_no_heatmaps(tmp_path):
    root = breakhis_tree(tmp_path / "patches", per_class=1)
    with open_source(root) as src:
        info = predict_source(src, [_model("m")], tmp_path / "p")
    table = read_predictions_csv(tmp_path / "p" / "clip_predictions.csv")
    assert len(table.rows) == 8 == info["tiles"]
    assert table.rows[0]["tile_x"] is None and table.rows[0]["source"].endswith(".png")
    assert not (tmp_path / "p" / "heatmaps").exists()


def test_output_folders_are_unique(tmp_path):
    taken = set()
    a = output_folder(tmp_path, tmp_path / "x.svs", taken)
    b = output_folder(tmp_path, tmp_path / "x.tif", taken)
    assert a.name == "x" and b.name == "x-2"


def test_a_slide_without_tissue_gives_an_empty_csv_and_no_call(tmp_path):
    from slide_factory import paint, write_pyramid

    blank = write_pyramid(tmp_path / "blank.tif", paint(600, 400, []), levels=2)
    with open_source(blank) as src:
        info = predict_source(src, [_model("m")], tmp_path / "b", heatmap_size=200)
    assert info["tiles"] == 0 and info["csv_rows"] == 0
    assert read_predictions_csv(tmp_path / "b" / "clip_predictions.csv").rows == []
    assert info["models"][0]["slide_call"] is None
    assert "none (no tile classified)" in (tmp_path / "b" / "summary.txt").read_text()


def test_cancel_leaves_no_partial_csv(slide_path, tmp_path):
    import threading

    from pvdesk.errors import PvdeskError

    ev = threading.Event()
    ev.set()
    with open_source(slide_path) as src, pytest.raises(PvdeskError, match="cancelled"):
        predict_source(src, [_model("m")], tmp_path / "c", cancel=ev)
    assert not (tmp_path / "c" / "clip_predictions.csv").exists()
    assert list((tmp_path / "c").iterdir()) == []
