"""Device choice (CUDA, then Apple MPS, then CPU) and the precision each device runs at."""

from __future__ import annotations

from pvdesk import heavy
from pvdesk.errors import ModelError

PRECISIONS = ("auto", "fp32", "bf16", "fp16")


def _mps_available(torch) -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps and mps.is_available())


def pick_device(requested: str | None = None) -> str:
    """"cuda" when present, then "mps", then "cpu"; ``requested`` overrides.

    A requested device that is not there raises ModelError (no silent fallback).
    """
    torch = heavy.torch()

    if requested in (None, "", "auto"):
        if torch.cuda.is_available():
            return "cuda"
        if _mps_available(torch):
            return "mps"
        return "cpu"
    req = str(requested).lower()
    kind = req.split(":", 1)[0]
    if kind == "cpu":
        return "cpu"
    if kind == "cuda":
        if not torch.cuda.is_available():
            raise ModelError(f"device '{requested}': CUDA is not available on this machine "
                             "(no NVIDIA GPU or a CPU-only torch build); use --device cpu")
        if ":" in req:
            idx = req.split(":", 1)[1]
            if not idx.isdigit() or int(idx) >= torch.cuda.device_count():
                raise ModelError(f"device '{requested}': there are "
                                 f"{torch.cuda.device_count()} CUDA device(s)")
        return req
    if kind == "mps":
        if not _mps_available(torch):
            raise ModelError(f"device '{requested}': Apple MPS is not available on this machine; "
                             "use --device cpu")
        return "mps"
    raise ModelError(f"device '{requested}': unknown device (expected cuda, mps or cpu)")


def cpu_bf16_fast() -> bool:
    """True when the CPU has native bf16 (AVX512-BF16 or AMX), where bf16 autocast pays off."""
    torch = heavy.torch()

    cpu = getattr(torch, "cpu", None)
    try:
        return bool(cpu._is_avx512_bf16_supported() or cpu._is_amx_tile_supported())
    except Exception:  # private helpers: absent on some builds
        return False


def autocast_dtype(device: str, precision: str):
    """The autocast dtype for ``precision`` on ``device``, or None for plain fp32."""
    torch = heavy.torch()

    if precision not in PRECISIONS:
        raise ModelError(f"precision '{precision}': expected one of {', '.join(PRECISIONS)}")
    kind = device.split(":", 1)[0]
    if precision == "fp32":
        return None
    if precision == "bf16":
        return torch.bfloat16
    if precision == "fp16":
        if kind == "cpu":
            raise ModelError("precision 'fp16': not supported on the CPU (use bf16 or auto)")
        return torch.float16
    # auto
    if kind == "cpu":
        return torch.bfloat16 if cpu_bf16_fast() else None
    return torch.float16


def precision_label(dtype) -> str:
    torch = heavy.torch()

    return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[dtype]
