"""Similar tiles: exact cosine search over a run's stored image embeddings (numpy, no Qt).

A run recorded with embeddings (``predict --embeddings``, or the Run dialog's "Keep
embeddings") holds one float16 (older runs: float32) vector per tile in the review store.
:class:`SimilarTiles` reads a run's vectors once into an L2-normalised float32 matrix
(cached per run and slide; re-read when the run has gained tiles since), and answers
"the k tiles nearest to these" with one matrix-vector product and a partial sort: exact,
and fast enough up to a few hundred thousand tiles (tests/benchmarks/bench_similar.py).

Several query tiles are one query: the mean of their unit vectors (renormalised); the
query tiles themselves are never among the answers.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from pvdesk.errors import PvdeskError

DEFAULT_K = 24


class NoEmbeddings(PvdeskError):
    """The run holds no image embeddings (run it with embeddings kept, CLIP kinds)."""


@dataclass(frozen=True)
class Neighbour:
    tile_id: int
    score: float  # cosine similarity, -1 .. 1
    run_id: int | None = None  # set by project-wide searches


@dataclass
class EmbeddingMatrix:
    run_id: int
    slide_id: str | None
    tile_ids: np.ndarray  # (N,) int64, ascending
    unit: np.ndarray  # (N, D) float32, rows L2-normalised (zero rows stay zero)

    def __len__(self) -> int:
        return len(self.tile_ids)

    def rows_of(self, tile_ids) -> np.ndarray:
        """Row indices of ``tile_ids`` (those without an embedding left out)."""
        ids = np.asarray(list(tile_ids), dtype=np.int64)
        pos = np.searchsorted(self.tile_ids, ids)
        pos = np.clip(pos, 0, max(len(self.tile_ids) - 1, 0))
        ok = (len(self.tile_ids) > 0) & (self.tile_ids[pos] == ids) if len(ids) else \
            np.zeros(0, bool)
        return pos[ok]


def normalise_rows(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float32)
    norm = np.linalg.norm(m, axis=1, keepdims=True)
    return np.divide(m, norm, out=np.zeros_like(m), where=norm > 0)


def _where(run_id: int, slide_id: str | None) -> tuple[str, list]:
    sql = " FROM predictions p JOIN tiles t USING(tile_id) WHERE p.run_id=? " \
          "AND p.embedding IS NOT NULL"
    args: list = [int(run_id)]
    if slide_id is not None:
        sql += " AND t.slide_id=?"
        args.append(slide_id)
    return sql, args


def run_size(store, run_id: int) -> int:
    """The run's prediction rows (an index-only count): the cache's freshness key."""
    with store._lock:
        return int(store.con.execute("SELECT count(*) FROM predictions WHERE run_id=?",
                                     (int(run_id),)).fetchone()[0])


def load_embeddings(store, run_id: int, slide_id: str | None = None) -> EmbeddingMatrix:
    """The run's embeddings (one slide's, or all) as an :class:`EmbeddingMatrix`."""
    from pvdesk.review.store import embedding_code

    run = store.run(run_id)
    dtype = "<f2" if embedding_code(run) == "e" else "<f4"
    sql, args = _where(run_id, slide_id)
    with store._lock:
        rows = store.con.execute("SELECT p.tile_id, p.embedding" + sql + " ORDER BY p.tile_id",
                                 args).fetchall()
    if not rows:
        raise NoEmbeddings(f"{store.path}: run {run_id} ({run.bundle_name}) holds no tile "
                           "embeddings; run the model with embeddings kept (predict "
                           "--embeddings, or Run model ▸ Keep embeddings; CLIP models)")
    width = len(rows[0][1])
    if any(len(r[1]) != width for r in rows):
        raise PvdeskError(f"{store.path}: run {run_id}: embeddings of different widths")
    ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    flat = np.frombuffer(b"".join(r[1] for r in rows), dtype=dtype)
    m = flat.reshape(len(rows), -1)
    return EmbeddingMatrix(int(run_id), slide_id, ids, normalise_rows(m))


def query_vector(matrix: EmbeddingMatrix, tile_ids) -> np.ndarray:
    rows = matrix.rows_of(tile_ids)
    if not len(rows):
        raise NoEmbeddings(f"run {matrix.run_id}: no embedding stored for tile(s) "
                           f"{', '.join(str(t) for t in list(tile_ids)[:5])}")
    q = matrix.unit[rows].mean(axis=0)
    n = float(np.linalg.norm(q))
    return q / n if n > 0 else q


def nearest(matrix: EmbeddingMatrix, query: np.ndarray, k: int = DEFAULT_K,
            exclude=()) -> list[Neighbour]:
    """The ``k`` rows most cosine-similar to the unit vector ``query``, best first
    (ties by tile id), leaving out the tile ids in ``exclude``."""
    scores = matrix.unit @ np.asarray(query, dtype=np.float32)
    skip = matrix.rows_of(exclude)
    if len(skip):
        scores[skip] = -np.inf
    n = len(scores) - len(skip)
    k = max(0, min(int(k), n))
    if k == 0:
        return []
    top = np.argpartition(-scores, k - 1)[:k] if k < len(scores) else np.arange(len(scores))
    top = top[np.lexsort((matrix.tile_ids[top], -scores[top]))][:k]
    return [Neighbour(int(matrix.tile_ids[i]), float(scores[i])) for i in top]


class SimilarTiles:
    """Similar-tile search over a store; the matrix of each (run, slide) is read once and
    kept until the run gains tiles. Thread-safe; call it off the GUI thread."""

    def __init__(self, store):
        self.store = store
        self._cache: dict[tuple, tuple[int, EmbeddingMatrix]] = {}
        self._lock = threading.Lock()

    def matrix(self, run_id: int, slide_id: str | None = None) -> EmbeddingMatrix:
        key = (int(run_id), slide_id)
        with self._lock:
            size = run_size(self.store, run_id)
            hit = self._cache.get(key)
            if hit is not None and hit[0] == size:
                return hit[1]
            m = load_embeddings(self.store, run_id, slide_id)
            self._cache[key] = (size, m)
            return m

    def similar(self, run_id: int, tile_ids, k: int = DEFAULT_K,
                slide_id: str | None = None) -> list[Neighbour]:
        """The ``k`` tiles of the run most like ``tile_ids`` (one or several), best first."""
        tile_ids = [int(t) for t in tile_ids]
        m = self.matrix(run_id, slide_id)
        return nearest(m, query_vector(m, tile_ids), k, exclude=tile_ids)

    def project_runs(self, run_id: int) -> list[int]:
        """The store's runs of the same bundle (name and manifest) as ``run_id`` that hold
        embeddings: one per slide in a review project. ``run_id`` first."""
        run = self.store.run(run_id)
        same = [r.run_id for r in self.store.runs() if r.bundle_name == run.bundle_name
                and r.manifest_hash == run.manifest_hash and r.run_id != run.run_id]
        with self.store._lock:
            have = {r[0] for r in self.store.con.execute(
                "SELECT DISTINCT run_id FROM predictions WHERE embedding IS NOT NULL")}
        return [int(run_id)] + [r for r in same if r in have]

    def similar_in_project(self, run_id: int, tile_ids, k: int = DEFAULT_K) -> list[Neighbour]:
        """:meth:`similar` over every run of the same bundle in the store (all the project's
        slides), best first; a tile found in several runs counts once (its best score)."""
        tile_ids = [int(t) for t in tile_ids]
        home = self.matrix(run_id)
        q = query_vector(home, tile_ids)
        best: dict[int, Neighbour] = {}
        for rid in self.project_runs(run_id):
            m = home if rid == run_id else self.matrix(rid)
            if m.unit.shape[1] != home.unit.shape[1]:
                continue
            for n in nearest(m, q, k, exclude=tile_ids):
                if n.tile_id not in best or n.score > best[n.tile_id].score:
                    best[n.tile_id] = Neighbour(n.tile_id, n.score, rid)
        return sorted(best.values(), key=lambda n: (-n.score, n.tile_id))[:k]

    def scores(self, run_id: int, vector, slide_id: str | None = None):
        """(matrix, cosine of every tile with ``vector``): for text search."""
        m = self.matrix(run_id, slide_id)
        v = np.asarray(vector, dtype=np.float32).ravel()
        if v.shape[0] != m.unit.shape[1]:
            raise PvdeskError(f"run {run_id}: embeddings are {m.unit.shape[1]}-d, the query "
                              f"is {v.shape[0]}-d (another backbone?)")
        n = float(np.linalg.norm(v))
        return m, m.unit @ (v / n if n > 0 else v)
