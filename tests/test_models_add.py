"""`pvdesk models add / import / check` and `pvdesk predict` on what they create: a timm
encoder bundle and an open_clip ``local-dir:`` bundle run on the sample slide, and their
probabilities equal a direct library call (timm; open_clip loading the folder itself) on the
same pixels and weights. Bad specs, files and folders are one line and exit 2."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
import torch.nn.functional as F
from backbone_support import TIMM_ARCH, head_file, open_clip_dir, timm_weights
from test_models_timm import direct_probs

from pvdesk.cli import main
from pvdesk.export.csv import read_predictions_csv
from pvdesk.models import resolve_bundle
from pvdesk.paths import sample_slide
from pvdesk.slides import open_source
from pvdesk.tiling import make_grid

TILE_UM = 448.0  # few tiles of the sample: the same code path as the default, faster


@pytest.fixture(scope="session")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("backbones")
    return {"timm": timm_weights(root), "head": head_file(root), "clip": open_clip_dir(root),
            "root": root}


@pytest.fixture
def home(monkeypatch, pvdesk_home):
    monkeypatch.setenv("PVDESK_OFFLINE", "1")
    monkeypatch.delenv("PVDESK_WEIGHTS_DIR", raising=False)
    return pvdesk_home


def _predict(name, out) -> dict:
    """{(x, y): {class: p}} of ``pvdesk predict`` on the sample, fp32 on the CPU."""
    assert main(["predict", str(sample_slide()), "--model", name, "--out", str(out),
                 "--device", "cpu", "--precision", "fp32", "--tile-um", str(TILE_UM)]) == 0
    table = read_predictions_csv(out / sample_slide().stem / "clip_predictions.csv")
    return {(r["tile_x"], r["tile_y"]): {c: r[f"p_{c}"] for c in table.classes}
            for r in table.rows}


def _sample_tiles(size: int):
    """The sample's grid tiles as pvdesk reads them: ((x, y) list, uint8 (N, 3, S, S))."""
    import numpy as np

    with open_source(sample_slide()) as src:
        grid = make_grid(src, TILE_UM, size)
        imgs = [np.asarray(src.read_tile(t, grid).convert("RGB")) for t in grid.tiles]
        where = [(t.x, t.y) for t in grid.tiles]
    return where, torch.from_numpy(np.stack(imgs)).permute(0, 3, 1, 2).contiguous()


@pytest.mark.slow
def test_timm_bundle_add_then_predict_on_the_sample(home, built, tmp_path):
    assert main(["models", "add", "vits", "--backbone", f"timm:{TIMM_ARCH}", "--weights",
                 str(built["timm"]), "--head", str(built["head"]),
                 "--classes", "tumor,normal"]) == 0
    got = _predict("vits", tmp_path / "out")
    where, x = _sample_tiles(224)
    assert sorted(got) == sorted(where) and len(where) >= 3
    b = resolve_bundle("vits")
    ref = direct_probs(built["timm"], built["head"], x, b.mean, b.std)
    for i, xy in enumerate(where):
        assert got[xy]["tumor"] == pytest.approx(float(ref[i, 0]), abs=1e-4)
        assert got[xy]["normal"] == pytest.approx(float(ref[i, 1]), abs=1e-4)


@pytest.mark.slow
def test_local_dir_open_clip_bundle_add_then_predict_equals_open_clip(home, built, tmp_path,
                                                                       capsys):
    import open_clip

    prompts = tmp_path / "prompts.json"
    phrases = {"tumor": "a tumour", "stroma": "stroma", "fat": "adipose tissue"}
    prompts.write_text(json.dumps({"templates": ["a photo of {}."],
                                   "classes": {k: [v] for k, v in phrases.items()}}))
    assert main(["models", "add", "b32", "--backbone", f"local-dir:{built['clip']}",
                 "--classes", "tumor,stroma,fat", "--prompts", str(prompts)]) == 0
    b = resolve_bundle("b32")
    assert b.kind == "clip-zeroshot" and b.backbone["local_dir"] == str(built["clip"])
    # input size and normalisation from the folder's open_clip_config.json
    assert b.input_size == 224 and b.mean == (0.5, 0.4, 0.3) and b.std == (0.2, 0.25, 0.3)
    assert b.status == "pretrained, not evaluated on pathology"
    got = _predict("b32", tmp_path / "out")
    where, x = _sample_tiles(224)
    # open_clip reads the same folder itself (its own loader, weights-only)
    model = open_clip.create_model(f"local-dir:{built['clip']}").eval()
    tok = open_clip.get_tokenizer(f"local-dir:{built['clip']}")
    mean = torch.tensor(b.mean).view(1, 3, 1, 1)
    std = torch.tensor(b.std).view(1, 3, 1, 1)
    with torch.no_grad():
        img = F.normalize(model.encode_image((x.float() / 255 - mean) / std), dim=-1)
        txt = F.normalize(model.encode_text(tok([f"a photo of {p}." for p in
                                                 phrases.values()])), dim=-1)
        ref = (model.logit_scale.exp() * img @ txt.t()).softmax(1)
    for i, xy in enumerate(where):
        for j, c in enumerate(phrases):
            assert got[xy][c] == pytest.approx(float(ref[i, j]), abs=2e-4)


def test_hf_hub_open_clip_read_from_the_weights_dir_offline(home, built, tmp_path,
                                                            monkeypatch):
    wdir = tmp_path / "wdir"
    shutil.copytree(built["clip"], wdir / "someorg--path-clip")
    monkeypatch.setenv("PVDESK_WEIGHTS_DIR", str(wdir))
    assert main(["models", "add", "hub", "--backbone", "hf-hub:someorg/path-clip",
                 "--classes", "benign,malignant"]) == 0
    b = resolve_bundle("hub")
    assert b.backbone == {"source": "hf-hub", "id": "someorg/path-clip",
                          "spec": "hf-hub:someorg/path-clip"}
    assert b.mean == (0.5, 0.4, 0.3)  # from the repository's own config
    ok, why = b.weights_status()
    assert ok and "someorg--path-clip" in why
    probs = b.load("cpu", "fp32").predict(torch.zeros(1, 3, 224, 224, dtype=torch.uint8))
    assert probs.probs.shape == (1, 2)
    monkeypatch.delenv("PVDESK_WEIGHTS_DIR")
    ok, why = b.weights_status()
    assert not ok and "hf-hub someorg/path-clip" in why


def test_import_validates_and_copies_and_check_reports(home, built, tmp_path, capsys):
    src = tmp_path / "made"
    assert main(["models", "add", "made", "--backbone", f"timm:{TIMM_ARCH}", "--weights",
                 str(built["timm"]), "--head", str(built["head"]), "--classes", "a,b"]) == 0
    shutil.move(str(home / "models" / "made"), src)
    capsys.readouterr()
    assert main(["models", "import", str(src), "--name", "imported"]) == 0
    assert (home / "models" / "imported" / "manifest.json").is_file()
    assert resolve_bundle("imported").name == "imported"
    assert main(["models", "import", str(src), "--name", "imported"]) == 2  # exists
    assert "already there" in capsys.readouterr().err
    assert main(["models", "check", "imported", "--device", "cpu", "--seconds", "0.1"]) == 0
    out = capsys.readouterr().out
    from pvdesk.models.lineage import file_sha256

    assert "classes: 2 (a, b)" in out and "tiles/s" in out
    assert file_sha256(built["timm"]) in out
    assert main(["models"]) == 0  # the listing names the spec and the backbone's sha256
    listing = capsys.readouterr().out
    assert f"backbone: timm:{TIMM_ARCH} [sha256 {file_sha256(built['timm'])[:12]}" in listing
    assert not list((home / "models").glob(".*"))  # no staging folder left behind


@pytest.mark.parametrize("argv, says", [
    (["add", "x", "--backbone", "nonsense-thing"], "forms:"),
    (["add", "x", "--backbone", "timm:no_such_arch_xyz"], "timm has no architecture"),
    (["add", "x", "--backbone", "hf-hub:not a repo"], "not a Hugging Face repository id"),
    (["add", "x", "--backbone", f"timm:{TIMM_ARCH}", "--weights", "{tmp}/missing.safetensors",
      "--head", "{tmp}/h.safetensors"], "missing.safetensors: weights file not found"),
    (["add", "x", "--backbone", f"timm:{TIMM_ARCH}"], "needs --head FILE"),
    (["add", "x", "--backbone", "local-dir:{tmp}"], "open_clip_config.json: missing"),
    (["add", "../x", "--backbone", "RN50:openai"], "must not"),
    (["add", "demo-resnet50", "--backbone", "RN50:openai"], "a built-in bundle has this name"),
    (["add", "x", "--backbone", "RN50:openai", "--classes", "tumor,Tumor!"], "classes"),
    (["import", "{tmp}"], "no manifest.json"),
    (["import", "{tmp}/nowhere"], "not a folder"),
    (["check", "no-such-model"], "no-such-model"),
])
def test_bad_input_is_one_line_and_exit_2(home, tmp_path, capsys, argv, says):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    rc = main(["models", *argv])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and says in err, err
    assert not (home / "models").exists() or not any((home / "models").iterdir())


def test_the_run_dialog_lists_what_models_lists(home, built, qtbot, capsys):
    from pvdesk.ui.run_dialog import RunDialog
    from pvdesk.ui.settings import Settings

    assert main(["models", "add", "vits-ui", "--backbone", f"timm:{TIMM_ARCH}", "--weights",
                 str(built["timm"]), "--head", str(built["head"]), "--classes", "a,b"]) == 0
    capsys.readouterr()
    assert main(["models", "--json"]) == 0
    listed = [r["name"] for r in json.loads(capsys.readouterr().out)["bundles"]]
    dlg = RunDialog(Settings())
    qtbot.addWidget(dlg)
    shown = [dlg.list.item(i).data(0x0100) for i in range(dlg.list.count())]
    assert "vits-ui" in listed and shown == listed
