"""Real backbone architectures at random init, saved the way their published weights are
(a timm ViT-S/16 as a .safetensors file; an open_clip ViT-B-32 as a ``local-dir:`` folder with
open_clip_config.json; a tiny HDF5 folder in PatchCamelyon's layout), for the tests that load
them through pvdesk's own code path. No network."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

TIMM_ARCH = "vit_small_patch16_224"
TIMM_DIM = 384


def timm_weights(folder: Path, seed: int = 0) -> Path:
    import timm
    import torch
    from safetensors.torch import save_file

    torch.manual_seed(seed)
    model = timm.create_model(TIMM_ARCH, pretrained=False, num_classes=1000)
    path = folder / f"{TIMM_ARCH}-seed{seed}.safetensors"
    # as published: the ImageNet classifier head is in the file (pvdesk drops it)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    return path


def open_clip_dir(folder: Path, seed: int = 0) -> Path:
    import open_clip
    import torch
    from safetensors.torch import save_file

    torch.manual_seed(seed)
    model = open_clip.create_model("ViT-B-32")
    d = folder / "vit-b-32-local"
    d.mkdir(parents=True, exist_ok=True)
    save_file({k: v.half().contiguous() for k, v in model.state_dict().items()},
              str(d / "open_clip_model.safetensors"))
    (d / "open_clip_config.json").write_text(json.dumps({
        "model_cfg": open_clip.get_model_config("ViT-B-32"),
        "preprocess_cfg": {"mean": [0.5, 0.4, 0.3], "std": [0.2, 0.25, 0.3], "size": 224}}))
    return d


def head_file(folder: Path, classes: int = 2, dim: int = TIMM_DIM, seed: int = 0) -> Path:
    import torch
    from safetensors.torch import save_file

    g = torch.Generator().manual_seed(seed)
    path = folder / f"head-{classes}x{dim}.safetensors"
    save_file({"head.weight": torch.randn(classes, dim, generator=g) * 2,
               "head.bias": torch.zeros(classes)}, str(path))
    return path


def pcam_folder(folder: Path, sizes=(("train", 24), ("valid", 8), ("test", 8)),
                seed: int = 0) -> Path:
    """PCam's file layout with random patches; tumour patches are redder (learnable)."""
    import h5py

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for split, n in sizes:
        y = (np.arange(n) % 2).astype(np.uint8)
        x = rng.integers(0, 80, size=(n, 96, 96, 3), dtype=np.uint8)
        x[y == 1, :, :, 0] += 150
        with h5py.File(folder / f"camelyonpatch_level_2_split_{split}_x.h5", "w") as f:
            f.create_dataset("x", data=x, chunks=(1, 96, 96, 3))
        with h5py.File(folder / f"camelyonpatch_level_2_split_{split}_y.h5", "w") as f:
            f.create_dataset("y", data=y.reshape(n, 1, 1, 1))
    return folder
