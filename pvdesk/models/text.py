"""Zero-shot class embeddings from prompt ensembles, and their cache.

Per class: the mean of the L2-normalised embeddings of its prompt texts, renormalised. The
result (with the model's logit scale) is cached once per prompt texts + backbone + manifest:
in the bundle folder when it is writable (and not a built-in), else in the user cache.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from pvdesk import heavy

if TYPE_CHECKING:
    from pvdesk.models.bundle import Bundle
    from pvdesk.models.weights import WeightsPlan

TEXT_CACHE_NAME = "text_embeddings.safetensors"


def _identity(bundle: Bundle, p: WeightsPlan) -> str:
    bb = bundle.backbone
    if p.how == "random":
        return f"random:{bb.get('model')}:{bb.get('seed', 0)}:{bundle.input_size}"
    if p.path is not None:
        st = Path(p.path).stat()
        return f"{p.how}:{p.path}:{st.st_size}:{st.st_mtime_ns}"
    return json.dumps(bb, sort_keys=True)


def cache_key(bundle: Bundle, p: WeightsPlan, texts: dict) -> tuple[str, Path, list[Path]]:
    """(key, where to write the cache, where to look for it). A built-in bundle may ship its
    cache (read only); its computed cache goes to the user cache folder."""
    from pvdesk.paths import cache_dir

    key = hashlib.sha256(json.dumps({"manifest": bundle.manifest_hash, "texts": texts,
                                     "backbone": _identity(bundle, p)}, sort_keys=True
                                    ).encode()).hexdigest()
    in_bundle = bundle.path / TEXT_CACHE_NAME if bundle.path is not None else None
    if in_bundle is not None and not bundle.builtin and os.access(bundle.path, os.W_OK):
        return key, in_bundle, [in_bundle]
    user = cache_dir() / "text_embeddings" / f"{bundle.name}-{key[:20]}.safetensors"
    return key, user, [user] + ([in_bundle] if in_bundle is not None else [])


def read_cache(key: str, paths: list[Path], classes: int):
    """(class embeddings, logit scale) from the first cache that matches, or None."""
    for path in paths:
        hit = _read_one(key, path, classes)
        if hit is not None:
            return hit
    return None


def _read_one(key: str, path: Path, classes: int):
    if not path.is_file():
        return None
    try:
        heavy.torch()  # safe_open(framework='pt') imports torch
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as fh:
            if (fh.metadata() or {}).get("key") != key:
                return None
            emb, scale = fh.get_tensor("class_embeddings"), fh.get_tensor("logit_scale")
    except Exception:  # a broken cache is recomputed
        return None
    return (emb, scale) if emb.ndim == 2 and emb.shape[0] == classes else None


def write_cache(key: str, path: Path, emb, scale) -> None:
    save_file = heavy.safetensors_torch().save_file

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        save_file({"class_embeddings": emb.contiguous(),
                   "logit_scale": scale.detach().float().reshape(()).contiguous()},
                  str(tmp), metadata={"key": key})
        os.replace(tmp, path)
    except OSError:
        pass  # caching is an optimisation only


def class_embeddings(model, tokenizer_name: str, texts: dict):
    """(C, D) float32: per class, mean of normalised text embeddings, renormalised."""
    open_clip = heavy.open_clip()
    torch = heavy.torch()
    F = torch.nn.functional

    tok = open_clip.get_tokenizer(tokenizer_name)
    rows = []
    with torch.inference_mode():
        for t in texts.values():
            e = F.normalize(model.encode_text(tok(t)).float(), dim=-1)
            rows.append(F.normalize(e.mean(dim=0), dim=-1))
    return torch.stack(rows).contiguous()
