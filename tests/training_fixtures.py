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


def colour_slide(path: Path, classes: int = 2, tile: int = 64, per_class: int = 4,
                 seed: int = 0) -> tuple[Path, list[tuple[int, int, int, int, str]]]:
    """A pyramidal TIFF with one row of ``per_class`` coloured tiles per class.

    Returns the path and the tiles as (x, y, w, h, class) in level-0 pixels.
    """
    from slide_factory import write_pyramid

    rng = np.random.default_rng(seed)
    w, h = tile * per_class, tile * classes
    img = np.full((h, w, 3), 240, np.uint8)
    tiles = []
    for k in range(classes):
        for i in range(per_class):
            x, y = i * tile, k * tile
            img[y:y + tile, x:x + tile] = colour_image(COLOURS[k], tile, rng)
            tiles.append((x, y, tile, tile, SUBTYPES[k].name))
    write_pyramid(path, img, levels=2, mpp=0.5)
    return path, tiles


def review_rows(slide: Path, tiles, status: str = "confirmed") -> list[dict]:
    """Rows for pvdesk.export.csv.write_rows_csv: each tile reviewed with its true class."""
    from pvdesk.taxonomy import CLASS_NAMES

    rows = []
    for x, y, w, h, label in tiles:
        probs = [1.0 / len(CLASS_NAMES)] * len(CLASS_NAMES)
        rows.append({"source": str(slide), "tile_x": x, "tile_y": y, "tile_w": w, "tile_h": h,
                     "mpp": 0.5, "model": "demo-clip-rn50@1", "probs": probs,
                     "review_status": status, "review_label": label, "reviewer": "tester",
                     "reviewed_at": "2026-11-27T12:00:00Z"})
    return rows
