"""`pvdesk predict` end to end on the CMU sample with both demo bundles, and bad input."""

from __future__ import annotations

import json

import pytest

from pvdesk.cli import main
from pvdesk.export.csv import read_predictions_csv
from pvdesk.paths import sample_slide
from pvdesk.slides import open_source
from pvdesk.taxonomy import CLASS_NAMES
from pvdesk.tiling import make_grid


@pytest.mark.slow
def test_predict_sample_with_two_demo_bundles(tmp_path, capsys):
    slide = sample_slide()
    out = tmp_path / "out"
    # 224 um tiles (a quarter of the default count) keep this test short on a small CPU;
    # the default 112 um run is the same code path with more tiles.
    rc = main(["predict", str(slide), "--model", "demo-clip-rn50", "--model", "demo-resnet50",
               "--out", str(out), "--heatmap-size", "400", "--tile-um", "224"])
    cap = capsys.readouterr()
    assert rc == 0, cap.err
    assert "UNTRAINED" in cap.err
    with open_source(slide) as src:
        n_tiles = len(make_grid(src, 224.0, 224))
    folder = out / slide.stem
    table = read_predictions_csv(folder / "clip_predictions.csv")
    assert table.classes == list(CLASS_NAMES)
    assert len(table.rows) == 2 * n_tiles
    for model in ("demo-clip-rn50@1", "demo-resnet50@1"):  # untrained: the CSV says so
        rows = [r for r in table.rows if r["model"] == f"{model} (UNTRAINED)"]
        assert len({(r["tile_x"], r["tile_y"]) for r in rows}) == n_tiles
        assert all(abs(sum(r[f"p_{c}"] for c in CLASS_NAMES) - 1) < 1e-3 for r in rows)
        pngs = {p.name for p in (folder / "heatmaps" / model.replace("@", "_")).glob("*.png")}
        assert pngs == {f"{c}.png" for c in CLASS_NAMES} | {"rollup.png", "argmax.png"}
    summary = json.loads((folder / "summary.json").read_text())
    assert [m["tiles_classified"] for m in summary["models"]] == [n_tiles, n_tiles]
    text = (folder / "summary.txt").read_text()
    assert "UNTRAINED" in text and "slide call" in text and "rule:" in text
    assert f"{folder}: {n_tiles} tiles" in cap.out


@pytest.mark.parametrize("argv, says", [
    (["nowhere.svs", "--model", "demo-resnet50"], "nowhere.svs: no such file"),
    (["{slide}", "--model", "no-such-model"], "no-such-model"),
    (["{slide}", "--model", "demo-resnet50", "--overlap", "1.5"], "--overlap"),
    (["{slide}", "--model", "demo-resnet50", "--batch", "0"], "--batch"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, argv, says):
    argv = [a.replace("{slide}", str(sample_slide())) for a in argv]
    try:
        rc = main(["predict", *argv, "--out", str(tmp_path / "o")])
    except SystemExit as exc:  # a value argparse refuses
        rc = exc.code
    err = capsys.readouterr().err
    assert rc == 2
    assert says in err and len(err.strip().splitlines()) == 1
