"""Headless prediction of one source with one or more loaded bundles, written to a folder.

    models = [LoadedModel(bundle, bundle.load("cpu"))]
    info = predict_source(source, models, out_dir / "slide", batch_size=32, workers=2)

writes ``clip_predictions.csv`` (one row per tile per model, the schema in README.md, p_
columns the union of the models' classes in taxonomy order; a tile that could not be read
has tile_status "unreadable" and no prediction), ``heatmaps/<model>/`` (one
PNG per class, ``rollup.png`` and ``argmax.png``; slides only), ``summary.json`` and
``summary.txt``; optionally records the run in a ReviewStore. Qt-free.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pvdesk.errors import PvdeskError
from pvdesk.export.atomic import atomic_write, make_folder, save_image
from pvdesk.export.csv import write_rows_csv
from pvdesk.heatmap import ARGMAX, ROLLUP, HeatmapGrid, figure
from pvdesk.inference import InferenceEngine, tile_source
from pvdesk.predict.summary import ModelTally, summary_text
from pvdesk.review.types import model_label
from pvdesk.taxonomy import CLASS_NAMES, GROUPS, group_of
from pvdesk.tiling import make_grid

CSV_NAME = "clip_predictions.csv"


@dataclass
class LoadedModel:
    bundle: object  # pvdesk.models.Bundle
    classifier: object  # pvdesk.models.TileClassifier

    @property
    def label(self) -> str:
        return model_label(self.bundle.name, self.bundle.version)

    @property
    def csv_model(self) -> str:
        """The CSV's model cell: the label, tagged " (UNTRAINED)" for an untrained bundle."""
        return model_label(self.bundle.name, self.bundle.version, bool(self.bundle.trained))


def union_classes(models) -> list[str]:
    """Every model's classes once, in taxonomy order (subtypes, then groups)."""
    present = {c for m in models for c in m.bundle.classes}
    return [c for c in (*CLASS_NAMES, *GROUPS) if c in present]


def safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "model"


def output_folder(out_dir: Path, path: Path, taken: set[str]) -> Path:
    """DIR/<stem>, made unique among the inputs of one run (a.svs and a.tif both given)."""
    stem = safe_name(path.stem if path.suffix else path.name)
    name, n = stem, 1
    while name in taken:
        n += 1
        name = f"{stem}-{n}"
    taken.add(name)
    return Path(out_dir) / name


def _rows(batch, models, source_path: str, mpp):
    for i, tile in enumerate(batch.tiles):
        if tile.index in batch.errors:  # counted, never silently left out
            for m in models:
                yield {"source": tile_source(tile, source_path), "tile_x": tile.x,
                       "tile_y": tile.y, "tile_w": tile.w, "tile_h": tile.h, "mpp": mpp,
                       "model": m.csv_model, "tile_status": "unreadable"}
            continue
        for m in models:
            probs = batch.probs[m.label][i]
            best = int(np.argmax(probs))
            row = {"source": tile_source(tile, source_path), "tile_x": tile.x, "tile_y": tile.y,
                   "tile_w": tile.w, "tile_h": tile.h, "mpp": mpp, "model": m.csv_model,
                   "predicted": m.bundle.classes[best],
                   "predicted_group": group_of(m.bundle.classes[best]),
                   "confidence": float(probs[best])}
            row.update({f"p_{c}": float(p) for c, p in zip(m.bundle.classes, probs, strict=True)})
            yield row


def predict_source(source, models: list[LoadedModel], out: Path, *, tile_um: float | None = None,
                   overlap: float = 0.0, min_tissue: float = 0.25, batch_size: int = 32,
                   workers: int = 2, store=None, device: str = "cpu", heatmap_size: int = 1200,
                   progress=None, grid_progress=None, cancel=None, regions=None,
                   embeddings: bool = False) -> dict:
    """Classify every tissue tile of ``source``; write the outputs into folder ``out``.

    ``tile_um`` defaults to the first model's field of view. ``progress`` gets the engine's
    Progress objects. ``regions`` (pvdesk.regions) limits the run to the tiles they cover.
    ``embeddings``: also store each tile's image embedding (float16) in ``store`` (CLIP
    kinds), for similar-tile and text search.
    Returns the summary dict (also written as summary.json).
    """
    if not models:
        raise ValueError("no model given")
    tile_um = tile_um or models[0].bundle.tile_um
    out_size = max(m.bundle.input_size for m in models)
    grid = make_grid(source, tile_um, out_size, overlap, min_tissue, progress=grid_progress)
    if regions:
        from pvdesk.regions import limit_grid

        grid = limit_grid(grid, regions)
    out = make_folder(out)
    source_path = str(Path(source.path).resolve())
    mpp = source.mpp
    is_slide = grid.stride is not None
    heatmaps = {m.label: HeatmapGrid(grid, m.bundle.classes, size=source.dimensions)
                for m in models} if is_slide else {}
    tallies = {m.label: ModelTally(m.label, m.bundle.classes, m.bundle.trained) for m in models}
    recorder = _recorder(store, source, models, grid, device, batch_size,
                         embeddings) if store else None
    runs = dict(recorder.runs) if recorder else {}
    errors: list[str] = []
    engine = InferenceEngine(source, grid, {m.label: m.classifier for m in models},
                             batch_size=batch_size, workers=workers, progress=progress,
                             cancel_event=cancel, embeddings=embeddings and store is not None)
    started = time.perf_counter()

    def rows():
        for batch in engine.run():
            errors.extend(f"tile {i}: {e}" for i, e in batch.errors.items())
            for m in models:
                tallies[m.label].add(batch.probs[m.label])
                if m.label in heatmaps:
                    heatmaps[m.label].add(batch.tiles, batch.probs[m.label])
            if recorder:
                recorder.add(batch)
            yield from _rows(batch, models, source_path, mpp)
        if engine.cancelled:  # raised inside the atomic write: no partial CSV is left
            raise PvdeskError(f"{source.path}: prediction cancelled after {engine.done} tiles")

    n_rows = write_rows_csv(out / CSV_NAME, union_classes(models), rows())
    seconds = time.perf_counter() - started
    if heatmaps:
        _write_heatmaps(source, models, heatmaps, out / "heatmaps", heatmap_size)
    mask = grid.mask
    info = {
        "source": source_path, "grid": grid.describe(), "grid_warnings": list(grid.warnings),
        "tiles": len(grid), "tiles_unreadable": len(errors), "unreadable_examples": errors[:5],
        "unreadable_area": None if mask is None or mask.unknown is None else {
            "fraction": mask.unknown_fraction_total, "mm2": mask.unknown_mm2,
            "tiles_overlapping": grid.unknown_tiles, "note": mask.describe_unknown()},
        "csv_rows": n_rows, "seconds": seconds,
        "tiles_per_s": len(grid) / seconds if seconds > 0 else 0.0,
        "device": device, "models": [tallies[m.label].to_dict() for m in models],
        "store_runs": runs,
    }
    with atomic_write(out / "summary.json") as fh:
        json.dump(info, fh, indent=2)
    with atomic_write(out / "summary.txt") as fh:
        fh.write(summary_text(info))
    return info


def _recorder(store, source, models, grid, device, batch_size, embeddings=False):
    """Record the slide and one store run per model (the app records its runs the same way)."""
    from pvdesk.review.project import RunRecorder

    rec = RunRecorder(store, source)
    settings = {"batch": batch_size, **({"embedding_dtype": "float16"} if embeddings else {})}
    rec.begin({m.label: m.bundle for m in models}, grid, device, settings,
              {m.label: {"precision": getattr(m.classifier, "effective_precision", None)}
               for m in models})
    return rec


def _write_heatmaps(source, models, heatmaps, folder: Path, size: int) -> None:
    thumb = source.thumbnail(size)
    for m in models:
        hm = heatmaps[m.label]
        sub = make_folder(folder / safe_name(m.label))
        for layer in (*m.bundle.classes, ROLLUP, ARGMAX):
            img = figure(thumb, hm, layer, m.bundle.label, trained=m.bundle.trained)
            save_image(img, sub / f"{layer}.png", "PNG")  # atomic: never half a PNG
