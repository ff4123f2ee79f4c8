"""CLIP kinds: an open_clip image tower plus a head (zero-shot, linear or MLP).

Only the image tower runs per tile. The text tower is built only when zero-shot class
embeddings must be computed (neither stored in the bundle nor cached).
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from typing import TYPE_CHECKING

from pvdesk import heavy
from pvdesk.errors import ModelError
from pvdesk.models.manifest import WEIGHTS_NAME
from pvdesk.models.randinit import calibrate_batchnorm, seeded
from pvdesk.models.tensors import ZEROSHOT_KEYS, check_tensors, load_checkpoint, load_into
from pvdesk.models.weights import WeightsPlan, backbone_file, plan

if TYPE_CHECKING:
    from pvdesk.models.bundle import Bundle


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


def _weights(bundle: Bundle, p: WeightsPlan):
    """The backbone state dict (or None); fails before any model is built."""
    path = backbone_file(bundle, p)  # fails fast (offline, unreachable) or for "missing"
    return (load_checkpoint(path), str(path)) if path is not None else (None, "")


def _visual_only(name: str, quick: bool, image_size: int | None):
    """The image tower alone, drawn from the RNG exactly as CLIP() draws it (it comes first)."""
    import copy

    open_clip = heavy.open_clip()
    nn = heavy.torch().nn

    try:
        from open_clip.model import _build_vision_tower
    except ImportError:
        return None
    cfg = copy.deepcopy(open_clip.get_model_config(name) or {})
    if "vision_cfg" not in cfg or "embed_dim" not in cfg:
        return None
    if image_size:
        cfg["vision_cfg"]["image_size"] = image_size
    holder = nn.Module()
    holder.visual = _build_vision_tower(cfg["embed_dim"], cfg["vision_cfg"],
                                        quick or bool(cfg.get("quick_gelu")), None)
    return holder


def _open_clip_model(bundle: Bundle, p: WeightsPlan, state, origin: str, need_text: bool):
    open_clip = heavy.open_clip()

    bb = bundle.backbone
    if bb["source"] == "hf-hub" or bb.get("local_dir"):
        return _folder_model(bundle, state, origin)
    name = bb["model"]
    if name not in open_clip.list_models():
        raise ModelError(f"{bundle.where}: field 'backbone.model': open_clip has no model "
                         f"{name!r}")
    quick = bb.get("quick_gelu")
    if quick is None and bb.get("pretrained"):
        from open_clip.pretrained import get_pretrained_cfg

        quick = bool((get_pretrained_cfg(name, bb["pretrained"]) or {}).get("quick_gelu"))
    native = ((open_clip.get_model_config(name) or {}).get("vision_cfg") or {}).get("image_size")
    # A bundle may run the tower at another size (its positional embedding is then that size:
    # fine for random or bundle weights; pretrained weights must match it).
    force = bundle.input_size if native and native != bundle.input_size else None
    with seeded(bb.get("seed", 0)), _quiet_open_clip():
        model = None if need_text else _visual_only(name, bool(quick), force)
        if model is None:
            model = open_clip.create_model(name, pretrained=None, force_quick_gelu=bool(quick),
                                           force_image_size=force)
    if p.how == "random":
        calibrate_batchnorm(model.visual, bb.get("seed", 0), size=bundle.input_size,
                            n=1, output=False)
    if state is not None:
        from open_clip.convert import convert_state_dict

        state = convert_state_dict(model, state)
        own = model.state_dict()
        load_into(model, {k: v for k, v in state.items() if k in own}, origin,
                  f"open_clip {name}")
    return model, name


def _folder_model(bundle: Bundle, state, origin: str):
    """An open_clip model from a folder with open_clip_config.json (``local-dir:`` or an
    hf-hub repository's local copy): the architecture from the config, the weights read here
    (safely) and loaded strictly."""
    from pvdesk.models.openclip_dir import CONFIG_NAME, folder_of, read_config

    open_clip = heavy.open_clip()
    bb = bundle.backbone
    folder = folder_of(bundle)
    if folder is None:
        raise ModelError(f"{bundle.name}: hf-hub {bb.get('id')}: its {CONFIG_NAME} is not here "
                         f"(put the repository's files in PVDESK_WEIGHTS_DIR/"
                         f"{str(bb.get('id')).replace('/', '--')}/)")
    read_config(folder)  # a clear line for a missing or broken config, before open_clip
    try:
        with seeded(bb.get("seed", 0)), _quiet_open_clip():
            model = open_clip.create_model(f"local-dir:{folder}", load_weights=False)
    except Exception as exc:  # noqa: BLE001 - open_clip's errors for a config it cannot build
        raise ModelError(f"{folder / CONFIG_NAME}: open_clip cannot build this model "
                         f"({type(exc).__name__}: {' '.join(str(exc).split())[:200]})") from None
    if state is not None:
        from open_clip.convert import convert_state_dict

        state = convert_state_dict(model, state)
        load_into(model, state, origin, f"open_clip model of {folder}")
    return model, f"local-dir:{folder}"


def build_clip_net(bundle: Bundle, override=None):
    """The network for a CLIP-kind bundle: ``net(x) -> (logits, normalised embeddings)``."""
    from pvdesk.models import text as zs
    from pvdesk.models.heads import build_head, zeroshot_head

    tensors = bundle_tensors(bundle)
    where = str(bundle.path / WEIGHTS_NAME) if bundle.path else bundle.where
    p = plan(bundle, override)
    if bundle.backbone.get("source") == "timm":  # an image-only encoder under a head
        from pvdesk.models.timm_tower import build_tower

        visual = build_tower(bundle, p, tensors)
        return clip_net(bundle, visual, build_head(bundle, tensors, visual.output_dim, where))
    state, origin = _weights(bundle, p)
    zeroshot = bundle.kind == "clip-zeroshot"
    stored = zeroshot and all(k in tensors for k in ZEROSHOT_KEYS)
    cached = texts = None
    if zeroshot and not stored:
        from pvdesk.models.prompts import class_texts

        texts = class_texts(bundle)
        key, cache, look = zs.cache_key(bundle, p, texts)
        cached = zs.read_cache(key, look, len(bundle.classes))
    need_text = zeroshot and not stored and cached is None
    model, tok_name = _open_clip_model(bundle, p, state, origin, need_text)
    backbone = {k[len("backbone."):]: v for k, v in tensors.items() if k.startswith("backbone.")}
    if backbone:
        own = model.state_dict()
        load_into(model, {k: v for k, v in backbone.items() if k in own or k.startswith(
            "visual.")}, where, "CLIP backbone", strict=False)
    dim = int(model.visual.output_dim)
    if zeroshot:
        if stored:
            emb, scale = tensors["zeroshot.class_embeddings"], tensors["zeroshot.logit_scale"]
        elif cached is not None:
            emb, scale = cached
        else:
            emb, scale = zs.class_embeddings(model, tok_name, texts), model.logit_scale.detach()
            zs.write_cache(key, cache, emb, scale)
        if emb.shape[1] != dim:
            raise ModelError(f"{where}: tensor 'zeroshot.class_embeddings': {emb.shape[1]} "
                             f"columns but the backbone gives {dim}-d embeddings")
        head = zeroshot_head(emb, scale)
    else:
        head = build_head(bundle, tensors, dim, where)

    return clip_net(bundle, model.visual, head)  # the text tower is dropped: only images run


def clip_net(bundle: Bundle, visual, head):
    """``net(x) -> (logits, normalised embeddings)``: the image tower, then the head in fp32."""
    torch = heavy.torch()
    F, nn = torch.nn.functional, torch.nn
    zeroshot = bundle.kind == "clip-zeroshot"

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
            out = dict(self.head.export()) if not zeroshot else {}
            if include_backbone:
                if zeroshot:
                    out.update(self.head.export())
                out.update({f"backbone.visual.{k}": v.detach().cpu().clone()
                            for k, v in self.visual.state_dict().items()})
            return out

    return ClipNet(visual, head)
