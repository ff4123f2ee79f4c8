"""Manifests, the bundle registry, `pvdesk models`, devices and lazy imports (no model is run)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from models_support import linear_tensors, manifest

from pvdesk.cli import main
from pvdesk.errors import ModelError
from pvdesk.models import Bundle, find_bundles, pick_device, resolve_bundle, write_bundle
from pvdesk.models.manifest import manifest_hash, validate_manifest
from pvdesk.taxonomy import CLASS_NAMES

BUILTINS = {"clip-rn50-zeroshot", "clip-vitl14-zeroshot", "demo-clip-rn50", "demo-resnet50"}


@pytest.fixture(autouse=True)
def _home(monkeypatch, pvdesk_home):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.mark.parametrize("change, field, words", [
    ({"kind": "foo"}, "kind", "unknown kind 'foo' (expected one of clip-zeroshot"),
    ({"classes": ["adenosis", "Kidney!"]}, "classes", "'Kidney!' is neither a BreakHis class"),
    ({"classes": ["tumor", "uncertain"]}, "classes", "review-only label"),
    ({"classes": ["tumor", "stroma"], "taxonomy": "../t.json"}, "taxonomy", "inside the bundle"),
    ({"classes": ["adenosis"]}, "classes", "at least 2"),
    ({"classes": ["adenosis", "A"]}, "classes", "listed twice"),
    ({"classes": ["adenosis", "benign"]}, "classes", "mixes"),
    ({"backbone": {"source": "ftp"}}, "backbone.source", "unknown source 'ftp'"),
    ({"backbone": {"source": "open_clip"}}, "backbone.model", "open_clip model name"),
    ({"backbone": {"source": "torchvision"}}, "backbone.source", "cannot serve"),
    ({"input_size": "big"}, "input_size", "integer"),
    ({"std": [0.2, 0.0, 0.2]}, "std", "positive"),
    ({"tile_um": -3}, "tile_um", "positive"),
    ({"trained": "yes"}, "trained", "true or false"),
    ({"schema_version": 9}, "schema_version", "unsupported"),
    ({"name": "../x"}, "name", "slashes"),
])
def test_bad_manifests_name_the_field(tmp_path, change, field, words):
    m = manifest("bad", "clip-linear")
    m.update(change)
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(ModelError) as err:
        resolve_bundle(str(folder))
    msg = str(err.value)
    assert msg.startswith(str(folder / "manifest.json") + f": field '{field}': ")
    assert words in msg and "\n" not in msg


def test_zeroshot_needs_prompts_and_unknown_prompt_set_lists_known():
    with pytest.raises(ModelError, match="field 'prompts'"):
        validate_manifest(manifest("z", "clip-zeroshot"))
    b = Bundle(manifest("z", "clip-zeroshot", prompts="nope"))
    from pvdesk.models.prompts import class_texts

    with pytest.raises(ModelError, match=r"no prompt set named 'nope' \(known: .*breakhis-default"):
        class_texts(b)


def test_builtin_prompt_set_covers_every_class():
    from pvdesk.models.prompts import class_texts

    for classes in (list(CLASS_NAMES), ["benign", "malignant"]):
        b = Bundle(manifest("z", "clip-zeroshot", classes=classes, prompts="breakhis-default"))
        texts = class_texts(b)
        assert list(texts) == classes
        assert all(len(t) >= 6 for t in texts.values())
        assert "an H&E stained image of ductal carcinoma of the breast." in texts.get(
            "ductal_carcinoma", ["an H&E stained image of ductal carcinoma of the breast."])


def test_manifest_normalises_and_hashes():
    m = validate_manifest(manifest("n", "clip-linear", classes=["DC", "Lobular carcinoma"]))
    assert m["classes"] == ["ductal_carcinoma", "lobular_carcinoma"]
    assert m["tile_um"] == 112.0 and len(m["mean"]) == 3
    b = Bundle(m)
    assert b.manifest_hash == manifest_hash(m) and len(b.manifest_hash) == 64
    assert b.has_embeddings and b.path is None


def test_write_bundle_checks_tensors_and_writes_nothing_when_wrong(tmp_path):
    m = manifest("lin", "clip-linear", classes=["benign", "malignant"])
    with pytest.raises(ModelError, match=r"field 'classes': 2 classes listed but tensor "
                                         r"'head\.weight' has 8 rows"):
        write_bundle(tmp_path / "a", m, linear_tensors(8))
    with pytest.raises(ModelError, match=r"tensor 'head\.bias': missing"):
        write_bundle(tmp_path / "a", m, {"head.weight": torch.zeros(2, 16)})
    with pytest.raises(ModelError, match=r"tensor 'surprise': not used by kind 'clip-linear'"):
        write_bundle(tmp_path / "a", m, dict(linear_tensors(2), surprise=torch.zeros(1)))
    assert not (tmp_path / "a").exists()
    b = write_bundle(tmp_path / "a", m, linear_tensors(2))
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["manifest.json",
                                                                   "weights.safetensors"]
    assert b.weights_status()[0] and b.weights_file is not None


def test_find_and_resolve_bundles(tmp_path):
    names = {b.name for b in find_bundles()}
    assert BUILTINS <= names
    assert all(b.builtin for b in find_bundles() if b.name in BUILTINS)
    user = tmp_path / "home" / "models" / "mine"
    write_bundle(user, manifest("mine", "clip-linear", classes=["benign", "malignant"]),
                 linear_tensors(2))
    extra = tmp_path / "extra"
    write_bundle(extra / "other", manifest("other", "clip-linear"), linear_tensors(8))
    (extra / "broken").mkdir()
    (extra / "broken" / "manifest.json").write_text("{not json")
    errors: list[str] = []
    found = {b.name for b in find_bundles([extra], errors=errors)}
    assert {"mine", "other"} <= found
    assert len(errors) == 1 and "broken" in errors[0] and "not valid JSON" in errors[0]
    assert resolve_bundle("mine").path == user
    assert resolve_bundle("other", [extra]).name == "other"
    assert resolve_bundle(str(extra / "other" / "manifest.json")).name == "other"
    with pytest.raises(ModelError, match=r"model 'nope': .*known: .*demo-resnet50"):
        resolve_bundle("nope")
    with pytest.raises(ModelError, match="not a model bundle"):
        resolve_bundle(str(tmp_path))


def test_pvdesk_models_lists_builtins_and_marks_demos_untrained(tmp_path, capsys):
    write_bundle(tmp_path / "extra" / "mine", manifest("mine", "clip-linear"), linear_tensors(8))
    assert main(["models", "--dir", str(tmp_path / "extra")]) == 0
    out = capsys.readouterr().out
    for name in BUILTINS | {"mine"}:
        assert name in out
    lines = {ln.split()[0]: ln for ln in out.splitlines() if ln and not ln.startswith(" ")}
    assert "UNTRAINED" in lines["demo-resnet50"] and "UNTRAINED" in lines["demo-clip-rn50"]
    assert "UNTRAINED" not in lines["clip-rn50-zeroshot"]
    assert "weights here: yes" in out and "weights here: no" in out
    assert main(["models", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)["bundles"]}
    assert rows["demo-resnet50"]["weights_available"] and not rows["demo-resnet50"]["trained"]
    assert rows["clip-rn50-zeroshot"]["trained"]


def test_pick_device():
    assert pick_device("cpu") == "cpu"
    assert pick_device() in ("cuda", "mps", "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ModelError, match="device 'cuda': CUDA is not available"):
            pick_device("cuda")
    with pytest.raises(ModelError, match="unknown device"):
        pick_device("tpu")
    with pytest.raises(ModelError, match="precision 'fp8'"):
        resolve_bundle("demo-resnet50").load(precision="fp8")


def test_import_is_lazy():
    code = ("import sys, pvdesk.models, pvdesk.commands.models; "
            "pvdesk.models.find_bundles(); pvdesk.models.resolve_bundle('demo-resnet50'); "
            "print(sorted(m for m in ('torch', 'open_clip', 'torchvision') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
