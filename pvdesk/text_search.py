"""Text search over a slide: a phrase through the CLIP bundle's text tower, cosine with the
run's stored image embeddings, a heatmap PNG, and the best tiles. No re-run of the model.

A phrase is encoded exactly as a zero-shot class is (pvdesk.models.text.class_embeddings):
each prompt text through open_clip's tokenizer and ``encode_text``, L2-normalised, averaged
over the prompt texts and renormalised (one text: its normalised embedding). Several
phrases are a small ad-hoc zero-shot class set: per tile, softmax over the phrases of the
model's logit scale times the cosines.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pvdesk.errors import ModelError, PvdeskError


@dataclass
class TextEncoder:
    model: object  # open_clip CLIP with its text tower
    tokenizer_name: str
    logit_scale: float
    bundle: object

    def embed(self, phrases, templates=("{}",)) -> np.ndarray:
        """(P, D) float32, rows L2-normalised: each phrase through every template."""
        from pvdesk.models.text import class_embeddings

        texts = {p: [t.replace("{}", p) for t in templates] for p in phrases}
        return class_embeddings(self.model, self.tokenizer_name, texts).numpy()


def load_text_encoder(bundle, weights=None) -> TextEncoder:
    """The bundle's open_clip model with its text tower (built as the zero-shot path builds
    it: same weights plan, same seed for random demo weights, the bundle's backbone tensors)."""
    if not bundle.has_embeddings:
        raise ModelError(f"{bundle.name}: kind '{bundle.kind}' has no text tower (text search "
                         "needs a CLIP bundle)")
    from pvdesk.models.clip import _open_clip_model, _weights, bundle_tensors
    from pvdesk.models.tensors import load_into
    from pvdesk.models.weights import plan

    p = plan(bundle, weights)
    state, origin = _weights(bundle, p)
    model, tok_name = _open_clip_model(bundle, p, state, origin, need_text=True)
    backbone = {k[len("backbone."):]: v for k, v in bundle_tensors(bundle).items()
                if k.startswith("backbone.")}
    if backbone:
        own = model.state_dict()
        load_into(model, {k: v for k, v in backbone.items() if k in own}, bundle.where,
                  "CLIP backbone", strict=False)
    model.eval()
    scale = float(model.logit_scale.detach().exp()) if hasattr(model, "logit_scale") else 100.0
    return TextEncoder(model, tok_name, scale, bundle)


@dataclass
class QueryResult:
    phrases: list[str]
    tile_ids: np.ndarray  # (N,)
    cosine: np.ndarray  # (N, P)
    records: dict  # tile id -> TileRecord

    def probabilities(self, logit_scale: float) -> np.ndarray:
        """(N, P): the phrases as an ad-hoc zero-shot class set."""
        z = self.cosine * logit_scale
        z = np.exp(z - z.max(axis=1, keepdims=True))
        return z / z.sum(axis=1, keepdims=True)

    def best(self, column: int = 0, n: int = 10) -> list[tuple]:
        """[(TileRecord, cosine)] best first for phrase ``column``."""
        order = np.lexsort((self.tile_ids, -self.cosine[:, column]))[:n]
        return [(self.records[int(self.tile_ids[i])], float(self.cosine[i, column]))
                for i in order]


def query_run(store, run_id: int, vectors: np.ndarray, phrases, slide_id=None) -> QueryResult:
    from pvdesk.app.similar import SimilarTiles
    from pvdesk.commands.similar import records_by_id

    svc = SimilarTiles(store)
    cols = []
    m = None
    for v in np.atleast_2d(vectors):
        m, s = svc.scores(run_id, v, slide_id)
        cols.append(s)
    recs = records_by_id(store, run_id, m.tile_ids)
    return QueryResult(list(phrases), m.tile_ids, np.stack(cols, axis=1), recs)


def value_cells(result: QueryResult, column: int, stride: int, size: tuple[int, int],
                values: np.ndarray | None = None) -> np.ndarray:
    """A (rows, cols) float array at the grid's stride: each tile's value (NaN elsewhere)."""
    w, h = size
    rows, cols = max(1, -(-h // stride)), max(1, -(-w // stride))
    out = np.full((rows, cols), np.nan, dtype=np.float64)
    vals = result.cosine[:, column] if values is None else values
    for tid, v in zip(result.tile_ids, vals, strict=True):
        r = result.records[int(tid)]
        if r.tile_x is None:
            continue
        r0, c0 = int(r.tile_y) // stride, int(r.tile_x) // stride
        r1 = max(r0 + 1, -(-(int(r.tile_y) + int(r.tile_h)) // stride))
        c1 = max(c0 + 1, -(-(int(r.tile_x) + int(r.tile_w)) // stride))
        out[r0:min(r1, rows), c0:min(c1, cols)] = v
    return out


def render_png(path, result: QueryResult, column: int, *, stride: int, size, background=None,
               metadata: dict, colormap: str = "viridis", opacity: float = 0.7) -> Path:
    """The cosine map of phrase ``column`` over ``background`` (the slide's thumbnail, or
    grey), cosines stretched from their minimum to their maximum, with a caption strip and
    the bundle, phrase, run and date in the PNG's text chunks."""
    from PIL import Image, ImageDraw, PngImagePlugin

    from pvdesk.colormaps import colormap_layer
    from pvdesk.export.atomic import atomic_path

    cells = value_cells(result, column, stride, size)
    lo, hi = np.nanmin(cells), np.nanmax(cells)
    norm = (cells - lo) / (hi - lo) if hi > lo else np.where(np.isfinite(cells), 1.0, np.nan)
    if background is None:
        scale = 1024 / max(size)
        background = Image.new("RGB", (max(1, round(size[0] * scale)),
                                       max(1, round(size[1] * scale))), (235, 235, 235))
    bg = background.convert("RGBA")
    layer = colormap_layer(norm, colormap, opacity).resize(bg.size, Image.Resampling.NEAREST)
    img = Image.alpha_composite(bg, layer).convert("RGB")
    strip = 40
    out = Image.new("RGB", (img.width, img.height + strip), "white")
    out.paste(img, (0, 0))
    d = ImageDraw.Draw(out)
    phrase = result.phrases[column]
    untrained = "  UNTRAINED (random weights): meaningless" \
        if metadata.get("trained") == "False" else ""
    d.text((6, img.height + 4), f"\"{phrase}\" - {metadata.get('bundle', '')}{untrained}",
           fill="black")
    d.text((6, img.height + 20), f"cosine {lo:.3f} (faint) .. {hi:.3f} (bright), "
           f"{len(result.tile_ids)} tiles", fill="black")
    info = PngImagePlugin.PngInfo()
    for k, v in {**metadata, "phrase": phrase, "cosine_min": f"{lo:.6f}",
                 "cosine_max": f"{hi:.6f}"}.items():
        info.add_itxt(f"pvdesk:{k}", str(v))
    path = Path(path)
    with atomic_path(path) as tmp:
        out.save(tmp, format="PNG", pnginfo=info)
    return path


def slide_background(store, slide_id: str, max_size: int = 1024):
    """(thumbnail or None, level-0 size or None) of a stored slide, when its file opens."""
    from pvdesk.slides import open_source

    rows = [s for s in store.slides() if s["slide_id"] == slide_id]
    if not rows:
        return None, None
    try:
        with open_source(rows[0]["path"]) as src:
            return src.thumbnail(max_size), tuple(int(v) for v in src.dimensions)
    except (PvdeskError, OSError):
        return None, None
