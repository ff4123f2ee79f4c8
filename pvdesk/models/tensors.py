"""Safe checkpoint reading and tensor-shape checks against a bundle's manifest.

Checkpoints are never unpickled: safetensors, or ``torch.load(weights_only=True)`` with no
fallback. TorchScript archives (OpenAI's original CLIP files) are refused: loading one runs
code from the archive.
"""

from __future__ import annotations

import warnings
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

from pvdesk import heavy
from pvdesk.errors import ModelError

if TYPE_CHECKING:
    import torch

    from pvdesk.models.bundle import Bundle

LINEAR_KEYS = ("head.weight", "head.bias")
MLP_KEYS = ("head.0.weight", "head.0.bias", "head.3.weight", "head.3.bias")
ZEROSHOT_KEYS = ("zeroshot.class_embeddings", "zeroshot.logit_scale")


def _is_torchscript(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
    except (zipfile.BadZipFile, OSError):
        return False
    return any(n.split("/", 1)[-1].startswith(("constants.pkl", "code/")) for n in names)


def _unwrap(obj, path: Path) -> dict:
    torch = heavy.torch()

    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not obj:
        raise ModelError(f"{path}: not a weights checkpoint (expected a mapping of tensors)")
    out = {}
    for k, v in obj.items():
        if not isinstance(v, torch.Tensor):
            continue  # e.g. an epoch counter beside the tensors
        out[k[7:] if str(k).startswith("module.") else str(k)] = v
    if not out:
        raise ModelError(f"{path}: the checkpoint holds no tensors")
    return out


def load_checkpoint(path: str | Path) -> dict[str, torch.Tensor]:
    """Tensors from a .safetensors, a weights-only torch checkpoint, or a TorchScript archive."""
    import pickle

    torch = heavy.torch()

    from pvdesk.models.safetensors_header import check_regular_file, read_header

    path = Path(path)
    check_regular_file(path)  # missing, a folder, a FIFO or device, empty: ModelError
    if path.suffix == ".safetensors":
        read_header(path)  # bounded and checked before safetensors allocates anything
        from safetensors import SafetensorError
        load_file = heavy.safetensors_torch().load_file

        try:
            return load_file(str(path), device="cpu")
        except (SafetensorError, OSError, ValueError, RuntimeError, MemoryError) as exc:
            raise ModelError(f"{path}: not a readable safetensors file "
                             f"({_first_line(exc)})") from None
    if _is_torchscript(path):
        # Loading TorchScript runs code from the archive (__setstate__): never done here.
        raise ModelError(f"{path}: refused: a TorchScript archive (such as OpenAI's original "
                         "CLIP .pt files) runs code when loaded; use a .safetensors file (for "
                         "OpenAI CLIP: open_clip_model.safetensors from the timm/*_clip.openai "
                         "repositories on Hugging Face)")
    try:
        with warnings.catch_warnings():  # torch's notes on pickle protocols are not for users
            warnings.simplefilter("ignore")
            obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, AttributeError, TypeError, EOFError) as exc:
        raise ModelError(f"{path}: refused: the checkpoint is not plain weights (it needs "
                         f"unpickling of arbitrary objects, which pvdesk never does: "
                         f"{_unpickler_reason(exc)}); save it as .safetensors instead") from None
    except (OSError, ValueError) as exc:
        raise ModelError(f"{path}: cannot read the checkpoint ({_first_line(exc)})") from None
    except Exception as exc:  # noqa: BLE001 - any other failure of a hostile file is refused
        raise ModelError(f"{path}: cannot read the checkpoint ({type(exc).__name__}: "
                         f"{_first_line(exc)})") from None
    return _unwrap(obj, path)


def _unpickler_reason(exc: BaseException) -> str:
    """What torch's weights-only unpickler objected to, without its advice to load the file
    unsafely."""
    text = str(exc)
    if "WeightsUnpickler error:" in text:
        reason = " ".join(text.split("WeightsUnpickler error:", 1)[1].split("Check the")[0]
                          .split())
        return reason[:200] or "an object that is not a tensor"
    return _first_line(exc)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__


def _shape_error(where: str, key: str, problem: str) -> ModelError:
    return ModelError(f"{where}: tensor '{key}': {problem}")


def check_tensors(bundle: Bundle, tensors: dict[str, torch.Tensor], where: str) -> None:
    """Shape and key checks that need no backbone (the embedding width is checked at load)."""
    c = len(bundle.classes)
    kind = bundle.kind

    def need(keys):
        missing = [k for k in keys if k not in tensors]
        if missing:
            raise _shape_error(where, missing[0], f"missing (kind '{kind}' needs "
                               f"{', '.join(keys)})")

    def rows(key: str, ndim: int):
        t = tensors[key]
        if t.ndim != ndim:
            raise _shape_error(where, key, f"expected {ndim} dimensions, got shape "
                               f"{tuple(t.shape)}")
        if t.shape[0] != c and key != "head.0.weight" and key != "head.0.bias":
            raise ModelError(f"{where}: field 'classes': {c} classes listed but tensor "
                             f"'{key}' has {t.shape[0]} rows")

    if kind == "clip-linear":
        need(LINEAR_KEYS)
        rows("head.weight", 2)
        rows("head.bias", 1)
        allowed = set(LINEAR_KEYS)
    elif kind == "clip-mlp":
        need(MLP_KEYS)
        rows("head.3.weight", 2)
        rows("head.3.bias", 1)
        w0, b0, w3 = tensors["head.0.weight"], tensors["head.0.bias"], tensors["head.3.weight"]
        if w0.ndim != 2 or b0.shape != (w0.shape[0],) or w3.shape[1] != w0.shape[0]:
            raise _shape_error(where, "head.0.weight", f"shapes do not chain: head.0.weight "
                               f"{tuple(w0.shape)}, head.0.bias {tuple(b0.shape)}, "
                               f"head.3.weight {tuple(w3.shape)}")
        allowed = set(MLP_KEYS)
    elif kind == "clip-zeroshot":
        allowed = set(ZEROSHOT_KEYS)
        if "zeroshot.class_embeddings" in tensors:
            need(ZEROSHOT_KEYS)
            rows("zeroshot.class_embeddings", 2)
            if tensors["zeroshot.logit_scale"].numel() != 1:
                raise _shape_error(where, "zeroshot.logit_scale", "must hold one number")
    else:  # resnet50
        if "fc.weight" in tensors or "fc.bias" in tensors:
            need(("fc.weight", "fc.bias"))
            rows("fc.weight", 2)
            rows("fc.bias", 1)
        return  # the rest is checked against the architecture at load
    if kind == "clip-linear" and tensors["head.bias"].shape != (c,):
        raise _shape_error(where, "head.bias", f"expected shape ({c},)")
    for k in tensors:
        if k not in allowed and not k.startswith("backbone."):
            raise _shape_error(where, k, f"not used by kind '{kind}' (expected "
                               f"{', '.join(sorted(allowed))} or backbone.*)")
    if bundle.backbone.get("source") == "bundle" and not any(
            k.startswith("backbone.") for k in tensors):
        raise ModelError(f"{where}: field 'backbone': source 'bundle' but the weights hold no "
                         "backbone.* tensors")


def load_into(module, state: dict, where: str, what: str, strict: bool = True) -> None:
    """``module.load_state_dict`` with shape/key problems turned into a one-line ModelError."""
    own = module.state_dict()
    for k, v in state.items():
        if k not in own:
            raise _shape_error(where, k, f"no such parameter in the {what}")
        if tuple(own[k].shape) != tuple(v.shape):
            raise _shape_error(where, k, f"shape {tuple(v.shape)} does not match the {what}'s "
                               f"{tuple(own[k].shape)}")
    if strict:
        missing = [k for k in own if k not in state]
        if missing:
            raise _shape_error(where, missing[0], f"missing for the {what} "
                               f"({len(missing)} tensor(s) missing)")
    module.load_state_dict(state, strict=False)
