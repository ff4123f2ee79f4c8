"""timm image encoders (UNI, UNI2-h, Virchow2, H-optimus-0, Prov-GigaPath ... or any timm
architecture) as the frozen image tower under an embedding head (clip-linear, clip-mlp).

The manifest's backbone::

    {"source": "timm", "model": "vit_large_patch16_224",        # timm architecture
     "model_args": {"init_values": 1e-5, "dynamic_img_size": true},
     "hf_hub": "MahmoodLab/UNI",                                # where its weights come from
     "path": "/data/uni/pytorch_model.bin"}                     # or a file the user named

``hf_hub`` alone is enough when the repository's ``config.json`` (timm's: architecture,
model_args, pretrained_cfg) is here. Weights are found in the order of
pvdesk.models.weights.plan: a file the user named, the bundle folder
(``backbone.safetensors``), ``PVDESK_WEIGHTS_DIR`` (``ORG--REPO/model.safetensors``, or a file
named after the bundle, the architecture or the repository), then the Hugging Face cache.
They are read safely (safetensors, or torch weights-only) and loaded strictly (a classifier
head in the checkpoint is dropped). The network is built with ``num_classes=0``: its output
is the pooled feature vector.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from pvdesk import heavy, safe_json
from pvdesk.errors import ModelError
from pvdesk.models.manifest import stated_mean_std

if TYPE_CHECKING:
    from pvdesk.models.bundle import Bundle
    from pvdesk.models.weights import WeightsPlan

HUB_FILES = ("model.safetensors", "pytorch_model.bin")
CONFIG_NAME = "config.json"


def _read_hub_config(path: Path) -> dict:
    try:
        raw = safe_json.load_file(path, 1 << 20)
    except (OSError, safe_json.JSONProblem) as exc:
        raise ModelError(f"{path}: not a usable timm config ({exc})") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("architecture"), str):
        raise ModelError(f"{path}: not a timm config (no 'architecture')")
    return raw


def hub_config_path(repo: str, near: Path | None = None) -> Path | None:
    """timm's config.json for ``repo``: beside ``near`` (a weights file), in
    PVDESK_WEIGHTS_DIR/ORG--REPO, or in the Hugging Face cache."""
    from pvdesk.models.weights import WEIGHTS_DIR_ENV, hf_cached

    cands = [near.parent / CONFIG_NAME] if near is not None else []
    d = os.environ.get(WEIGHTS_DIR_ENV)
    if d:
        cands.append(Path(d).expanduser() / repo.replace("/", "--") / CONFIG_NAME)
    for c in cands:
        if c.is_file():
            return c
    hits = hf_cached(repo, [CONFIG_NAME])
    return hits[0] if hits else None


def architecture(bb: dict, near: Path | None = None) -> tuple[str, dict, dict]:
    """(timm architecture, model_args, pretrained_cfg) of a timm backbone field (model_args
    without num_classes/pretrained: the encoder is always built headless, without weights)."""
    arch, args, pre = _architecture(bb, near)
    return arch, {k: v for k, v in args.items() if k not in ("num_classes", "pretrained")}, pre


def _architecture(bb: dict, near: Path | None) -> tuple[str, dict, dict]:
    args = dict(bb.get("model_args") or {})
    if bb.get("model"):
        timm = heavy.timm()
        if not timm.is_model(bb["model"]):
            raise ModelError(f"timm has no architecture {bb['model']!r} (see "
                             "timm.list_models())")
        cfg = timm.models.get_pretrained_cfg(bb["model"])
        pre = cfg.to_dict() if cfg is not None else {}
        beside = near.parent / CONFIG_NAME if near is not None else None
        if beside is not None and beside.is_file():  # a hub download's config.json beside it
            raw = _read_hub_config(beside)
            if raw["architecture"].split(".")[0] == bb["model"].split(".")[0]:
                args = {**(raw.get("model_args") or {}), **args}
                if isinstance(raw.get("pretrained_cfg"), dict):
                    pre = {**pre, **raw["pretrained_cfg"]}
        return bb["model"], args, pre
    repo = bb["hf_hub"]
    path = hub_config_path(repo, near)
    if path is None:
        raise ModelError(f"hf-hub {repo}: its timm config.json is not here; put it (with the "
                         f"weights) in PVDESK_WEIGHTS_DIR/{repo.replace('/', '--')}/, or name "
                         "the architecture: --backbone timm:ARCH --weights FILE")
    raw = _read_hub_config(path)
    merged = dict(raw.get("model_args") or {})
    merged.update(args)
    pre = raw.get("pretrained_cfg") if isinstance(raw.get("pretrained_cfg"), dict) else {}
    return raw["architecture"], merged, pre


def preprocess(pretrained_cfg: dict) -> dict:
    """{input_size, mean, std} of a timm pretrained_cfg (missing keys left out)."""
    out: dict = {}
    size = pretrained_cfg.get("input_size")
    if isinstance(size, (list, tuple)) and size:
        out["input_size"] = int(size[-1])
    return {**out, **stated_mean_std(pretrained_cfg)}


def hub_repo(bb: dict) -> str | None:
    """The Hugging Face repository the weights come from (the named one, else timm's default
    for the architecture); None when timm knows none."""
    if bb.get("hf_hub"):
        return bb["hf_hub"]
    cfg = heavy.timm().models.get_pretrained_cfg(bb["model"])
    return getattr(cfg, "hf_hub_id", None) or None


def cache_candidates(bundle: Bundle) -> tuple[list[Path], str, str, list[str]]:
    """For weights.plan: (library cache files, what a download fetches, its host, names to
    look for in PVDESK_WEIGHTS_DIR)."""
    from pvdesk.models.weights import hf_cached

    bb = bundle.backbone
    repo = hub_repo(bb)
    names = [n for n in (bb.get("model"), (bb.get("model") or "").split(".")[0]) if n]
    if repo:
        names += [f"{repo.replace('/', '--')}/{f}" for f in HUB_FILES] + [
            repo.replace("/", "--")]
        return (hf_cached(repo, HUB_FILES), f"hf-hub {repo}", "huggingface.co",
                list(dict.fromkeys(names)))
    return [], f"timm {bb.get('model')}", "", list(dict.fromkeys(names))


def download(bb: dict) -> Path:
    """The weights (and config.json) of the backbone's repository, into the HF cache."""
    from huggingface_hub import hf_hub_download

    repo = hub_repo(bb)
    if not repo:
        raise ModelError(f"timm {bb.get('model')}: timm names no pretrained weights for it; "
                         "give a weights file (--weights FILE)")
    if bb.get("hf_hub") and not bb.get("model"):
        hf_hub_download(repo, CONFIG_NAME)
    last = None
    for f in HUB_FILES:
        try:
            return Path(hf_hub_download(repo, f))
        except Exception as exc:  # noqa: BLE001 - try the next file name the hub may hold
            last = exc
    raise ModelError(f"hf-hub {repo}: no weights file ({', '.join(HUB_FILES)}) could be "
                     f"downloaded ({type(last).__name__}: {str(last)[:200]})")


def build_tower(bundle: Bundle, p: WeightsPlan, bundle_tensors: dict):
    """The timm encoder with its weights, as a module with ``output_dim`` (feature width)."""
    from pvdesk.models.randinit import seeded
    from pvdesk.models.tensors import load_checkpoint, load_into
    from pvdesk.models.weights import backbone_file

    timm = heavy.timm()
    bb = bundle.backbone
    path = backbone_file(bundle, p)
    state = None
    if path is not None:
        state = load_checkpoint(path)
    elif p.how == "bundle":
        pre = "backbone.visual."
        state = {k[len(pre):]: v for k, v in bundle_tensors.items() if k.startswith(pre)}
    arch, args, _ = architecture(bb, Path(path) if path is not None else None)
    try:
        with seeded(bb.get("seed", 0)):
            model = timm.create_model(arch, pretrained=False, num_classes=0, **args)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise ModelError(f"{bundle.where}: cannot build timm {arch} with {args} "
                         f"({type(exc).__name__}: {str(exc)[:200]})") from None
    if state is not None:
        own = model.state_dict()
        keep = {k: v for k, v in state.items() if k in own or not k.startswith(
            ("head.", "fc.", "classifier.", "head_drop."))}
        load_into(model, keep, str(path or bundle.weights_file), f"timm {arch}")
    model.output_dim = int(model.num_features)
    return model


def feature_dim(bb: dict) -> int:
    """The width of the encoder's pooled features (built on the meta device: no memory)."""
    torch = heavy.torch()
    timm = heavy.timm()
    arch, args, _ = architecture(bb, Path(bb["path"]) if bb.get("path") else None)
    with torch.device("meta"):
        return int(timm.create_model(arch, pretrained=False, num_classes=0, **args).num_features)
