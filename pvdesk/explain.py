"""Why this tile: Grad-CAM maps with the maintained ``grad-cam`` package (pytorch-grad-cam).

The target layer per bundle kind:

- ``resnet50``: torchvision ResNet50's last bottleneck block (``layer4[-1]``);
- CLIP kinds on an open_clip ModifiedResNet (RN50, ...): the visual tower's last block
  (``visual.layer4[-1]``); the target is the class's output of the bundle's head, which for
  a zero-shot bundle is the image-text logit (logit scale x cosine with the class's text
  embedding) and for a linear or MLP head that head's class logit;
- CLIP kinds on a ViT: the last residual block's first LayerNorm, with the token-to-grid
  reshape the package documents (class token dropped, patch tokens laid out h x w);
- a timm encoder: its last stage or block when it has one of those shapes.

The class is the predicted one unless one is named. Everything here runs in float32 with
gradients, on its own copy of the network (never the run's), and never on the GUI thread.
"""

from __future__ import annotations

import functools
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pvdesk import heavy
from pvdesk.errors import ModelError, PvdeskError


def vit_reshape(tensor, height: int | None = None, width: int | None = None,
                batch: int | None = None):
    """Tokens -> (B, C, h, w), as pytorch-grad-cam's ViT tutorial does: drop the class
    token, lay the patch tokens out on their square grid. Accepts (B, L, C) and open_clip's
    older (L, B, C) layout: ``batch`` tells which; without it, the class token plus a square
    number (> 1) of patches does."""
    def square(n):
        r = int(math.isqrt(max(n, 0)))
        return n > 1 and r * r == n

    if tensor.ndim != 3:
        raise ValueError(f"expected tokens (B, L, C), got {tuple(tensor.shape)}")
    if batch is not None:
        if tensor.shape[0] != batch and tensor.shape[1] == batch:
            tensor = tensor.transpose(0, 1)  # (L, B, C) -> (B, L, C)
    elif not square(tensor.shape[1] - 1) and square(tensor.shape[0] - 1):
        tensor = tensor.transpose(0, 1)
    n = tensor.shape[1] - 1
    h = height or int(math.isqrt(n))
    w = width or n // h
    out = tensor[:, 1:1 + h * w, :].reshape(tensor.size(0), h, w, tensor.size(2))
    return out.permute(0, 3, 1, 2)


def target_layer(bundle, net):
    """(module, reshape_transform or None) for Grad-CAM on ``net`` (a TileClassifier's)."""
    if bundle.kind == "resnet50":
        return net.model.layer4[-1], None
    visual = getattr(net, "visual", None)
    if visual is None:
        raise ModelError(f"{bundle.name}: no visual tower to explain")
    if hasattr(visual, "layer4"):  # open_clip ModifiedResNet
        return visual.layer4[-1], None
    blocks = getattr(getattr(visual, "transformer", None), "resblocks", None)
    if blocks is not None:  # open_clip VisionTransformer
        return blocks[-1].ln_1, vit_reshape
    trunk = getattr(visual, "trunk", visual)  # open_clip TimmModel wraps a timm model
    if hasattr(trunk, "blocks"):
        return trunk.blocks[-1].norm1, vit_reshape
    if hasattr(trunk, "stages"):
        return trunk.stages[-1], None
    if hasattr(trunk, "layer4"):
        return trunk.layer4[-1], None
    raise ModelError(f"{bundle.name}: no known Grad-CAM target layer for its visual tower "
                     f"({type(visual).__name__})")


def grad_cam(model, layer, x, class_index: int | None, reshape_transform=None,
             with_logits: bool = False):
    """One pytorch-grad-cam GradCAM call: (N, H, W) float32 maps in [0, 1] for a model that
    returns logits (``class_index`` None: each input's top class, the package's default).
    ``with_logits``: also
    the forward pass's logits (N, C), so one forward and one backward pass do both."""
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    x = x.detach().clone().float()
    targets = None if class_index is None else [ClassifierOutputTarget(int(class_index))] * len(x)
    # Gradients start at the target layer: its output is made a leaf that wants them (the
    # parameters want none), so the backward pass runs through the layers after it only,
    # not down to the pixels. The maps are the same as with gradients on the input.
    def want_grad(_module, _inputs, output):
        if not output.requires_grad:
            output.requires_grad_(True)

    handle = layer.register_forward_hook(want_grad)  # before the package's own hooks
    try:
        with GradCAM(model=model, target_layers=[layer],
                     reshape_transform=reshape_transform) as cam:
            maps = cam(input_tensor=x, targets=targets)
            logits = cam.outputs.detach().float().cpu().numpy()
    finally:
        handle.remove()
    return (maps, logits) if with_logits else maps


def _logits_only(net):
    nn = heavy.torch().nn

    class LogitsOnly(nn.Module):
        """The classifier's net as pytorch-grad-cam wants it: a batch in, logits out."""

        def __init__(self, net):
            super().__init__()
            self.net = net

        def forward(self, x):
            return self.net(x)[0]

    return LogitsOnly(net).eval()


@dataclass
class Explanation:
    tile: np.ndarray  # (S, S, 3) uint8 RGB, the tile as the network saw it (resized)
    cam: np.ndarray  # (S, S) float32 in [0, 1]
    class_name: str
    class_index: int
    probs: np.ndarray  # (C,) the network's probabilities for the tile
    model: str  # name@version
    trained: bool
    seconds: float
    meta: dict = field(default_factory=dict)

    @property
    def predicted(self) -> str:
        return self.meta.get("predicted", "")


class Explainer:
    """Grad-CAM for one bundle: ``explain(tile_rgb, class_name=None)``."""

    def __init__(self, bundle, device: str = "cpu", weights=None, classifier=None):
        from pvdesk.models.classifier import load_classifier

        self.bundle = bundle
        self.clf = classifier or load_classifier(bundle, device=device, precision="fp32",
                                                 weights=weights)
        self.model = _logits_only(self.clf.net)
        self.layer, self.reshape = target_layer(bundle, self.clf.net)
        self.layer_name = next((n for n, m in self.clf.net.named_modules() if m is self.layer),
                               type(self.layer).__name__)

    def class_index(self, class_name: str, probs=None) -> int:
        if class_name is None:
            return int(np.argmax(probs))
        names = list(self.bundle.classes)
        if class_name in names:
            return names.index(class_name)
        from pvdesk.taxonomy import taxonomy_of

        try:  # the bundle's taxonomy: BreakHis codes and aliases, or a custom display name
            return names.index(taxonomy_of(self.bundle).normalise(class_name))
        except (KeyError, ValueError):
            raise PvdeskError(f"{self.bundle.name} has no class {class_name!r} (classes: "
                              f"{', '.join(names)})") from None

    def explain(self, tile, class_name: str | None = None) -> Explanation:
        """``tile``: an RGB PIL image or (H, W, 3) uint8 array of any size."""
        torch = heavy.torch()

        start = time.perf_counter()
        rgb = np.asarray(tile.convert("RGB") if hasattr(tile, "convert") else tile,
                         dtype=np.uint8)
        batch = torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1)))[None]
        x = self.clf.prepare(batch).float()
        want = None if class_name is None else self.class_index(class_name, None)
        reshape = self.reshape
        if reshape is vit_reshape:
            reshape = functools.partial(vit_reshape, batch=len(x))
        maps, logits = grad_cam(self.model, self.layer, x, want, reshape, with_logits=True)
        z = logits[0] - logits[0].max()
        probs = np.exp(z) / np.exp(z).sum()
        idx = int(np.argmax(probs)) if want is None else want
        cam = maps[0].astype(np.float32)
        size = cam.shape[::-1]
        seen = np.asarray(_pil().fromarray(rgb).resize(size, _pil().Resampling.BILINEAR))
        b = self.bundle
        return Explanation(seen, cam, b.classes[idx], idx, probs, f"{b.name}@{b.version}",
                           bool(b.trained), time.perf_counter() - start,
                           {"predicted": b.classes[int(np.argmax(probs))]})


def _pil():
    from PIL import Image

    return Image


def heat_rgba(cam: np.ndarray, opacity: float = 0.5, colormap: str = "inferno"):
    """The map as an RGBA image (jet-free: a perceptual colormap; alpha grows with the value)."""
    from pvdesk.colormaps import colormap_layer

    return colormap_layer(cam, colormap, opacity)


def blend(tile: np.ndarray, cam: np.ndarray, opacity: float = 0.5):
    Image = _pil()
    base = Image.fromarray(tile).convert("RGBA")
    layer = heat_rgba(cam, opacity).resize(base.size, Image.Resampling.BILINEAR)
    return Image.alpha_composite(base, layer).convert("RGB")


def png_info(meta: dict):
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    for k, v in meta.items():
        info.add_itxt(f"pvdesk:{k}", str(v))
    return info


def save_png(image, path, meta: dict) -> Path:
    from pvdesk.export.atomic import atomic_path

    path = Path(path)
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG", pnginfo=png_info(meta))
    return path


def write_explanation(e: Explanation, folder, stem: str, extra: dict | None = None) -> list[Path]:
    """``stem``-tile.png, -map.png (the map, greyscale 0..255) and -blend.png, each with
    the bundle, class, date and tile in its metadata."""
    Image = _pil()
    meta = {"bundle": e.model, "trained": str(e.trained), "class": e.class_name,
            "predicted": e.predicted, "p_class": f"{float(e.probs[e.class_index]):.6f}",
            "method": "Grad-CAM (pytorch-grad-cam)",
            "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **(extra or {})}
    folder = Path(folder)
    return [save_png(Image.fromarray(e.tile), folder / f"{stem}-tile.png", meta),
            save_png(Image.fromarray(np.rint(e.cam * 255).astype(np.uint8), "L"),
                     folder / f"{stem}-map.png", meta),
            save_png(blend(e.tile, e.cam), folder / f"{stem}-blend.png", meta)]


def contact_sheet(rows: dict[str, list[tuple[Explanation, str]]], cell: int = 160):
    """One row per class: its most confident tiles, each tile over its blend."""
    from PIL import ImageDraw

    Image = _pil()
    n = max((len(v) for v in rows.values()), default=0)
    label_w = 170
    sheet = Image.new("RGB", (label_w + max(1, n) * cell, max(1, len(rows)) * (2 * cell + 14)),
                      "white")
    d = ImageDraw.Draw(sheet)
    for r, (cls, items) in enumerate(rows.items()):
        y = r * (2 * cell + 14)
        d.text((4, y + 4), cls, fill="black")
        for c, (e, caption) in enumerate(items):
            x = label_w + c * cell
            sheet.paste(Image.fromarray(e.tile).resize((cell, cell)), (x, y))
            sheet.paste(blend(e.tile, e.cam).resize((cell, cell)), (x, y + cell))
            d.text((x + 2, y + 2 * cell), caption, fill="black")
    return sheet
