"""``--backbone``: which network the heads embed with, or fine-tuning starts from.

Accepted forms:

- a bundle name or folder (``demo-clip-rn50``, ``clip-rn50-zeroshot``, ``demo-resnet50``, a
  bundle trained earlier): its backbone, with its weights wherever pvdesk finds them;
- an open_clip model and pretrained tag, ``RN50:openai`` (also ``open_clip:RN50:openai``),
  or ``hf-hub:org/repo`` (CLIP heads);
- a local weights file (.safetensors, .pt, .pth, .bin): a CLIP checkpoint (``--clip-model``
  names its architecture, default RN50) or a ResNet50 checkpoint (fine-tuning);
- for fine-tuning only: ``imagenet`` / a torchvision weights name (``IMAGENET1K_V2``), or
  ``random``.

Defaults: CLIP RN50 with OpenAI weights (the built-in clip-rn50-zeroshot) for the heads,
torchvision's ImageNet ResNet50 (IMAGENET1K_V2) for fine-tuning.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pvdesk import heavy
from pvdesk.errors import ModelError
from pvdesk.models import Bundle, resolve_bundle
from pvdesk.models.manifest import CLIP_KINDS
from pvdesk.taxonomy import CLASS_NAMES
from training.errors import TrainingError

DEFAULT_CLIP = "clip-rn50-zeroshot"
DEFAULT_RESNET = "IMAGENET1K_V2"
WEIGHT_SUFFIXES = (".safetensors", ".pt", ".pth", ".bin")


def _hub_is_timm(repo: str) -> bool:
    from pvdesk.models.specs import _hub_family

    return _hub_family(repo) == "timm"


def _synthetic(kind: str, name: str, backbone: dict, preprocess: dict | None = None) -> Bundle:
    """A stand-in bundle for a backbone named by tag or file; trained when its weights are
    pretrained ones (an open_clip tag, an hf-hub id, a file, a timm or open_clip model's
    own weights), not a random init."""
    pretrained = backbone.get("init") != "random" and bool(
        backbone.get("pretrained") or backbone.get("id") or backbone.get("path")
        or backbone.get("weights") or backbone.get("local_dir")
        or backbone.get("source") == "timm")
    m = {"name": name, "kind": kind, "classes": list(CLASS_NAMES), "backbone": backbone,
         "trained": pretrained, **(preprocess or {})}
    if kind == "clip-zeroshot":
        m["prompts"] = "breakhis-default"
    return Bundle(m)


def _bundle_or_none(spec: str) -> Bundle | None:
    p = Path(spec).expanduser()
    if p.is_file() and p.suffix.lower() in WEIGHT_SUFFIXES:
        return None
    try:
        return resolve_bundle(spec)
    except ModelError:
        if p.is_dir():
            raise
        return None


def _from_spec(spec: str, weights: str | None) -> Bundle:
    """A stand-in bundle for a spec of pvdesk.models.specs (timm:, local-dir:, hf-hub:,
    open_clip:MODEL with a file): its input size and normalisation from the model's config."""
    from pvdesk.models import specs

    bb = specs.parse(spec, weights, "clip-linear")
    kind = "clip-linear" if bb["source"] == "timm" else "clip-zeroshot"
    if bb["source"] == "torchvision":
        raise TrainingError(f"--backbone {spec}: a torchvision ResNet50 has no embeddings for "
                            "a head (use it with --head resnet50)")
    b = _synthetic(kind, f"{specs.family(bb)}-{spec.split(':', 1)[-1]}".replace("/", "-")
                   .replace(":", "-")[:200], bb, specs.preprocess(bb))
    return b


def clip_backbone(spec: str | None, clip_model: str = "RN50",
                  weights: str | None = None) -> Bundle:
    """A CLIP-kind (or timm encoder) bundle whose image tower gives the embeddings the heads
    train on."""
    spec = spec or DEFAULT_CLIP
    if spec.startswith(("timm:", "local-dir:")) or weights is not None or (
            spec.startswith("hf-hub:") and _hub_is_timm(spec[7:])):
        return _from_spec(spec, weights)
    b = _bundle_or_none(spec)
    if b is not None:
        if b.kind not in CLIP_KINDS:
            raise TrainingError(f"--backbone {spec}: a {b.kind} bundle has no CLIP embeddings "
                                "(use it with --head resnet50, or name a CLIP backbone)")
        return b
    p = Path(spec).expanduser()
    if p.is_file():
        return _synthetic("clip-zeroshot", f"clip-{clip_model}-file",
                          {"source": "file", "path": str(p.resolve()), "model": clip_model})
    text = spec[len("open_clip:"):] if spec.startswith("open_clip:") else spec
    if text.startswith("hf-hub:"):
        return _synthetic("clip-zeroshot", "clip-hf-hub", {"source": "hf-hub", "id": text[7:]})
    for sep in (":", "/", "@"):
        if sep in text:
            model, tag = text.split(sep, 1)
            open_clip = heavy.open_clip()

            if model not in open_clip.list_models():
                break
            return _synthetic("clip-zeroshot", f"clip-{model}-{tag}".replace("/", "-"),
                              {"source": "open_clip", "model": model, "pretrained": tag})
    raise TrainingError(f"--backbone {spec}: not a bundle name or folder, an existing weights "
                        "file, or an open_clip MODEL:TAG such as RN50:openai")


@dataclass
class ResNetStart:
    """Where fine-tuning starts: a state dict (or None for random init) and how to say it."""

    state: dict | None
    backbone: dict  # the exported bundle's "backbone" field
    described: str
    notes: list[str] = field(default_factory=list)
    mean: tuple | None = None
    std: tuple | None = None
    classes: list[str] | None = None  # the fc's classes, when the start is a bundle
    file: Path | None = None  # the weights file it was read from (hashed into the lineage)
    trained: bool = False  # pretrained weights (False: random initialisation)
    name: str | None = None  # the start bundle's name, when it is one

    def lineage_part(self) -> dict:
        """The start as a lineage part: recorded, not gating (fine-tuning trains every
        weight, so a random start makes a model trained from scratch, not an untrained one)."""
        from pvdesk.models.lineage import file_sha256

        part = {"role": "start", "gates": False, "trained": self.trained,
                "described": self.described}
        if self.name:
            part["name"] = self.name
        if not self.trained:
            part["why"] = "random initialisation"
        if self.file is not None and Path(self.file).is_file():
            part["weights"] = [{"file": str(self.file), "sha256": file_sha256(self.file)}]
        return part


def _torchvision_start(weights: str) -> ResNetStart:
    from pvdesk.models.tensors import load_checkpoint
    from pvdesk.models.weights import fetch, plan

    b = _synthetic("resnet50", f"resnet50-{weights}", {"source": "torchvision",
                                                       "weights": weights})
    try:
        p = plan(b)
        path = p.path if p.how in ("cached", "file") else fetch(b, p)
        state = load_checkpoint(path)
    except ModelError as exc:
        return ResNetStart(None, {"source": "torchvision", "weights": None, "init": "random"},
                           "random initialisation",
                           [f"ImageNet weights ({weights}) are not available here, so "
                            f"fine-tuning starts from RANDOM weights and needs far more data "
                            f"and epochs: {exc}"])
    return ResNetStart(state, {"source": "torchvision", "weights": weights,
                               "init": "pretrained"}, f"torchvision {weights} ({path})",
                       file=Path(path), trained=True)


def resnet_start(spec: str | None) -> ResNetStart:
    """The starting weights for ResNet50 fine-tuning."""
    spec = spec or DEFAULT_RESNET
    if spec.startswith("torchvision:"):  # the spec form of pvdesk models add
        arch, _, spec = spec[len("torchvision:"):].partition(":")
        if arch != "resnet50":
            raise TrainingError(f"--backbone torchvision:{arch}: only resnet50 is fine-tuned")
        spec = spec or "random"
    if spec.lower() == "random":
        return ResNetStart(None, {"source": "torchvision", "weights": None, "init": "random"},
                           "random initialisation (--backbone random)")
    if spec.lower() == "imagenet" or spec.upper().startswith("IMAGENET1K"):
        return _torchvision_start("IMAGENET1K_V2" if spec.lower() == "imagenet" else spec.upper())
    b = _bundle_or_none(spec)
    if b is not None:
        if b.kind != "resnet50":
            raise TrainingError(f"--backbone {spec}: a {b.kind} bundle cannot start ResNet50 "
                                "fine-tuning (use a CLIP head, or a resnet50 backbone)")
        clf = b.load("cpu", "fp32")
        state = clf.export_tensors()
        note = [] if b.trained else [f"{b.name} holds random (untrained) weights: fine-tuning "
                                     "starts from scratch"]
        return ResNetStart(state, dict(b.backbone), f"bundle {b.label}", note, b.mean, b.std,
                           list(b.classes), b.weights_file, b.trained, b.name)
    p = Path(spec).expanduser()
    if p.is_file():
        from pvdesk.models.tensors import load_checkpoint

        return ResNetStart(load_checkpoint(p), {"source": "torchvision", "weights": None,
                                                "init": "pretrained",
                                                "start": str(p.resolve())},
                           f"checkpoint {p}", file=p.resolve(), trained=True)
    raise TrainingError(f"--backbone {spec}: not a resnet50 bundle, a weights file, "
                        "'imagenet' or 'random'")
