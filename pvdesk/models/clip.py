"""CLIP kinds: an open_clip image tower plus a head (zero-shot, linear or MLP)."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from pvdesk.errors import ModelError
from pvdesk.models.manifest import WEIGHTS_NAME
from pvdesk.models.randinit import calibrate_batchnorm, seeded
from pvdesk.models.tensors import ZEROSHOT_KEYS, check_tensors, load_checkpoint, load_into
from pvdesk.models.weights import WeightsPlan, fetch, plan

if TYPE_CHECKING:
    from pvdesk.models.bundle import Bundle

TEXT_CACHE_NAME = "text_embeddings.safetensors"


@contextmanager
def _quiet_open_clip():
    prev = logging.root.manager.disable
    logging.disable(logging.WARNING)  # "No pretrained weights loaded ... initialized randomly"
    try:
        yield
    finally:
        logging.disable(prev)


def bundle_tensors(bundle: Bundle) -> dict:
    f = bundle.weights_file
    if f is None:
        return {}
    tensors = load_checkpoint(f)
    check_tensors(bundle, tensors, str(f))
    return tensors


def _open_clip_model(bundle: Bundle, p: WeightsPlan):
    import open_clip

    bb = bundle.backbone
    if bb["source"] == "hf-hub":
        if p.how == "download":
            fetch(bundle, p)  # fails fast when offline; open_clip then downloads
        try:
            with _quiet_open_clip():
                return open_clip.create_model(f"hf-hub:{bb['id']}"), f"hf-hub:{bb['id']}"
        except Exception as exc:
            raise ModelError(f"{bundle.name}: cannot build hf-hub:{bb['id']} "
                             f"({type(exc).__name__}: {exc})") from None
    name = bb["model"]
    if name not in open_clip.list_models():
        raise ModelError(f"{bundle.where}: field 'backbone.model': open_clip has no model "
                         f"{name!r}")
    # Weights first: a missing, refused or undownloadable file fails before any model is built.
    path = None
    if p.how in ("file", "cached"):
        path = p.path
    elif p.how in ("download", "missing"):
        path = fetch(bundle, p)  # fails fast (offline, unreachable) or raises for "missing"
    state = load_checkpoint(path) if path is not None else None
    quick = bb.get("quick_gelu")
    if quick is None and bb.get("pretrained"):
        from open_clip.pretrained import get_pretrained_cfg

        quick = bool((get_pretrained_cfg(name, bb["pretrained"]) or {}).get("quick_gelu"))
    cfg = open_clip.get_model_config(name) or {}
    native = (cfg.get("vision_cfg") or {}).get("image_size")
    # A bundle may run the tower at another size (its positional embedding is then that size:
    # fine for random or bundle weights; pretrained weights must match it).
    force = bundle.input_size if native and native != bundle.input_size else None
    with seeded(bb.get("seed", 0)), _quiet_open_clip():
        model = open_clip.create_model(name, pretrained=None, force_quick_gelu=bool(quick),
                                       force_image_size=force)
    if p.how == "random":
        calibrate_batchnorm(model.visual, bb.get("seed", 0), size=bundle.input_size,
                            n=1, output=False)
    if state is not None:
        from open_clip.convert import convert_state_dict

        load_into(model, convert_state_dict(model, state), str(path), f"open_clip {name}")
    return model, name


def _identity(bundle: Bundle, p: WeightsPlan) -> str:
    bb = bundle.backbone
    if p.how == "random":
        return f"random:{bb.get('model')}:{bb.get('seed', 0)}"
    if p.path is not None:
        st = Path(p.path).stat()
        return f"{p.how}:{p.path}:{st.st_size}:{st.st_mtime_ns}"
    return json.dumps(bb, sort_keys=True)


def _text_cache_file(bundle: Bundle, key: str) -> Path:
    from pvdesk.paths import cache_dir

    if bundle.path is not None and not bundle.builtin and os.access(bundle.path, os.W_OK):
        return bundle.path / TEXT_CACHE_NAME
    return cache_dir() / "text_embeddings" / f"{bundle.name}-{key[:20]}.safetensors"


def class_embeddings(bundle: Bundle, model, tokenizer_name: str, p: WeightsPlan):
    """(C, D) normalised class embeddings: per class, the mean of the normalised template
    embeddings, renormalised. Cached (bundle folder when writable, else the user cache)."""
    import torch
    import torch.nn.functional as F
    from safetensors.torch import load_file, save_file

    from pvdesk.models.prompts import class_texts

    texts = class_texts(bundle)
    key = hashlib.sha256(json.dumps({"manifest": bundle.manifest_hash, "texts": texts,
                                     "backbone": _identity(bundle, p)}, sort_keys=True
                                    ).encode()).hexdigest()
    cache = _text_cache_file(bundle, key)
    if cache.is_file():
        try:
            from safetensors import safe_open

            with safe_open(str(cache), framework="pt") as fh:
                meta = fh.metadata() or {}
            if meta.get("key") == key:
                emb = load_file(str(cache))["class_embeddings"]
                if emb.shape[0] == len(bundle.classes):
                    return emb
        except Exception:  # a stale or broken cache is recomputed
            pass
    import open_clip

    tok = open_clip.get_tokenizer(tokenizer_name)
    rows = []
    with torch.inference_mode():
        for c in bundle.classes:
            e = F.normalize(model.encode_text(tok(texts[c])).float(), dim=-1)
            rows.append(F.normalize(e.mean(dim=0), dim=-1))
    emb = torch.stack(rows).contiguous()
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_name(f".{cache.name}.{os.getpid()}.tmp")
        save_file({"class_embeddings": emb}, str(tmp), metadata={"key": key})
        os.replace(tmp, cache)
    except OSError:
        pass  # caching is an optimisation only
    return emb


def build_clip_net(bundle: Bundle, override=None):
    """The network for a CLIP-kind bundle: ``net(x) -> (logits, normalised embeddings)``."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    from pvdesk.models.heads import build_head, zeroshot_head

    tensors = bundle_tensors(bundle)
    where = str(bundle.path / WEIGHTS_NAME) if bundle.path else bundle.where
    p = plan(bundle, override)
    model, tok_name = _open_clip_model(bundle, p)
    backbone = {k[len("backbone."):]: v for k, v in tensors.items() if k.startswith("backbone.")}
    if backbone:
        load_into(model, backbone, where, "CLIP backbone", strict=False)
    dim = int(model.visual.output_dim)
    if bundle.kind == "clip-zeroshot":
        if all(k in tensors for k in ZEROSHOT_KEYS):
            emb, scale = tensors["zeroshot.class_embeddings"], tensors["zeroshot.logit_scale"]
            if emb.shape[1] != dim:
                raise ModelError(f"{where}: tensor 'zeroshot.class_embeddings': {emb.shape[1]} "
                                 f"columns but the backbone gives {dim}-d embeddings")
        else:
            emb = class_embeddings(bundle, model, tok_name, p)
            scale = model.logit_scale.detach()
        head = zeroshot_head(emb, scale)
    else:
        head = build_head(bundle, tensors, dim, where)

    class ClipNet(nn.Module):
        def __init__(self, visual, head):
            super().__init__()
            self.visual = visual
            self.head = head

        def forward(self, x):
            emb = F.normalize(self.visual(x).float(), dim=-1)
            with torch.autocast(x.device.type, enabled=False):
                return self.head(emb), emb

        def export_tensors(self, include_backbone=None):
            if include_backbone is None:
                include_backbone = bundle.backbone.get("source") == "bundle"
            out = dict(self.head.export()) if bundle.kind != "clip-zeroshot" else {}
            if include_backbone:
                if bundle.kind == "clip-zeroshot":
                    out.update(self.head.export())
                out.update({f"backbone.visual.{k}": v.detach().cpu().clone()
                            for k, v in self.visual.state_dict().items()})
            return out

    return ClipNet(model.visual, head)  # the text tower is dropped: only images run per tile
