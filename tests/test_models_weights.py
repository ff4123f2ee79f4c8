"""Weights: pickle payloads refused, offline failure quick and clear, local files honoured."""

from __future__ import annotations

import pickle
import time
from pathlib import Path

import pytest
import torch
from models_support import manifest, tiles

from pvdesk.errors import ModelError
from pvdesk.models import resolve_bundle, write_bundle
from pvdesk.models import weights as weights_mod
from pvdesk.models.tensors import load_checkpoint


class Payload:
    """Unpickling this runs code: it creates the marker file."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch, pvdesk_home):
    """No cache is visible and nothing reaches the network."""
    monkeypatch.setenv("HOME", str(tmp_path / "user"))  # ~/.cache/clip
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("PVDESK_WEIGHTS_DIR", raising=False)
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "try_to_load_from_cache", lambda *a, **k: None)

    def no_network(*a, **k):
        raise AssertionError("the network was used")

    import open_clip.pretrained

    monkeypatch.setattr(open_clip.pretrained, "download_pretrained", no_network)
    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    monkeypatch.setattr(weights_mod, "network_reachable", lambda host, timeout=3.0: False)


def test_pickle_payload_checkpoint_is_refused_and_never_runs(tmp_path):
    live = tmp_path / "live-marker"
    pickle.loads(pickle.dumps(Payload(live)))
    assert live.exists()  # the payload is real: plain unpickling runs it
    marker = tmp_path / "marker"
    evil = tmp_path / "evil.pt"
    torch.save({"conv1.weight": torch.zeros(64, 3, 7, 7), "extra": Payload(marker)}, evil)
    with pytest.raises(ModelError, match=r"evil\.pt: refused"):
        load_checkpoint(evil)
    m = manifest("rn-evil", "resnet50", backbone={"source": "file", "path": str(evil)})
    b = write_bundle(tmp_path / "b", m, {})
    with pytest.raises(ModelError, match="refused"):
        b.load()
    with pytest.raises(ModelError, match="refused"):
        resolve_bundle("demo-resnet50").load(weights=evil)
    assert not marker.exists()


def test_plain_checkpoints_load(tmp_path):
    plain = tmp_path / "plain.pt"
    torch.save({"state_dict": {"module.a": torch.ones(2), "b": torch.zeros(3)}, "epoch": 3},
               plain)
    sd = load_checkpoint(plain)
    assert set(sd) == {"a", "b"}
    with pytest.raises(ModelError, match="not found"):
        load_checkpoint(tmp_path / "missing.safetensors")


def test_offline_error_is_quick_and_says_how_to_fix():
    b = resolve_bundle("clip-rn50-zeroshot")
    ok, why = b.weights_status()
    assert not ok and "PVDESK_WEIGHTS_DIR=FOLDER holding clip-rn50-zeroshot.safetensors" in why
    t0 = time.monotonic()
    with pytest.raises(ModelError) as err:
        b.load()
    assert time.monotonic() - t0 < 5
    msg = str(err.value)
    assert "\n" not in msg
    for part in ("clip-rn50-zeroshot", "offline", "tried", "Hugging Face cache",
                 "open_clip_model.safetensors", "PVDESK_WEIGHTS_DIR", "resnet50_clip.openai", "backbone"):
        assert part in msg


def test_unreachable_network_fails_fast_without_download(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.delenv("PVDESK_OFFLINE", raising=False)
    t0 = time.monotonic()
    with pytest.raises(ModelError, match="cannot be reached.*PVDESK_WEIGHTS_DIR"):
        resolve_bundle("clip-vitl14-zeroshot").load()
    assert time.monotonic() - t0 < 5


def test_missing_local_file_names_it(tmp_path):
    m = manifest("rn-file", "resnet50", backbone={"source": "file", "path": "nowhere.pt"})
    b = write_bundle(tmp_path / "b", m, {})
    ok, why = b.weights_status()
    assert not ok and "nowhere.pt" in why
    with pytest.raises(ModelError, match=r"nowhere\.pt.*not found"):
        b.load()


def test_torchvision_weights_from_a_local_file(tmp_path, monkeypatch):
    from safetensors.torch import save_file

    demo = resolve_bundle("demo-resnet50").load(precision="fp32")
    sd = demo.export_tensors()
    fc = {k: sd.pop(k) for k in ("fc.weight", "fc.bias")}
    m = manifest("rn-imagenet", "resnet50",
                 backbone={"source": "torchvision", "weights": "IMAGENET1K_V2"}, trained=True,
                 input_size=224, mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])
    b = write_bundle(tmp_path / "b", m, fc)
    ok, why = b.weights_status()
    assert not ok and "resnet50-11ad3fa6.pth" in why
    with pytest.raises(ModelError, match="resnet50-11ad3fa6"):
        b.load()
    folder = tmp_path / "weights"
    folder.mkdir()
    save_file(sd, str(folder / "resnet50-IMAGENET1K_V2.safetensors"))
    monkeypatch.setenv("PVDESK_WEIGHTS_DIR", str(folder))
    assert b.weights_status()[0]
    want = demo.export_tensors()

    def same(clf):
        got = clf.export_tensors()
        return set(got) == set(want) and all(torch.equal(got[k], want[k]) for k in want)

    assert same(b.load(precision="fp32"))
    monkeypatch.delenv("PVDESK_WEIGHTS_DIR")
    other = tmp_path / "elsewhere.safetensors"
    (folder / "resnet50-IMAGENET1K_V2.safetensors").rename(other)
    assert same(b.load(precision="fp32", weights=other))


@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_torchscript_archive_is_refused(tmp_path):
    f = tmp_path / "scripted.pt"
    torch.jit.save(torch.jit.script(torch.nn.Linear(3, 2)), str(f))
    with pytest.raises(ModelError, match=r"scripted\.pt: refused: a TorchScript archive.*"
                                         r"safetensors"):
        load_checkpoint(f)


def test_open_clip_pretrained_weights_from_the_weights_dir(tmp_path, monkeypatch):
    import open_clip
    from models_support import linear_tensors
    from safetensors.torch import save_file

    from pvdesk.models.randinit import seeded

    with seeded(5):
        ref = open_clip.create_model("RN50", pretrained=None).eval()
    folder = tmp_path / "weights"
    folder.mkdir()
    save_file({k: v.contiguous() for k, v in ref.state_dict().items()},
              str(folder / "RN50-openai.safetensors"))
    m = manifest("lin-openai", "clip-linear", input_size=224,
                 backbone={"source": "open_clip", "model": "RN50", "pretrained": "openai"})
    b = write_bundle(tmp_path / "b", m, linear_tensors(8))
    assert not b.weights_status()[0]
    monkeypatch.setenv("PVDESK_WEIGHTS_DIR", str(folder))
    ok, why = b.weights_status()
    assert ok and "RN50-openai.safetensors" in why
    clf = b.load(precision="fp32")
    x = tiles(1, size=224)
    with torch.no_grad():
        want = torch.nn.functional.normalize(ref.encode_image(clf.prepare(x)), dim=-1)
    assert torch.allclose(clf.embed(x), want, atol=1e-5)
