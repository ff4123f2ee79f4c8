"""Helpers for the model-bundle tests: small random tiles and manifests on random backbones."""

from __future__ import annotations

import torch

from pvdesk.taxonomy import CLASS_NAMES

RN50_RANDOM = {"source": "open_clip", "model": "RN50", "pretrained": None, "init": "random",
               "seed": 0}


def tiles(n: int = 4, size: int = 64, seed: int = 0) -> torch.Tensor:
    """Image-like uint8 tiles: smooth colour blobs plus grain, (n, 3, size, size)."""
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(n, 3, 6, 6, generator=g)
    x = torch.nn.functional.interpolate(low, size=(size, size), mode="bilinear")
    x = x * 200 + torch.rand(n, 3, size, size, generator=g) * 55
    return x.clamp(0, 255).to(torch.uint8)


def manifest(name: str, kind: str, classes=CLASS_NAMES, backbone=None, **extra) -> dict:
    m = {"schema_version": 1, "name": name, "version": "1", "kind": kind,
         "backbone": backbone if isinstance(backbone, str) else dict(backbone or RN50_RANDOM),
         "classes": list(classes),
         "input_size": 64, "trained": False,
         "provenance": {"data": "tests", "metrics": {}, "date": "", "config": {}}}
    m.update(extra)
    return m


def linear_tensors(classes: int, dim: int = 1024, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    return {"head.weight": torch.randn(classes, dim, generator=g) * 3,
            "head.bias": torch.randn(classes, generator=g)}


def mlp_tensors(classes: int, dim: int = 1024, hidden: int = 32, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    return {"head.0.weight": torch.randn(hidden, dim, generator=g) * 0.5,
            "head.0.bias": torch.randn(hidden, generator=g) * 0.1,
            "head.3.weight": torch.randn(classes, hidden, generator=g),
            "head.3.bias": torch.randn(classes, generator=g) * 0.1}
