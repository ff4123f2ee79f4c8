"""open_clip model folders: ``local-dir:PATH`` and the local copy of an ``hf-hub:ORG/REPO``.

Such a folder holds ``open_clip_config.json`` (``model_cfg`` = the architecture,
``preprocess_cfg`` = input size and normalisation) and the weights
(``open_clip_model.safetensors``, or ``open_clip_pytorch_model.bin`` read weights-only).
An ``hf-hub:`` backbone is read from such a folder too: ``PVDESK_WEIGHTS_DIR/ORG--REPO/``,
else the Hugging Face cache's snapshot of the repository. Reading the config needs no torch.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from pvdesk import safe_json
from pvdesk.errors import ModelError
from pvdesk.models.manifest import stated_mean_std

if TYPE_CHECKING:
    from pvdesk.models.bundle import Bundle

CONFIG_NAME = "open_clip_config.json"
WEIGHT_NAMES = ("open_clip_model.safetensors", "model.safetensors",
                "open_clip_pytorch_model.bin", "pytorch_model.bin")
MAX_CONFIG_BYTES = 1 << 20


def read_config(folder: str | Path) -> dict:
    """The folder's open_clip_config.json (``model_cfg`` checked to be there); ModelError."""
    path = Path(folder) / CONFIG_NAME
    try:
        raw = safe_json.load_file(path, MAX_CONFIG_BYTES)
    except FileNotFoundError:
        raise ModelError(f"{path}: missing (an open_clip folder holds {CONFIG_NAME} and "
                         f"{WEIGHT_NAMES[0]})") from None
    except OSError as exc:
        raise ModelError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except safe_json.JSONProblem as exc:
        raise ModelError(f"{path}: not a usable open_clip config ({exc})") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("model_cfg"), dict) or not \
            isinstance(raw["model_cfg"].get("vision_cfg"), dict):
        raise ModelError(f"{path}: not an open_clip config (no 'model_cfg' with 'vision_cfg')")
    return raw


def preprocess(cfg: dict) -> dict:
    """{input_size, mean, std} the folder's config states (missing keys left out)."""
    out: dict = {}
    pre = cfg.get("preprocess_cfg") if isinstance(cfg.get("preprocess_cfg"), dict) else {}
    size = pre.get("size", cfg["model_cfg"]["vision_cfg"].get("image_size"))
    if isinstance(size, (list, tuple)) and size:
        size = size[-1]
    if isinstance(size, int) and not isinstance(size, bool):
        out["input_size"] = size
    return {**out, **stated_mean_std(pre)}


def weights_in(folder: Path) -> Path | None:
    for n in WEIGHT_NAMES:
        if (folder / n).is_file():
            return folder / n
    return None


def hub_folder(repo: str) -> Path | None:
    """A local folder holding ``repo``'s open_clip config: PVDESK_WEIGHTS_DIR/ORG--REPO, else
    the Hugging Face cache's snapshot (None when neither has it)."""
    from pvdesk.models.weights import WEIGHTS_DIR_ENV, hf_cached

    d = os.environ.get(WEIGHTS_DIR_ENV)
    if d:
        for name in (repo.replace("/", "--"), repo.rsplit("/", 1)[-1]):
            f = Path(d).expanduser() / name
            if (f / CONFIG_NAME).is_file():
                return f
    hits = hf_cached(repo, [CONFIG_NAME])
    return hits[0].parent if hits else None


def folder_of(bundle: Bundle) -> Path | None:
    """The open_clip folder a bundle's backbone reads (``local_dir``, or an hf-hub repository's
    local copy); None for other backbones or an hf-hub repository not here yet. A relative
    ``local_dir`` is inside the bundle folder."""
    bb = bundle.backbone
    if bb.get("local_dir"):
        p = Path(os.path.expandvars(bb["local_dir"])).expanduser()
        if not p.is_absolute() and bundle.path is not None:
            from pvdesk.models.bundle_files import inside

            p = bundle.path / p
            if not inside(bundle.path, p):
                raise ModelError(f"{bundle.where}: field 'backbone.local_dir': "
                                 f"{bb['local_dir'][:200]!r} leads outside the bundle folder")
        if not p.is_dir():
            raise ModelError(f"{p}: the open_clip folder named by backbone.local_dir is not "
                             f"there (it should hold {CONFIG_NAME} and {WEIGHT_NAMES[0]})")
        return p
    if bb.get("source") == "hf-hub":
        return hub_folder(bb["id"])
    return None


def download(repo: str) -> Path:
    """Fetch the config and the weights of an open_clip hf-hub repository into the Hugging
    Face cache (the caller has checked that the network is reachable); the folder."""
    from huggingface_hub import hf_hub_download

    cfg = Path(hf_hub_download(repo, CONFIG_NAME))
    last = None
    for n in WEIGHT_NAMES:
        try:
            hf_hub_download(repo, n)
            return cfg.parent
        except Exception as exc:  # noqa: BLE001 - try the next file name the hub may hold
            last = exc
    raise ModelError(f"hf-hub {repo}: no open_clip weights file ({', '.join(WEIGHT_NAMES)}) "
                     f"could be downloaded ({type(last).__name__})")
