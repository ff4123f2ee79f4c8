"""The writing half of a prediction: a slide's batches into its output folder and store.

    writer = SlideWriter(out, plan, models, store=store, device="cpu")
    info = writer.write(batches)      # BatchResults in tile order -> the summary dict

writes ``clip_predictions.csv``, ``heatmaps/<model>/`` (slides), ``summary.json`` and
``summary.txt`` (each to a temporary name, then renamed) and, with a store, one store run
per model. The batches may come from this process (pvdesk.predict.compute) or from a
cluster worker: the writer needs only the plan (pvdesk.predict.compute.SlidePlan), never the
slide. Qt-free.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from pvdesk.export.atomic import atomic_write, make_folder, save_image
from pvdesk.export.csv import write_rows_csv
from pvdesk.heatmap import HeatmapGrid, figure
from pvdesk.inference import tile_source
from pvdesk.predict.summary import ModelTally, summary_text
from pvdesk.taxonomy import taxonomy_of, union_order

CSV_NAME = "clip_predictions.csv"


def union_classes(models) -> list[str]:
    """Every model's classes once, in taxonomy order (BreakHis subtypes, then groups, then
    a custom taxonomy's classes in its order)."""
    return union_order(m.bundle.classes for m in models)


def safe_name(text: str) -> str:
    import re

    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "model"


def csv_rows(batch, models, source_path: str, mpp):
    groups = {m.label: [taxonomy_of(m.bundle).group_of(c) or "" for c in m.bundle.classes]
              for m in models}  # each class's group, looked up once per batch, not per row
    for i, tile in enumerate(batch.tiles):
        source = tile_source(tile, source_path)
        if tile.index in batch.errors:  # counted, never silently left out
            for m in models:
                yield {"source": source, "tile_x": tile.x,
                       "tile_y": tile.y, "tile_w": tile.w, "tile_h": tile.h, "mpp": mpp,
                       "model": m.csv_model, "model_sha256": m.csv_sha,
                       "tile_status": "unreadable"}
            continue
        for m in models:
            probs = batch.probs[m.label][i]
            best = int(np.argmax(probs))
            row = {"source": source, "tile_x": tile.x, "tile_y": tile.y,
                   "tile_w": tile.w, "tile_h": tile.h, "mpp": mpp, "model": m.csv_model,
                   "model_sha256": m.csv_sha, "predicted": m.bundle.classes[best],
                   "predicted_group": groups[m.label][best],
                   "confidence": float(probs[best])}
            row.update({f"p_{c}": float(p) for c, p in zip(m.bundle.classes, probs, strict=True)})
            yield row


class SlideWriter:
    """Tallies, heatmaps, store runs and CSV rows of one slide, fed its batches in order.

    ``store_settings``: extra settings recorded with each store run (the cohort's key)."""

    def __init__(self, out: Path, plan, models, *, store=None, device: str = "cpu",
                 batch_size: int = 32, embeddings: bool = False, heatmap_size: int = 1200,
                 store_settings: dict | None = None):
        self.out, self.plan, self.models = Path(out), plan, list(models)
        self.store, self.device, self.batch_size = store, device, batch_size
        self.embeddings, self.heatmap_size = embeddings, heatmap_size
        self.store_settings = dict(store_settings or {})

    def write(self, batches, elapsed=None) -> dict:
        """Consume ``batches`` (BatchResults in tile order); write every output; return the
        summary (also written as summary.json). An exception from ``batches`` leaves no CSV.
        ``elapsed()``: the seconds the computation took where it ran (default: the time
        the batches took to arrive here)."""
        plan, models = self.plan, self.models
        grid, meta = plan.grid, plan.meta
        out = make_folder(self.out)
        heatmaps = {m.label: HeatmapGrid(grid, m.bundle.classes, size=meta.dimensions,
                                         taxonomy=taxonomy_of(m.bundle))
                    for m in models} if meta.is_slide else {}
        tallies = {m.label: ModelTally(m.label, m.bundle.classes, m.bundle.trained,
                                       taxonomy_of(m.bundle)) for m in models}
        recorder = self._recorder() if self.store is not None else None
        runs = dict(recorder.runs) if recorder else {}
        errors: list[str] = []
        started = time.perf_counter()

        def rows():
            for batch in batches:
                errors.extend(f"tile {i}: {e}" for i, e in batch.errors.items())
                for m in models:
                    tallies[m.label].add(batch.probs[m.label])
                    if m.label in heatmaps:
                        heatmaps[m.label].add(batch.tiles, batch.probs[m.label])
                if recorder:
                    recorder.add(batch)
                yield from csv_rows(batch, models, meta.path, meta.mpp)

        n_rows = write_rows_csv(out / CSV_NAME, union_classes(models), rows())
        seconds = elapsed() if elapsed is not None else time.perf_counter() - started
        if heatmaps:
            self._write_heatmaps(heatmaps, out / "heatmaps")
        mask = grid.mask
        info = {
            "source": meta.path, "grid": grid.describe(), "grid_warnings": list(grid.warnings),
            "tiles": len(grid), "tiles_unreadable": len(errors),
            "unreadable_examples": errors[:5],
            "unreadable_area": None if mask is None or mask.unknown is None else {
                "fraction": mask.unknown_fraction_total, "mm2": mask.unknown_mm2,
                "tiles_overlapping": grid.unknown_tiles, "note": mask.describe_unknown()},
            "csv_rows": n_rows, "seconds": seconds,
            "tiles_per_s": len(grid) / seconds if seconds > 0 else 0.0,
            "device": self.device, "models": [tallies[m.label].to_dict() for m in models],
            "store_runs": runs,
        }
        with atomic_write(out / "summary.json") as fh:
            json.dump(info, fh, indent=2)
        with atomic_write(out / "summary.txt") as fh:
            fh.write(summary_text(info))
        return info

    def _recorder(self):
        """Record the slide and one store run per model (the app records its runs the same
        way)."""
        from pvdesk.review.project import RunRecorder

        rec = RunRecorder(self.store, self.plan.meta)
        settings = {"batch": self.batch_size, **self.store_settings,
                    **({"embedding_dtype": "float16"} if self.embeddings else {})}
        rec.begin({m.label: m.bundle for m in self.models}, self.plan.grid, self.device,
                  settings, {m.label: {"precision": getattr(m.classifier, "effective_precision",
                                                            None)} for m in self.models})
        return rec

    def _write_heatmaps(self, heatmaps, folder: Path) -> None:
        thumb = self.plan.thumbnail
        for m in self.models:
            hm = heatmaps[m.label]
            sub = make_folder(folder / safe_name(m.label))
            for layer in hm.layers:  # classes, the roll-up when there is one, arg-max
                img = figure(thumb, hm, layer, m.bundle.label, trained=m.bundle.trained)
                save_image(img, sub / f"{layer}.png", "PNG")  # atomic: never half a PNG
