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

from dataclasses import dataclass
from pathlib import Path

from pvdesk.predict.compute import GridParams, SlidePlan, compute_tiles, plan_slide
from pvdesk.predict.writer import CSV_NAME, SlideWriter, safe_name, union_classes
from pvdesk.review.types import model_label

__all__ = ["CSV_NAME", "GridParams", "LoadedModel", "SlidePlan", "SlideWriter", "compute_tiles",
           "output_folder", "plan_slide", "predict_source", "safe_name", "union_classes"]


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

    @property
    def csv_sha(self) -> str:
        """The CSV's model_sha256 cell: 16 hex characters of the weights sha256 its manifest
        records ("" for a bundle without a weights file of its own)."""
        from pvdesk.review.types import MODEL_SHA_CHARS

        return (getattr(self.bundle, "weights_sha256", "") or "")[:MODEL_SHA_CHARS]


def output_folder(out_dir: Path, path: Path, taken: set[str]) -> Path:
    """DIR/<stem>, made unique among the inputs of one run (a.svs and a.tif both given)."""
    stem = safe_name(path.stem if path.suffix else path.name)
    name, n = stem, 1
    while name in taken:
        n += 1
        name = f"{stem}-{n}"
    taken.add(name)
    return Path(out_dir) / name


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
    params = GridParams(tile_um=tile_um, overlap=overlap, min_tissue=min_tissue,
                        heatmap_size=heatmap_size)
    plan = plan_slide(source, [m.bundle for m in models], params, regions,
                      grid_progress)  # ValueError when no model is given
    embeddings = embeddings and store is not None
    writer = SlideWriter(out, plan, models, store=store, device=device, batch_size=batch_size,
                         embeddings=embeddings, heatmap_size=heatmap_size)
    return writer.write(compute_tiles(
        source, plan.grid, models, batch_size=batch_size, workers=workers,
        embeddings=embeddings, progress=progress, cancel=cancel))
