"""Preprocessing, as pvdesk does it at inference, and fine-tuning augmentations.

Images are read as RGB and resized (bilinear) to the input size by
:class:`training.data.source.SampleReader`, then batched as uint8 (N, 3, S, S).
``normalise`` is TileClassifier.prepare's arithmetic: ``(x - 255 * mean) / (255 * std)``.
``augment`` (fine-tuning only) applies, per image: horizontal and vertical flips, a random
multiple of 90 degrees, and mild colour jitter (brightness, contrast and saturation within
±10%, hue within ±0.02), all drawn from a seeded generator.
"""

from __future__ import annotations

from pvdesk import heavy

JITTER = {"brightness": 0.1, "contrast": 0.1, "saturation": 0.1, "hue": 0.02}


def normalise(x, mean, std):
    """uint8 or float-in-0..255 (N, 3, H, W) -> normalised float32."""
    torch = heavy.torch()

    m = torch.tensor(mean, device=x.device, dtype=torch.float32).view(1, 3, 1, 1) * 255.0
    s = torch.tensor(std, device=x.device, dtype=torch.float32).view(1, 3, 1, 1) * 255.0
    return (x.float() - m) / s


def _uniform(n, spread, gen, device):
    torch = heavy.torch()

    return (1.0 + (torch.rand(n, generator=gen) * 2 - 1) * spread).to(device).view(n, 1, 1, 1)


def augment(x, gen):
    """Augment a uint8 batch (N, 3, S, S) with square images; returns float in 0..255."""
    torch = heavy.torch()
    TF = heavy.module("torchvision.transforms.v2.functional")

    n = x.shape[0]
    dev = x.device
    x = x.float() / 255.0
    hflip = torch.rand(n, generator=gen) < 0.5
    vflip = torch.rand(n, generator=gen) < 0.5
    rot = torch.randint(0, 4, (n,), generator=gen)
    x = torch.where(hflip.to(dev).view(n, 1, 1, 1), x.flip(-1), x)
    x = torch.where(vflip.to(dev).view(n, 1, 1, 1), x.flip(-2), x)
    for k in (1, 2, 3):
        m = (rot == k).to(dev)
        if m.any():
            x[m] = torch.rot90(x[m], k, dims=(-2, -1))
    gray = (0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]).unsqueeze(1)
    x = x * _uniform(n, JITTER["brightness"], gen, dev)
    mean = gray.mean(dim=(-2, -1), keepdim=True)
    x = (x - mean) * _uniform(n, JITTER["contrast"], gen, dev) + mean
    gray = (0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]).unsqueeze(1)
    x = (x - gray) * _uniform(n, JITTER["saturation"], gen, dev) + gray
    x = x.clamp(0, 1)
    hues = ((torch.rand(n, generator=gen) * 2 - 1) * JITTER["hue"]).tolist()
    x = torch.stack([TF.adjust_hue(x[i], h) for i, h in enumerate(hues)])
    return x * 255.0
