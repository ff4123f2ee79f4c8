"""Trained-ness follows lineage: a head on a random-weight backbone is untrained.

Before, `pvdesk-train train --head clip-linear --backbone demo-clip-rn50` wrote
``trained: true``: the new bundle ran with no UNTRAINED banner and believable confidences.
Now the manifest records what the bundle stands on (with sha256 sums), and the bundle,
`pvdesk models`, the CSV's model column, the report and the window's banner say untrained.
Zero-shot bundles are "pretrained, not evaluated on pathology" until a report says more.
"""

from __future__ import annotations

import json

import pytest
from training_fixtures import colour_dataset

from pvdesk.cli import main as pvdesk_main
from pvdesk.models import Bundle, resolve_bundle
from pvdesk.models.lineage import file_sha256, untrained_reasons
from pvdesk.taxonomy import CLASS_NAMES
from training.cli import main as train_main


@pytest.fixture(scope="module")
def head(tmp_path_factory):
    """A clip-linear head trained on demo-clip-rn50 (random weights), once per module."""
    mp = pytest.MonkeyPatch()
    root = tmp_path_factory.mktemp("lineage")
    mp.setenv("PVDESK_HOME", str(root / "home"))
    mp.setenv("PVDESK_OFFLINE", "1")
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    data = colour_dataset(root / "data", classes=2, patients=3, per_patient=1)
    out = root / "head-on-random"
    rc = train_main(["train", "--data", str(data), "--head", "clip-linear", "--backbone",
                     "demo-clip-rn50", "--out", str(out), "--progress", "none",
                     "--bootstrap", "20", "--workers", "1"])
    torch.set_num_threads(threads)
    assert rc == 0
    yield out
    mp.undo()


def test_head_on_random_backbone_is_untrained_with_its_lineage(head):
    m = json.loads((head / "manifest.json").read_text())
    assert m["trained"] is False  # the manifest's own flag, for any reader
    backbone, own = m["lineage"]["parts"]
    assert backbone["role"] == "backbone" and backbone["name"] == "demo-clip-rn50"
    assert backbone["trained"] is False and "random" in backbone["why"]
    assert backbone["manifest_sha256"] == resolve_bundle("demo-clip-rn50").manifest_hash
    assert own["role"] == "head" and own["trained"] is True and len(own["data_hash"]) == 64
    files = m["lineage"]["files"]
    assert files == [{"file": "weights.safetensors",
                      "sha256": file_sha256(head / "weights.safetensors"),
                      "size": (head / "weights.safetensors").stat().st_size}]
    b = Bundle.from_folder(head)
    assert not b.trained and b.status.startswith("UNTRAINED: its backbone demo-clip-rn50")
    assert "(UNTRAINED)" in b.label


def test_report_and_models_say_untrained(head, capsys):
    report = (head / "report.md").read_text()
    assert report.startswith("# UNTRAINED — ")
    assert "- model status: UNTRAINED: its backbone demo-clip-rn50 is untrained" in report
    assert pvdesk_main(["models", "--dir", str(head)]) == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.startswith("head-on-random "))
    assert "UNTRAINED: its backbone demo-clip-rn50 is untrained" in line
    assert "stands on: backbone demo-clip-rn50 1 (UNTRAINED" in out
    assert pvdesk_main(["models", "--dir", str(head), "--json"]) == 0
    row = next(r for r in json.loads(capsys.readouterr().out)["bundles"]
               if r["name"] == "head-on-random")
    assert row["trained"] is False and row["untrained_because"]
    assert row["weights_sha256"]["weights.safetensors"] == file_sha256(
        head / "weights.safetensors")
    assert row["evaluation"].startswith("test accuracy") and " on " in row["evaluation"]


def test_predict_csv_model_column_says_untrained(head, tmp_path, capsys):
    from pvdesk.export.csv import read_predictions_csv
    from pvdesk.paths import sample_slide

    rc = pvdesk_main(["predict", str(sample_slide()), "--model", str(head), "--out",
                      str(tmp_path), "--tile-um", "448", "--device", "cpu"])
    err = capsys.readouterr().err
    assert rc == 0 and "UNTRAINED" in err
    folder = next(p for p in tmp_path.iterdir() if p.is_dir())  # beside it: cohort.csv
    rows = read_predictions_csv(folder / "clip_predictions.csv").rows
    assert rows and {r["model"] for r in rows} == {"head-on-random@1 (UNTRAINED)"}
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["models"][0]["trained"] is False and summary["models"][0]["warning"]


def test_window_shows_the_untrained_banner(head, qtbot, pvdesk_home):
    from ui_support import open_window, slide_shown

    from pvdesk.paths import sample_slide
    from pvdesk.ui.worker import RunRequest

    w = open_window(qtbot, sample_slide(), None, exposed=False, ready=slide_shown)
    states: list[str] = []
    w.runs.finished.connect(states.append)
    assert w.start_run(RunRequest([str(head)], device="cpu", tile_um=896.0))
    qtbot.waitUntil(lambda: bool(states), timeout=60000)
    assert states == ["done"]
    assert w.banner.isVisible() and "UNTRAINED" in w.banner.text()
    assert "head-on-random" in w.banner.text()


# -- the rule on manifests, without training ---------------------------------------------

def _manifest(**over) -> dict:
    m = {"name": "x", "kind": "clip-linear", "classes": list(CLASS_NAMES),
         "backbone": {"source": "open_clip", "model": "RN50", "pretrained": "openai"},
         "trained": True}
    m.update(over)
    return m


def test_bundles_written_before_lineage_are_judged_by_their_backbone():
    # what training/export.py wrote for a head on demo-clip-rn50: trained true, no lineage
    old = _manifest(backbone={"source": "bundle", "model": "RN50", "init": "random",
                              "seed": 0})
    assert Bundle(old).trained is False
    assert "random weights" in Bundle(old).untrained_reasons[0]
    assert Bundle(_manifest()).trained  # a head on OpenAI's weights is trained


def test_any_untrained_part_makes_the_bundle_untrained():
    part = {"role": "backbone", "name": "b", "trained": False, "why": "random weights"}
    assert untrained_reasons(_manifest(lineage={"parts": [part]})) == [
        "its backbone b is untrained (random weights)"]
    ok = dict(part, trained=True)
    assert Bundle(_manifest(lineage={"parts": [ok]})).trained
    # a ResNet50 fine-tune trains every weight: a random start is history, not a dependency
    start = {"role": "start", "gates": False, "trained": False}
    b = Bundle(_manifest(kind="resnet50", backbone={"source": "torchvision", "weights": None,
                                                   "init": "random"},
                         lineage={"parts": [start, {"role": "network", "trained": True}]}))
    assert b.trained and b.status == "trained (from random initialisation)"
    from pvdesk.errors import ModelError

    with pytest.raises(ModelError, match="lineage"):
        Bundle(_manifest(lineage={"parts": [{"role": "backbone"}]}))


def test_make_manifest_follows_the_lineage():
    from training.export import make_manifest

    def made(trained_backbone: bool) -> dict:
        return make_manifest("n", "clip-linear", ["adenosis", "fibroadenoma"],
                             {"source": "bundle", "model": "RN50"}, 224, (0, 0, 0),
                             (1, 1, 1), 112.0, {}, "d", None,
                             {"parts": [{"role": "backbone", "trained": trained_backbone},
                                        {"role": "head", "trained": True}]})

    assert made(False)["trained"] is False and made(True)["trained"] is True


def test_zero_shot_is_pretrained_not_evaluated_until_a_report_says_otherwise(capsys):
    zs = resolve_bundle("clip-rn50-zeroshot")
    assert zs.trained and zs.status == "pretrained, not evaluated on pathology"
    assert zs.evaluation == "pretrained, not evaluated on pathology"
    assert resolve_bundle("demo-resnet50").evaluation == "not evaluated"
    assert pvdesk_main(["models"]) == 0
    out = capsys.readouterr().out
    block = out[out.index("clip-rn50-zeroshot 1"):]
    assert block.splitlines()[0].endswith("pretrained, not evaluated on pathology  (built-in)")
    assert "    evaluation: pretrained, not evaluated on pathology" in block
    m = dict(zs.manifest, provenance={"metrics": {
        "split": "test", "n": 40, "correct": 31, "accuracy": 0.775, "macro_f1": 0.61,
        "accuracy_ci95": [0.62, 0.88], "ci_unit": "patient"}})
    evaluated = Bundle(m)
    assert evaluated.status == "trained"
    assert evaluated.evaluation == ("test accuracy 0.775 on 40 images (95% CI 0.620-0.880, "
                                    "bootstrap over patients), macro-F1 0.610")
    # a contaminated evaluation is not an evaluation
    dirty = dict(zs.manifest, provenance={"evaluations": {"k": dict(
        m["provenance"]["metrics"], contaminated=True)}})
    assert Bundle(dirty).evaluation == "pretrained, not evaluated on pathology"


def test_run_dialog_lists_each_bundle_with_its_evaluation(qtbot):
    from pvdesk.ui.run_dialog import bundle_line

    zs = resolve_bundle("clip-rn50-zeroshot")
    demo = resolve_bundle("demo-clip-rn50")
    assert "evaluation: pretrained, not evaluated on pathology" in bundle_line(zs, True, "")
    text = bundle_line(demo, True, "")
    assert "UNTRAINED: its CLIP backbone RN50 has random weights" in text
    assert "evaluation: not evaluated" in text


def test_store_export_says_untrained_and_import_keeps_it(tmp_path):
    from pvdesk.export.csv import read_predictions_csv, write_predictions_csv
    from pvdesk.export.csv_import import import_csv
    from pvdesk.review.store import ReviewStore
    from pvdesk.review.types import TilePrediction

    probs = [1 / 8] * 8
    with ReviewStore(tmp_path / "a.pvdb") as store:
        store.add_slide("s", "/x/s.svs", {})
        for name, trained in (("good", True), ("demo", False)):
            run = store.add_run(name, "1", "", list(CLASS_NAMES), "cpu", {}, trained=trained)
            store.add_predictions(run, "s", [TilePrediction("/x/s.svs", 0, 0, 224, 224, 0.5,
                                                            probs)])
        write_predictions_csv(store, tmp_path / "c.csv")
    models = {r["model"] for r in read_predictions_csv(tmp_path / "c.csv").rows}
    assert models == {"good@1", "demo@1 (UNTRAINED)"}
    with ReviewStore(tmp_path / "b.pvdb") as fresh:
        import_csv(fresh, tmp_path / "c.csv")
        runs = {r.model: r.trained for r in fresh.runs()}
    assert runs == {"good@1": True, "demo@1": False}
