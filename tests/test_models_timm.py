"""timm image encoders under a linear head: built at random init, saved as their published
weights are, and loaded through the code path real weights take (pvdesk.models.timm_tower):
the probabilities equal a direct timm call on the same file; weights are found in the
documented order; a changed file is refused by its sha256, which is cached."""

from __future__ import annotations

import shutil

import pytest
import torch
import torch.nn.functional as F
from backbone_support import TIMM_ARCH, head_file, timm_weights
from models_support import tiles

from pvdesk.cli import main
from pvdesk.errors import ModelError
from pvdesk.models import Bundle, resolve_bundle


@pytest.fixture(scope="session")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("timm-weights")
    return {"weights": timm_weights(root), "head": head_file(root), "root": root}


@pytest.fixture
def home(monkeypatch, pvdesk_home):
    monkeypatch.setenv("PVDESK_OFFLINE", "1")
    monkeypatch.delenv("PVDESK_WEIGHTS_DIR", raising=False)
    return pvdesk_home


def _add(name, built, *extra) -> int:
    return main(["models", "add", name, "--backbone", f"timm:{TIMM_ARCH}", "--head",
                 str(built["head"]), "--classes", "tumor,normal", *extra])


def direct_probs(weights, head, x_uint8, mean, std):
    """What timm and torch compute by hand for the same file and head (no pvdesk)."""
    import timm
    from safetensors.torch import load_file

    model = timm.create_model(TIMM_ARCH, pretrained=False, num_classes=0).eval()
    state = {k: v for k, v in load_file(str(weights)).items() if not k.startswith("head.")}
    model.load_state_dict(state)
    h = load_file(str(head))
    x = x_uint8.float() / 255
    x = (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    with torch.no_grad():
        emb = F.normalize(model(x), dim=-1)
        return (emb @ h["head.weight"].t() + h["head.bias"]).softmax(1)


def test_models_add_timm_bundle_equals_a_direct_timm_call(home, built, capsys):
    assert _add("vits-probe", built, "--weights", str(built["weights"])) == 0
    out = capsys.readouterr().out
    assert "the model's own config" in out
    b = resolve_bundle("vits-probe")
    assert b.kind == "clip-linear" and b.classes == ["tumor", "normal"]
    assert b.backbone["source"] == "timm" and b.backbone["model"] == TIMM_ARCH
    # normalisation and size from timm's pretrained_cfg for the architecture
    assert b.input_size == 224 and b.mean == (0.5, 0.5, 0.5) and b.std == (0.5, 0.5, 0.5)
    # provenance: the spec, the weights' sha256 and size, the library versions
    part = b.lineage["parts"][0]
    assert part["name"] == f"timm:{TIMM_ARCH}"
    assert part["weights"][0]["size"] == built["weights"].stat().st_size
    from pvdesk.models.lineage import file_sha256

    assert part["weights"][0]["sha256"] == file_sha256(built["weights"])
    assert {"timm", "torch", "open_clip_torch"} <= set(b.provenance["software"])
    x = tiles(3, 224, seed=1)
    ours = b.load("cpu", "fp32").predict(x).probs
    ref = direct_probs(built["weights"], built["head"], x, b.mean, b.std)
    assert torch.allclose(ours, ref, atol=1e-5), (ours, ref)
    assert ours.std(0).max() > 1e-4  # tiles differ: a constant answer would pass otherwise


def test_weights_found_in_order_file_bundle_folder_weights_dir(home, built, tmp_path,
                                                               monkeypatch, capsys):
    assert _add("vits-dir", built) == 0  # no --weights: looked for at load time
    b = resolve_bundle("vits-dir")
    ok, why = b.weights_status()
    assert not ok and "PVDESK_WEIGHTS_DIR" in why
    with pytest.raises(ModelError) as exc:  # offline: one line naming what to put where
        b.load("cpu", "fp32")
    msg = str(exc.value)
    assert "\n" not in msg and "offline" in msg and "PVDESK_WEIGHTS_DIR" in msg
    assert TIMM_ARCH in msg
    wdir = tmp_path / "wdir"
    wdir.mkdir()
    shutil.copy(built["weights"], wdir / f"{TIMM_ARCH}.safetensors")
    monkeypatch.setenv("PVDESK_WEIGHTS_DIR", str(wdir))
    from pvdesk.models.weights import plan

    p = plan(b)
    assert p.how == "cached" and p.path == wdir / f"{TIMM_ARCH}.safetensors"
    # the bundle folder comes before PVDESK_WEIGHTS_DIR
    shutil.copy(built["weights"], b.path / "backbone.safetensors")
    assert plan(b).path == b.path / "backbone.safetensors"
    # a file the user names comes first
    assert plan(b, built["weights"]).path == built["weights"]
    x = tiles(2, 224, seed=2)
    probs = b.load("cpu", "fp32").predict(x).probs
    ref = direct_probs(built["weights"], built["head"], x, b.mean, b.std)
    assert torch.allclose(probs, ref, atol=1e-5)


def test_a_changed_backbone_file_is_refused_by_its_sha256(home, built, tmp_path, capsys):
    from safetensors.torch import load_file, save_file

    mine = tmp_path / "mine.safetensors"
    shutil.copy(built["weights"], mine)
    assert _add("vits-sha", built, "--weights", str(mine)) == 0
    recorded = resolve_bundle("vits-sha").lineage["parts"][0]["weights"][0]["sha256"]
    t = load_file(str(mine))
    t["cls_token"] = t["cls_token"] + 1
    save_file(t, str(mine))
    capsys.readouterr()
    assert main(["models", "check", "vits-sha", "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(mine) in err and recorded[:12] in err
    from pvdesk.models.lineage import file_sha256

    assert file_sha256(mine)[:12] in err


def test_the_bundles_own_weights_are_checked_too(home, built, capsys):
    assert _add("vits-own", built, "--weights", str(built["weights"])) == 0
    b = resolve_bundle("vits-own")
    from safetensors.torch import load_file, save_file

    t = load_file(str(b.weights_file))
    t["head.bias"] = t["head.bias"] + 1
    save_file(t, str(b.weights_file))
    with pytest.raises(ModelError, match="weights.safetensors: sha256 .* does not match"):
        Bundle.from_folder(b.path).load("cpu", "fp32")


def test_sha256_is_cached_by_path_size_and_mtime(home, tmp_path, monkeypatch):
    import os

    from pvdesk.models import file_hash, lineage

    f = tmp_path / "w.bin"
    f.write_bytes(b"x" * 1000)
    calls = []
    real = lineage.file_sha256
    monkeypatch.setattr(lineage, "file_sha256", lambda p, *a: calls.append(p) or real(p))
    first = file_hash.sha256_of(f)
    assert file_hash.sha256_of(f) == first and len(calls) == 1  # from the cache
    f.write_bytes(b"y" * 1000)  # same size, new mtime: hashed again
    os.utime(f, ns=(1, 1))
    assert file_hash.sha256_of(f) != first and len(calls) == 2


def test_timm_architecture_mismatch_is_one_line(home, built, capsys):
    rc = main(["models", "add", "tiny", "--backbone", "timm:vit_tiny_patch16_224", "--weights",
               str(built["weights"]), "--head", str(built["head"]), "--classes", "a,b"])
    assert rc == 0  # the spec and the file are both valid on their own
    capsys.readouterr()
    assert main(["models", "check", "tiny", "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(built["weights"]) in err and "does not match" in err


def test_manifest_rules_for_timm_backbones():
    base = {"name": "t", "classes": ["a", "b"], "trained": True}
    with pytest.raises(ModelError, match="cannot serve kind 'clip-zeroshot'"):
        Bundle({**base, "kind": "clip-zeroshot", "prompts": "x",
                "backbone": {"source": "timm", "model": TIMM_ARCH}})
    with pytest.raises(ModelError, match="backbone.model"):
        Bundle({**base, "kind": "clip-linear", "backbone": {"source": "timm"}})
    with pytest.raises(ModelError, match="model_args"):
        Bundle({**base, "kind": "clip-linear", "backbone": {
            "source": "timm", "model": TIMM_ARCH, "model_args": {"x": [1, 2]}}})
    b = Bundle({**base, "kind": "clip-linear", "backbone": {
        "source": "timm", "hf_hub": "MahmoodLab/UNI", "model_args": {"init_values": 1e-5}}})
    assert b.trained and not b.untrained_reasons


def test_random_timm_init_is_untrained():
    b = Bundle({"name": "t", "classes": ["a", "b"], "trained": True, "kind": "clip-linear",
                "backbone": {"source": "timm", "model": TIMM_ARCH, "init": "random"}})
    assert not b.trained and "random" in b.status


def test_timm_hf_hub_repo_from_the_weights_dir_with_its_model_args(home, built, tmp_path,
                                                                   monkeypatch):
    """A UNI-like repository copied by hand: config.json (architecture, model_args such as
    UNI's init_values, pretrained_cfg) and model.safetensors in PVDESK_WEIGHTS_DIR/ORG--REPO."""
    import json

    import timm
    from safetensors.torch import save_file

    repo = tmp_path / "wdir" / "someorg--uni-like"
    repo.mkdir(parents=True)
    torch.manual_seed(3)
    net = timm.create_model(TIMM_ARCH, pretrained=False, num_classes=0, init_values=1e-5,
                            dynamic_img_size=True).eval()
    save_file({k: v.contiguous() for k, v in net.state_dict().items()},
              str(repo / "model.safetensors"))
    mean, std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
    (repo / "config.json").write_text(json.dumps({
        "architecture": TIMM_ARCH, "num_classes": 0,
        "model_args": {"init_values": 1e-5, "dynamic_img_size": True, "num_classes": 0},
        "pretrained_cfg": {"mean": mean, "std": std, "input_size": [3, 224, 224]}}))
    monkeypatch.setenv("PVDESK_WEIGHTS_DIR", str(tmp_path / "wdir"))
    assert main(["models", "add", "uni-like", "--backbone", "timm:hf-hub:someorg/uni-like",
                 "--head", str(built["head"]), "--classes", "a,b"]) == 0
    b = resolve_bundle("uni-like")
    assert b.backbone["hf_hub"] == "someorg/uni-like" and list(b.mean) == mean
    x = tiles(2, 224, seed=4)
    ours = b.load("cpu", "fp32").predict(x).probs
    from safetensors.torch import load_file

    h = load_file(str(built["head"]))
    xx = (x.float() / 255 - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(
        1, 3, 1, 1)
    with torch.no_grad():
        ref = (F.normalize(net(xx), dim=-1) @ h["head.weight"].t() + h["head.bias"]).softmax(1)
    assert torch.allclose(ours, ref, atol=1e-5)
    # a bare hf-hub: spec finds the same timm repository (its config.json, no open_clip one)
    from pvdesk.models.specs import parse

    assert parse("hf-hub:someorg/uni-like", kind="clip-linear")["source"] == "timm"
