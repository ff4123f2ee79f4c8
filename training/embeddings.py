"""Frozen CLIP image embeddings of a dataset, computed once and cached on disk.

They are computed with pvdesk's InferenceEngine (reader threads, batching) through the
backbone bundle's TileClassifier, so they are exactly what the exported head sees in
``pvdesk predict``. The cache lives in ``<cache_dir>/training-embeddings/<backbone key>/``
as safetensors shards (one per run that computed something new), keyed by

- the backbone: its manifest ``backbone`` field, input size, normalisation, the identity of
  its weights (file size and mtime, or the seed for random weights) and the precision;
- the image content: pvdesk's ``content_id`` of the file (size, first and last MiB), plus
  the region for slide tiles.

A broken shard is ignored (and recomputed), never trusted blindly.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from pathlib import Path

import numpy as np

from pvdesk import heavy
from pvdesk.paths import cache_dir
from pvdesk.slides.base import content_id
from training.data.samples import Sample
from training.data.source import DatasetSource
from training.errors import DataError

CACHE_NAME = "training-embeddings"


def backbone_key(clf) -> str:
    """A key for the embeddings a classifier's image tower computes."""
    from pvdesk.models.weights import plan

    b = clf.bundle
    try:
        p = plan(b)
        if p.how == "random":
            ident = f"random:{b.backbone.get('seed', 0)}"
        elif p.path is not None and Path(p.path).is_file():
            st = Path(p.path).stat()
            ident = f"{p.how}:{Path(p.path).resolve()}:{st.st_size}:{st.st_mtime_ns}"
            if p.how == "bundle":  # the weights file also holds the head: key by content
                ident = f"bundle:{content_id(Path(p.path))}"
        else:
            ident = p.how
    except Exception:  # noqa: BLE001 - an unusual backbone is keyed by its description only
        ident = "?"
    desc = {"backbone": b.backbone, "input_size": b.input_size, "mean": list(b.mean),
            "std": list(b.std), "weights": ident, "precision": clf.effective_precision,
            "version": 1}
    return hashlib.sha256(json.dumps(desc, sort_keys=True).encode()).hexdigest()[:32]


def sample_key(s: Sample, _ids: dict[str, str] | None = None) -> str:
    ids = _ids if _ids is not None else {}
    if s.path not in ids:
        ids[s.path] = content_id(Path(s.path))
    base = ids[s.path]
    if s.index is not None:
        return f"{base}#{s.index}"
    return base if s.region is None else base + "@" + ",".join(str(v) for v in s.region)


class EmbeddingCache:
    def __init__(self, key: str, root: Path | None = None):
        self.folder = (root or cache_dir() / CACHE_NAME) / key
        self._data: dict[str, np.ndarray] | None = None

    def load(self) -> dict[str, np.ndarray]:
        if self._data is None:
            from safetensors.numpy import load_file

            self._data = {}
            for f in sorted(self.folder.glob("shard-*.safetensors")):
                try:
                    self._data.update(load_file(str(f)))
                except Exception:  # noqa: BLE001 - a damaged shard is recomputed
                    continue
        return self._data

    def add(self, new: dict[str, np.ndarray]) -> None:
        if not new:
            return
        from safetensors.numpy import save_file

        self.load().update(new)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            name = f"shard-{uuid.uuid4().hex[:12]}.safetensors"
            tmp = self.folder / f".{name}.tmp"
            save_file({k: np.ascontiguousarray(v, dtype=np.float32) for k, v in new.items()},
                      str(tmp))
            os.replace(tmp, self.folder / name)
        except OSError:
            pass  # caching is an optimisation; the run goes on


def compute_embeddings(clf, samples: list[Sample], reporter=None, batch_size: int = 32,
                       workers: int = 2, cache: bool = True) -> np.ndarray:
    """(N, D) float32 normalised embeddings of ``samples`` in order (cached when possible)."""

    ids: dict[str, str] = {}
    keys = [sample_key(s, ids) for s in samples]
    store = EmbeddingCache(backbone_key(clf)) if cache else None
    have = store.load() if store else {}
    todo, seen = [], set()
    for i, k in enumerate(keys):
        if k not in have and k not in seen:
            seen.add(k)
            todo.append(i)
    if reporter:
        reporter.stage("embeddings", len(todo))
        if len(todo) < len(samples):
            reporter.info(f"embeddings: {len(samples) - len(todo)} of {len(samples)} from the "
                          "cache")
    fresh: dict[str, np.ndarray] = {}
    if todo:
        for batch in _engine_batches(clf, [samples[i] for i in todo], reporter, batch_size,
                                     workers, embeddings=True):
            emb = batch.embeddings["m"]
            if emb is None:
                raise DataError(f"{clf.bundle.name}: gives no image embeddings")
            for t, row in zip(batch.tiles, emb, strict=True):
                fresh[keys[todo[t.index]]] = row.astype(np.float32)
        if store:
            store.add(fresh)
    table = {**have, **fresh}
    return np.stack([table[k] for k in keys]).astype(np.float32)


def embedding_classifier(base, device: str, precision: str):
    """A TileClassifier whose embeddings are the base bundle's image tower's.

    A zero-shot base would compute its text embeddings on load, which the heads do not need:
    its backbone is loaded instead through a throw-away clip-linear bundle with the same
    ``backbone`` field (the same code path, and the same cache key, as the trained head's).
    """
    import tempfile

    torch = heavy.torch()

    from pvdesk.models import Bundle, write_bundle
    from pvdesk.models.weights import plan
    from training.export import resolved_backbone

    bb = resolved_backbone(base)
    stamp = os.stat(bb["path"]).st_mtime_ns if os.path.isfile(bb.get("path") or "") else None
    timm_base = bb.get("source") == "timm" and base.path is None  # an encoder, no head
    memo = json.dumps([bb, stamp, base.input_size, list(base.mean), list(base.std), device,
                       precision], sort_keys=True)
    if (base.kind == "clip-zeroshot" or timm_base) and _PROBE and _PROBE[0] == memo:
        return _PROBE[1]
    if not timm_base and (base.kind != "clip-zeroshot" or bb.get("local_dir")
                          or bb.get("source") not in ("open_clip", "file")
                          or plan(base).how == "bundle"):
        return base.load(device, precision)
    if timm_base:
        from pvdesk.models.timm_tower import feature_dim

        dim = feature_dim(bb)
    else:
        dim = (heavy.open_clip().get_model_config(bb["model"]) or {}).get("embed_dim")
    if not dim:
        return base.load(device, precision)
    manifest = {"name": base.name, "kind": "clip-linear",  # same name: same weights lookup
                "classes": ["benign", "malignant"], "backbone": bb,
                "input_size": base.input_size, "mean": list(base.mean), "std": list(base.std),
                "tile_um": base.tile_um, "trained": False}
    with tempfile.TemporaryDirectory(prefix="pvdesk-probe-") as tmp:
        write_bundle(tmp, manifest, {"head.weight": torch.zeros(2, dim),
                                     "head.bias": torch.zeros(2)})
        clf = Bundle.from_folder(tmp).load(device, precision)
    _PROBE[:] = [memo, clf]  # one per process: several runs in one process (tests) share it
    return clf


_PROBE: list = []


def bundle_probs(clf, samples: list[Sample], reporter=None, batch_size: int = 32,
                 workers: int = 2) -> np.ndarray:
    """(N, C) probabilities of a loaded bundle in its class order.

    CLIP kinds go through the (cached) embeddings and the head; resnet50 through the engine.
    """
    torch = heavy.torch()


    if clf.bundle.has_embeddings:
        emb = compute_embeddings(clf, samples, reporter, batch_size, workers)
        return clf.head_logits(torch.from_numpy(emb)).softmax(1).numpy().astype(np.float64)
    out = np.zeros((len(samples), len(clf.bundle.classes)))
    if reporter:
        reporter.stage("evaluate", len(samples))
    for batch in _engine_batches(clf, samples, reporter, batch_size, workers, embeddings=False):
        out[batch.indices] = batch.probs["m"]
    return out


def _engine_batches(clf, samples: list[Sample], reporter, batch_size: int, workers: int,
                    embeddings: bool):
    """pvdesk's inference engine over ``samples`` (key "m"), reporting steps; an image that
    cannot be read stops the run with a DataError naming it."""
    from pvdesk.inference import InferenceEngine

    src = DatasetSource(samples)

    def progress(p):
        if reporter and p.done:
            reporter.step(p.done, p.total, eta_s=p.eta_s)

    engine = InferenceEngine(src, src.grid(clf.bundle.input_size), {"m": clf},
                             batch_size=batch_size, workers=workers, progress=progress,
                             embeddings=embeddings)
    try:
        for batch in engine.run():
            if batch.errors:
                idx, msg = next(iter(batch.errors.items()))
                raise DataError(f"cannot read {samples[idx].name}: {msg}")
            yield batch
    finally:
        src.close()
