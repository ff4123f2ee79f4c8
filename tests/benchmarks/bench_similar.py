"""Similar-tile search: ms per exact cosine query at 100k tiles (and the matrix read from a
store). Prints numbers; target: well under 100 ms per query on a laptop CPU.

    .venv/bin/python tests/benchmarks/bench_similar.py [--tiles 100000] [--dim 1024]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from pvdesk.app.similar import EmbeddingMatrix, SimilarTiles, nearest, normalise_rows, query_vector
from pvdesk.review.store import ReviewStore
from pvdesk.review.types import TilePrediction


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tiles", type=int, default=100_000)
    ap.add_argument("--dim", type=int, default=1024)  # CLIP RN50; ViT-L/14 is 768
    ap.add_argument("--queries", type=int, default=50)
    ap.add_argument("--store", action="store_true", help="also time reading from a store")
    a = ap.parse_args()
    rng = np.random.default_rng(0)
    v = rng.standard_normal((a.tiles, a.dim)).astype(np.float16)
    m = EmbeddingMatrix(1, None, np.arange(a.tiles, dtype=np.int64), normalise_rows(v))
    times = []
    for i in range(a.queries):
        t = time.perf_counter()
        nearest(m, query_vector(m, [i]), 24, exclude=[i])
        times.append(time.perf_counter() - t)
    print(f"{a.tiles} tiles x {a.dim}-d: exact top-24 query {np.median(times) * 1e3:.1f} ms "
          f"median, {max(times) * 1e3:.1f} ms max ({a.queries} queries); matrix "
          f"{m.unit.nbytes / 2**20:.0f} MiB float32 in memory, "
          f"{a.tiles * a.dim * 2 / 2**20:.0f} MiB float16 in the store")
    if a.store:
        with tempfile.TemporaryDirectory() as tmp:
            store = ReviewStore(Path(tmp) / "b.pvdb", reviewer="b")
            store.add_slide("s", "/s.svs", {})
            run = store.add_run("m", "1", "h", ["a", "b"], "cpu", {"embedding_dtype": "float16"})
            t = time.perf_counter()
            store.add_predictions(run, "s", (TilePrediction(
                "/s.svs", (i % 400) * 224, (i // 400) * 224, 224, 224, 0.5, [0.5, 0.5],
                embedding=v[i]) for i in range(a.tiles)))
            print(f"writing {a.tiles} tiles: {time.perf_counter() - t:.1f} s")
            svc = SimilarTiles(store)
            t = time.perf_counter()
            svc.matrix(run)
            print(f"first query's read of the run's embeddings: {time.perf_counter() - t:.2f} s")
            t = time.perf_counter()
            svc.similar(run, [5], 24)
            print(f"cached query incl. store count check: {(time.perf_counter() - t) * 1e3:.1f} ms")
            store.close()


if __name__ == "__main__":
    main()
