"""Grad-CAM (pvdesk.explain over pytorch-grad-cam): hand-built networks whose class score
is, by construction, the mean of one known region of the tile must have their map peak in
that region (a convolutional family and a ViT-like token family, through the documented
reshape); pvdesk's maps equal a direct call of the package on the same model; the demo
bundles get the documented target layers; `pvdesk explain` writes its PNGs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from pytorch_grad_cam import GradCAM
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
from scipy.ndimage import binary_dilation

from pvdesk.cli import main
from pvdesk.explain import Explainer, grad_cam, vit_reshape
from pvdesk.models import resolve_bundle
from pvdesk.paths import sample_slide

SIDE, CELL = 64, 8  # a 64 px tile, 8 x 8 feature cells
REGION = np.zeros((CELL, CELL), bool)
REGION[1:4, 5:8] = True  # class 0's region: rows 1-3, columns 5-7 (top right)


class Gate(torch.nn.Module):
    """The target layer: channel 0 is the feature inside the region, channel 1 outside."""

    def __init__(self, mask):
        super().__init__()
        self.register_buffer("m", torch.tensor(mask, dtype=torch.float32))

    def forward(self, f):  # (B, 1, h, w) -> (B, 2, h, w)
        return torch.cat([f * self.m, f * (1 - self.m)], dim=1)


class ConvRegionNet(torch.nn.Module):
    """logit 0 = mean over the region of the tile's (pooled) brightness; logit 1 = the mean
    over the rest."""

    def __init__(self):
        super().__init__()
        self.stem = torch.nn.AvgPool2d(SIDE // CELL)
        self.block = Gate(REGION)
        self.r = torch.tensor(REGION)
        self.unit = torch.nn.Parameter(torch.ones(()), requires_grad=False)  # the package
        # reads its device from the first parameter

    def forward(self, x):
        f = self.block(self.stem(x * self.unit).mean(1, keepdim=True))
        return torch.stack([f[:, 0][:, self.r].mean(1), f[:, 1][:, ~self.r].mean(1)], dim=1)


class TokenGate(torch.nn.Module):
    def __init__(self, mask):
        super().__init__()
        m = torch.tensor(np.r_[0.0, mask.ravel()], dtype=torch.float32)  # class token first
        self.register_buffer("m", m[None, :, None])

    def forward(self, t):  # (B, 1 + h*w, 1) -> (B, 1 + h*w, 2)
        return torch.cat([t * self.m, t * (1 - self.m)], dim=2)


class TokenRegionNet(torch.nn.Module):
    """ViT-like: a class token plus one token per 8 x 8 patch; the same region scores."""

    def __init__(self):
        super().__init__()
        self.block = TokenGate(REGION)
        self.r = torch.tensor(np.r_[False, REGION.ravel()])
        self.unit = torch.nn.Parameter(torch.ones(()), requires_grad=False)

    def forward(self, x):
        x = x * self.unit
        p = torch.nn.functional.avg_pool2d(x.mean(1, keepdim=True), SIDE // CELL)
        tokens = torch.cat([torch.zeros(len(x), 1, 1), p.flatten(2).transpose(1, 2)], dim=1)
        t = self.block(tokens)
        return torch.stack([t[:, self.r, 0].mean(1), t[:, ~self.r, 1].mean(1)], dim=1)


def _region_px():
    return np.kron(REGION, np.ones((SIDE // CELL, SIDE // CELL), bool))


@pytest.mark.parametrize("family", ["conv", "tokens"])
def test_map_peaks_in_the_region_that_makes_the_score(family):
    torch.manual_seed(0)
    net = (ConvRegionNet() if family == "conv" else TokenRegionNet()).eval()
    reshape = None if family == "conv" else vit_reshape
    x = torch.rand(2, 3, SIDE, SIDE) + 0.5  # positive: the region's activations are > 0
    for cls, inside in ((0, _region_px()), (1, ~_region_px())):
        cam = grad_cam(net, net.block, x, cls, reshape)
        assert cam.shape == (2, SIDE, SIDE)
        for m in cam:
            peak = np.unravel_index(np.argmax(m), m.shape)
            assert inside[peak], (family, cls, peak)
            # the package resizes the 8 x 8 map bilinearly: one cell of blur at the edge
            far = ~binary_dilation(inside, iterations=SIDE // CELL)
            assert m[inside].mean() > 0.5 and m[far].max() < 1e-6
            assert m[inside].mean() > 5 * m[~inside].mean()
        # the same as calling the package directly on the same model
        with GradCAM(model=net, target_layers=[net.block], reshape_transform=reshape) as g:
            direct = g(input_tensor=x.clone().requires_grad_(True),
                       targets=[ClassifierOutputTarget(cls)] * 2)
        np.testing.assert_array_equal(cam, direct)


def test_vit_reshape_accepts_both_token_layouts():
    t = torch.arange(2 * 17 * 3, dtype=torch.float32).reshape(2, 17, 3)  # B, 1 + 4x4, C
    a = vit_reshape(t)
    assert a.shape == (2, 3, 4, 4)
    torch.testing.assert_close(vit_reshape(t.transpose(0, 1)), a)
    torch.testing.assert_close(vit_reshape(t.transpose(0, 1), batch=2), a)
    torch.testing.assert_close(vit_reshape(t, batch=2), a)
    torch.testing.assert_close(a[1, :, 0, 1], t[1, 2])  # token 2 = row 0, column 1


@pytest.fixture(scope="module")
def tile():
    from pvdesk.slides import open_source

    with open_source(sample_slide()) as src:
        return src.read_region((1000, 300), 0, (224, 224)).convert("RGB")


def test_demo_resnet50_map_equals_a_direct_package_call(tile):
    ex = Explainer(resolve_bundle("demo-resnet50"))
    assert ex.layer is ex.clf.net.model.layer4[-1] and ex.reshape is None
    e = ex.explain(tile, "lobular_carcinoma")
    assert e.cam.shape == (224, 224) and e.class_name == "lobular_carcinoma"
    x = ex.clf.prepare(torch.from_numpy(np.asarray(tile).transpose(2, 0, 1).copy())[None])
    with GradCAM(model=ex.model, target_layers=[ex.clf.net.model.layer4[-1]]) as g:
        direct = g(input_tensor=x.float().clone().requires_grad_(True),
                   targets=[ClassifierOutputTarget(e.class_index)])
    np.testing.assert_allclose(e.cam, direct[0], atol=1e-5)
    assert e.probs.shape == (8,) and abs(float(e.probs.sum()) - 1) < 1e-5


def test_clip_rn50_targets_the_visual_towers_last_block(tmp_path, capsys):
    b = resolve_bundle("demo-clip-rn50")
    assert main(["explain", str(sample_slide()), "--model", "demo-clip-rn50", "--tile",
                 "1000,300", "--out", str(tmp_path), "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    t = rep["tiles"][0]
    assert t["class"] == t["predicted"] and t["class"] in b.classes
    for f in t["files"]:
        meta = Image.open(f).text
        assert meta["pvdesk:bundle"] == "demo-clip-rn50@1" and meta["pvdesk:class"] == t["class"]
        assert meta["pvdesk:tile"] == ",".join(map(str, t["tile"])) and "pvdesk:date" in meta
    assert Image.open(t["files"][1]).size == (224, 224)
    assert rep["layer"] == "visual.layer4.2"  # the visual tower's last block


def test_open_clip_vit_tower_gets_the_token_reshape():
    """A tiny open_clip VisionTransformer (2 blocks, 64 px, 16 px patches) behind a linear
    head: the last block's ln_1 with the token-to-grid reshape; equals the package's call."""
    from types import SimpleNamespace

    from open_clip.model import CLIPVisionCfg, _build_vision_tower

    from pvdesk.explain import _logits_only, target_layer

    torch.manual_seed(0)
    visual = _build_vision_tower(32, CLIPVisionCfg(layers=2, width=64, head_width=32,
                                                   patch_size=16, image_size=64), False, None)

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.visual = visual
            self.head = torch.nn.Linear(32, 3)

        def forward(self, x):
            e = torch.nn.functional.normalize(self.visual(x), dim=-1)
            return self.head(e), e

    net = Net().eval()
    layer, reshape = target_layer(SimpleNamespace(kind="clip-linear", name="tiny"), net)
    assert layer is visual.transformer.resblocks[-1].ln_1 and reshape is vit_reshape
    model = _logits_only(net)
    x = torch.rand(1, 3, 64, 64)
    cam = grad_cam(model, layer, x, 1, reshape)
    assert cam.shape == (1, 64, 64) and np.isfinite(cam).all() and cam.max() > 0
    with GradCAM(model=model, target_layers=[layer], reshape_transform=vit_reshape) as g:
        direct = g(input_tensor=x.clone().requires_grad_(True),
                   targets=[ClassifierOutputTarget(1)])
    np.testing.assert_allclose(cam, direct, atol=1e-6)
