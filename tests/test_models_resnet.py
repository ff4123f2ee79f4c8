"""resnet50 kind and the demo bundles: determinism, round trip, precision, binary head."""

from __future__ import annotations

import pytest
import torch
from models_support import manifest, tiles

from pvdesk.errors import ModelError
from pvdesk.models import resolve_bundle, write_bundle
from pvdesk.taxonomy import CLASS_NAMES


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    return tmp_path_factory.mktemp("pvdesk_home")


@pytest.fixture(autouse=True)
def _home(home, monkeypatch):
    monkeypatch.setenv("PVDESK_HOME", str(home))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="module")
def demo_resnet():
    return resolve_bundle("demo-resnet50").load(precision="fp32")


def test_demo_resnet50_is_untrained_deterministic_and_varies(demo_resnet):
    b = demo_resnet.bundle
    assert b.kind == "resnet50" and not b.trained and b.classes == list(CLASS_NAMES)
    assert "UNTRAINED" in b.label
    x = tiles(4, size=96)
    out = demo_resnet.predict(x)
    assert out.embeddings is None
    assert torch.allclose(out.probs.sum(1), torch.ones(4), atol=1e-5)
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    again = resolve_bundle("demo-resnet50").load(precision="fp32").predict(x)
    assert torch.equal(again.probs, out.probs)  # seeded: identical on every load
    assert torch.equal(torch.rand(3), expected)  # and the global RNG is left alone
    assert (out.probs[0] - out.probs[1]).abs().max() > 1e-3  # tiles differ
    assert out.probs.max() < 0.999  # not saturated
    with pytest.raises(ModelError, match="no image embeddings"):
        demo_resnet.embed(x)


def test_auto_precision_is_within_002_of_fp32(demo_resnet):
    auto = resolve_bundle("demo-resnet50").load(precision="auto")
    assert auto.precision == "auto" and auto.effective_precision in ("bf16", "fp32")
    x = tiles(2, size=96, seed=7)
    diff = (auto.predict(x).probs - demo_resnet.predict(x).probs).abs().max()
    assert diff < 0.02
    if auto.effective_precision == "bf16":  # CPU bf16 keeps bf16 weights: never exported
        assert next(auto.net.parameters()).dtype == torch.bfloat16
        with pytest.raises(ModelError, match="precision='fp32'"):
            auto.export_tensors()


def test_resnet_round_trip_through_write_bundle(demo_resnet, tmp_path):
    m = manifest("rn-copy", "resnet50", backbone="bundle", input_size=224,
                 mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225], trained=True)
    b = write_bundle(tmp_path / "rn", m, demo_resnet.export_tensors())
    assert b.weights_status()[0]
    clf = resolve_bundle(str(tmp_path / "rn")).load(precision="fp32")
    x = tiles(3, size=96, seed=2)
    assert torch.allclose(clf.predict(x).probs, demo_resnet.predict(x).probs, atol=1e-6)


def test_binary_resnet_and_resize_any_tile_size(tmp_path):
    m = manifest("rn-bin", "resnet50", classes=["benign", "malignant"],
                 backbone={"source": "torchvision", "weights": None, "init": "random", "seed": 3})
    clf = write_bundle(tmp_path / "bin", m, {}).load(precision="fp32")
    for size in (32, 64, 80):
        out = clf.predict(tiles(2, size=size))
        assert out.probs.shape == (2, 2)
    with pytest.raises(ModelError, match=r"\(N, 3, H, W\)"):
        clf.predict(torch.zeros(3, 64, 64, dtype=torch.uint8))


def test_fc_rows_must_match_the_class_list(tmp_path, demo_resnet):
    tensors = demo_resnet.export_tensors()  # 8-class fc
    m = manifest("rn-wrong", "resnet50", classes=["benign", "malignant"], backbone="bundle")
    with pytest.raises(ModelError, match=r"field 'classes': 2 classes listed but tensor "
                                         r"'fc\.weight' has 8 rows"):
        write_bundle(tmp_path / "wrong", m, tensors)
    assert not (tmp_path / "wrong" / "manifest.json").exists()
