"""uint8 RGB tiles -> the normalised float input a network takes, on the tiles' device.

One function for every path (the inference engine, ``TileClassifier.prepare``, benchmarks):
tiles travel to the device as uint8 (a quarter of the bytes of float32) and are converted,
resized and normalised there. On a GPU that is a few microseconds per batch; on the CPU it
is the same arithmetic the classifier always ran.

    scale, shift = normalisation(bundle.mean, bundle.std, device)
    x = to_model_input(batch_u8_on_device, 224, scale, shift, channels_last=True)

``batch`` may have any strides: the reader's NHWC buffers seen as (N, 3, H, W) arrive
channels_last and stay so (no transposing copy before a channels_last network).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pvdesk import heavy

if TYPE_CHECKING:
    import torch


def normalisation(mean, std, device="cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """(scale, shift), each (1, 3, 1, 1) float32 on ``device``, such that
    ``x * scale + shift == (x / 255 - mean) / std`` for x in 0..255."""
    torch = heavy.torch()
    m = torch.tensor(mean, dtype=torch.float64).view(1, 3, 1, 1)
    s = torch.tensor(std, dtype=torch.float64).view(1, 3, 1, 1)
    return (1.0 / (255.0 * s)).float().to(device), (-m / s).float().to(device)


def to_model_input(batch: torch.Tensor, size: int, scale: torch.Tensor, shift: torch.Tensor,
                   dtype=None, channels_last: bool = False) -> torch.Tensor:
    """uint8 (or 0..255 float) (N, 3, H, W) -> normalised (N, 3, size, size) on batch's device.

    Bilinear resize with antialiasing (as PIL's BILINEAR when shrinking) only when H, W differ
    from ``size``; then one fused multiply-add for the normalisation; then ``dtype`` (e.g.
    bf16 for bf16 weights) and channels_last when asked. ``batch`` itself is never modified.
    """
    torch = heavy.torch()
    x = batch
    if tuple(x.shape[-2:]) != (size, size):
        if x.dtype == torch.uint8 and x.device.type == "cpu":
            # The CPU has a vectorised uint8 kernel (5-7x faster than float; it rounds to
            # uint8 as PIL does); the GPU kernels take floats.
            x = x.contiguous(memory_format=torch.channels_last)
        else:
            x = x.float()
        x = torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear",
                                            antialias=True, align_corners=False)
    x = torch.addcmul(shift, x.float(), scale)  # (x / 255 - mean) / std, one pass
    if dtype is not None and dtype != torch.float32:
        x = x.to(dtype)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    return x
