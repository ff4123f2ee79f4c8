"""Fixed-seed random initialisation for the demo bundles (no download, deterministic)."""

from __future__ import annotations

from contextlib import contextmanager

from pvdesk import heavy


@contextmanager
def seeded(seed: int):
    """Deterministic init that leaves the global RNG state as it was."""
    torch = heavy.torch()

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        yield


def calibrate_batchnorm(module, seed: int, size: int = 96, n: int = 8, output: bool = True):
    """Set BatchNorm running statistics from one seeded batch of noise; return the eval-mode
    output on that batch (when ``output``).

    A freshly initialised network has running mean 0 / variance 1 in every BatchNorm layer, so
    in eval mode activations grow layer after layer and a random ResNet50 answers one class
    with probability ~1 for every tile. One train-mode pass over noise gives the statistics a
    trained network would have roughly, so random-weight outputs vary from tile to tile.
    """
    torch = heavy.torch()
    nn = torch.nn

    bns = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not bns and not output:
        return None
    was_training = module.training
    saved = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the (single) batch
    with seeded(seed + 1), torch.no_grad():
        # Image-like noise: smooth blobs plus grain (white noise alone misleads the statistics).
        low = torch.randn(n, 3, max(2, size // 16), max(2, size // 16))
        x = torch.nn.functional.interpolate(low, size=(size, size), mode="bilinear")
        x = x + 0.5 * torch.randn(n, 3, size, size)
        module.train()
        module(x)
        module.eval()
        out = module(x) if output else None
    for m, mom in zip(bns, saved, strict=True):
        m.momentum = mom
    module.train(was_training)
    return out


def calibrate_linear(linear, logits, target_std: float = 1.5) -> None:
    """Scale a random final layer so its logits spread by about ``target_std``.

    Random features feed logits with a spread of ~10, so the softmax saturates (every tile
    one class, probability 1.0). Rescaled, the demo's probabilities vary but stay readable.
    """
    torch = heavy.torch()

    std = float(logits.float().std())
    if std > 0:
        with torch.no_grad():
            linear.weight.mul_(target_std / std)
            linear.bias.zero_()
