"""Backbone specs: one string names a backbone of any family, for ``pvdesk models add`` and
``pvdesk-train train --backbone``. A spec becomes a manifest's ``backbone`` field.

=================================  ==========================================================
``timm:NAME``                      a timm architecture (``timm:vit_large_patch16_224``); its
                                   weights from ``--weights FILE`` or timm's default hub repo
``timm:hf-hub:ORG/REPO``           a timm encoder on the Hugging Face hub (UNI, Virchow2 ...)
``hf-hub:ORG/REPO``                open_clip (QuiltNet, BiomedCLIP); timm when the local copy
                                   holds timm's config.json and no open_clip_config.json
``local-dir:PATH``                 an open_clip folder (open_clip_config.json + weights)
``MODEL:TAG``, ``open_clip:MODEL:TAG``  an open_clip model and pretrained tag (RN50:openai)
``open_clip:MODEL`` + ``--weights``  an open_clip architecture with a local weights file
``torchvision:resnet50[:WEIGHTS]``  torchvision's ResNet50 (kind resnet50)
=================================  ==========================================================

``preprocess`` reads input size and normalisation from the model's own config (timm's
pretrained_cfg, open_clip's preprocess_cfg); the manifest may override them.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from pvdesk import heavy
from pvdesk.errors import ModelError
from pvdesk.models.bundle_files import WEIGHT_EXTS
from pvdesk.models.manifest import CLIP_MEAN, CLIP_STD, IMAGENET_MEAN, IMAGENET_STD

HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]{0,95}/[\w.-]{1,95}")
FORMS = ("timm:NAME, timm:hf-hub:ORG/REPO, hf-hub:ORG/REPO, local-dir:PATH, MODEL:TAG "
         "(open_clip, e.g. RN50:openai), open_clip:MODEL with --weights FILE, "
         "torchvision:resnet50")


def _bad(spec: str, why: str) -> ModelError:
    return ModelError(f"backbone {spec[:200]!r}: {why} (forms: {FORMS})")


def _hub(spec: str, repo: str) -> str:
    if not HUB_ID.fullmatch(repo):
        raise _bad(spec, f"{repo[:100]!r} is not a Hugging Face repository id (ORG/REPO)")
    return repo


def _file(path: str | None) -> str | None:
    if path is None:
        return None
    p = Path(os.path.expandvars(path)).expanduser()
    if not p.is_file():
        raise ModelError(f"{p}: weights file not found" if not p.exists() else
                         f"{p}: not a weights file (a folder or a special file)")
    if p.suffix.lower() not in WEIGHT_EXTS:
        raise ModelError(f"{p}: not a weights file (expected {', '.join(WEIGHT_EXTS)})")
    return str(p.resolve())


def _hub_family(repo: str) -> str:
    """open_clip or timm, from what the local copy of ``repo`` holds (open_clip when unknown)."""
    from pvdesk.models.openclip_dir import hub_folder
    from pvdesk.models.timm_tower import hub_config_path

    if hub_folder(repo) is None and hub_config_path(repo) is not None:
        return "timm"
    return "open_clip"


def parse(spec: str, weights: str | None = None, kind: str | None = None) -> dict:
    """The manifest ``backbone`` field for ``spec`` (and ``weights``, a file the user named);
    ModelError with the accepted forms when it is not one of them."""
    text = str(spec).strip()
    if not text or len(text) > 4096 or "\x00" in text:
        raise _bad(text, "empty or not text")
    path = _file(weights)
    bb: dict
    if text.startswith("timm:"):
        rest = text[5:]
        if rest.startswith("hf-hub:"):
            bb = {"source": "timm", "hf_hub": _hub(text, rest[7:])}
        else:
            if not rest or not heavy.timm().is_model(rest):
                raise _bad(text, f"timm has no architecture {rest[:100]!r}")
            bb = {"source": "timm", "model": rest}
    elif text.startswith("hf-hub:"):
        repo = _hub(text, text[7:])
        if kind in ("clip-linear", "clip-mlp") and _hub_family(repo) == "timm":
            bb = {"source": "timm", "hf_hub": repo}
        else:
            bb = {"source": "hf-hub", "id": repo}
    elif text.startswith("local-dir:"):
        folder = Path(os.path.expandvars(text[10:])).expanduser()
        if not folder.is_dir():
            raise ModelError(f"{folder}: no such folder (local-dir: names an open_clip folder "
                             "with open_clip_config.json and its weights)")
        from pvdesk.models.openclip_dir import read_config

        read_config(folder)
        bb = {"source": "open_clip", "local_dir": str(folder.resolve())}
    elif text.startswith("torchvision:"):
        arch, _, w = text[12:].partition(":")
        if arch != "resnet50":
            raise _bad(text, "torchvision backbones: resnet50 only")
        bb = {"source": "torchvision", "weights": w or None}
        if not w and path is None:
            bb["init"] = "random"
    else:
        rest = text[len("open_clip:"):] if text.startswith("open_clip:") else text
        model, _, tag = rest.partition(":")
        if model not in heavy.open_clip().list_models():
            raise _bad(text, f"not a known form, and open_clip has no model {model[:100]!r}")
        if path is not None:
            bb = {"source": "file", "model": model}
        elif not tag:
            raise _bad(text, "an open_clip model needs a pretrained tag (MODEL:TAG) or "
                       "--weights FILE")
        else:
            bb = {"source": "open_clip", "model": model, "pretrained": tag}
    if path is not None:
        if bb["source"] in ("hf-hub",) or bb.get("local_dir"):
            raise _bad(text, "--weights is for timm:, open_clip:MODEL and torchvision: specs "
                       "(an hf-hub: or local-dir: backbone brings its own weights)")
        bb["path"] = path
        bb.pop("init", None)
    bb["spec"] = text
    return bb


def family(bb: dict) -> str:
    """timm | open_clip | torchvision."""
    if bb.get("source") == "timm":
        return "timm"
    if bb.get("source") == "torchvision":
        return "torchvision"
    return "open_clip"


def default_kind(bb: dict) -> str:
    return {"timm": "clip-linear", "torchvision": "resnet50"}.get(family(bb), "clip-zeroshot")


def preprocess(bb: dict) -> dict:
    """{input_size, mean, std} from the model's own config (what is known of them)."""
    fam = family(bb)
    if fam == "torchvision":
        return {"input_size": 224, "mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD)}
    if fam == "timm":
        from pvdesk.models.timm_tower import architecture
        from pvdesk.models.timm_tower import preprocess as timm_pre

        near = Path(bb["path"]) if bb.get("path") else None
        return timm_pre(architecture(bb, near)[2])
    from pvdesk.models.openclip_dir import hub_folder, read_config
    from pvdesk.models.openclip_dir import preprocess as dir_pre

    if bb.get("local_dir"):
        return dir_pre(read_config(bb["local_dir"]))
    if bb.get("source") == "hf-hub":
        folder = hub_folder(bb["id"])
        return dir_pre(read_config(folder)) if folder is not None else {}
    open_clip = heavy.open_clip()
    out: dict = {"mean": list(CLIP_MEAN), "std": list(CLIP_STD)}
    size = ((open_clip.get_model_config(bb["model"]) or {}).get("vision_cfg") or {}).get(
        "image_size")
    if isinstance(size, int):
        out["input_size"] = size
    if bb.get("pretrained"):
        cfg = open_clip.pretrained.get_pretrained_cfg(bb["model"], bb["pretrained"]) or {}
        for key in ("mean", "std"):
            if cfg.get(key):
                out[key] = [float(v) for v in cfg[key]]
    return out
