"""Small generated datasets for the training tests: classes a tiny model can tell apart.

Each class has its own colour (with texture noise), so even a random-weight backbone's
embeddings separate them and a head trained on them must beat chance. File names follow
BreakHis (SOB_<B|M>_<code>-<year>-<patient>-<mag>-<seq>.png), so patients are known.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from pvdesk.taxonomy import SUBTYPES

COLOURS = [(220, 60, 60), (60, 200, 60), (60, 80, 220), (230, 210, 40), (200, 60, 200),
           (40, 200, 210), (250, 140, 20), (120, 120, 120)]


def colour_image(colour, size: int, rng) -> np.ndarray:
    base = np.array(colour, dtype=np.int16)
    noise = rng.integers(-25, 26, size=(size, size, 3))
    stripes = ((np.arange(size)[:, None] // 4) % 2) * 20  # a little texture
    return np.clip(base + noise - stripes[..., None], 0, 255).astype(np.uint8)


def colour_dataset(root: Path, classes: int = 4, patients: int = 4, per_patient: int = 2,
                   size: int = 48, seed: int = 0) -> Path:
    """``root/<class>/SOB_...png``: ``classes`` subtypes, each with its own colour."""
    rng = np.random.default_rng(seed)
    for k, s in enumerate(SUBTYPES[:classes]):
        d = root / s.name
        d.mkdir(parents=True, exist_ok=True)
        g = "B" if s.group == "benign" else "M"
        for p in range(patients):
            for i in range(per_patient):
                arr = colour_image(COLOURS[k], size, rng)
                name = f"SOB_{g}_{s.code}-14-{100 * (k + 1) + p}-{[40, 100][i % 2]}-{i + 1:03d}.png"
                Image.fromarray(arr).save(d / name)
    return root
