"""A generated cohort for the cohort tests and benchmark: small pyramids (tissue in
different places), one broken slide, one patch folder, and a quick bundle (the real
ResNet50 architecture, fixed-seed random weights, 32 px input)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image
from slide_factory import paint, write_pyramid

from pvdesk.models.registry import builtin_models_dir


def tiny_bundle(folder: Path, name: str = "tiny-resnet50", tile_um: float = 64.0) -> Path:
    """demo-resnet50's manifest at 32 px input: the same code path, ~50x cheaper per tile."""
    m = json.loads((builtin_models_dir() / "demo-resnet50" / "manifest.json").read_text())
    m.update(name=name, input_size=32, tile_um=tile_um)
    out = folder / name
    out.mkdir(parents=True, exist_ok=True)
    (out / "manifest.json").write_text(json.dumps(m, indent=1))
    return out


def make_cohort(root: Path, slides: int = 4, size: int = 900, seed: int = 0) -> Path:
    """``root`` holding ``slides`` pyramids (two in a subfolder), a broken .svs and a patch
    folder: slides + 2 inputs."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    (root / "site-b").mkdir(exist_ok=True)
    for i in range(slides):
        rects = []
        for _ in range(2):
            x0, y0 = (int(v) for v in rng.integers(0, size // 2, 2))
            w, h = (int(v) for v in rng.integers(size // 5, size // 2, 2))
            rects.append((x0, y0, min(size, x0 + w), min(size, y0 + h)))
        img = paint(size, size, rects, seed=seed + i)
        img[: size // 3] = np.clip(img[: size // 3].astype(int) - 25 * (i % 3), 0, 255)
        where = root if i % 2 == 0 else root / "site-b"
        write_pyramid(where / f"case-{i:02d}.tif", img, levels=2, mpp=0.5)
    (root / "broken.svs").write_bytes(b"II*\x00" + bytes(rng.integers(0, 255, 3000,
                                                                      dtype=np.uint8)))
    patches = root / "patches" / "ductal_carcinoma"
    patches.mkdir(parents=True, exist_ok=True)
    for i in range(5):
        arr = rng.integers(0, 255, size=(48, 48, 3), dtype=np.uint8)
        Image.fromarray(arr).save(patches / f"p{i}.png")
    return root
