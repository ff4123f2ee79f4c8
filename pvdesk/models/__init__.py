"""Model bundles: a folder with manifest.json plus weights in safetensors.

``import pvdesk.models`` is cheap: torch, torchvision and open_clip are imported only when a
bundle is loaded. Kinds: clip-zeroshot, clip-linear, clip-mlp, resnet50 (see manifest.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pvdesk.models.bundle import Bundle
from pvdesk.models.device import pick_device
from pvdesk.models.registry import find_bundles, resolve_bundle, write_bundle

if TYPE_CHECKING:
    from pvdesk.models.classifier import ClassifierOutput, TileClassifier

__all__ = [
    "Bundle",
    "ClassifierOutput",
    "TileClassifier",
    "find_bundles",
    "pick_device",
    "resolve_bundle",
    "write_bundle",
]


def __getattr__(name: str):
    # TileClassifier / ClassifierOutput live in a module that is torch-free at import too,
    # but keep the re-export lazy so that the package stays minimal to import.
    if name in ("TileClassifier", "ClassifierOutput"):
        from pvdesk.models import classifier

        return getattr(classifier, name)
    raise AttributeError(f"module 'pvdesk.models' has no attribute {name!r}")
