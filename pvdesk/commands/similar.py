"""`pvdesk similar STORE --run R --tile X,Y [--k K]`: the tiles most like one tile.

Exact cosine search over the run's stored image embeddings (pvdesk.app.similar); the run
must have been recorded with embeddings (`predict --embeddings`, or the Run dialog's
"Keep embeddings").
"""

from __future__ import annotations

import argparse
import json

from pvdesk.commands.common import MAX_INT64, integer, run_id_value
from pvdesk.errors import PvdeskError


def tile_xy(text: str) -> tuple[int, int]:
    try:
        if len(text) > 45:
            raise ValueError(text)
        x, y = (int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected X,Y in level-0 pixels, got "
                                         f"{text[:45]!r}") from None
    if min(x, y) < 0 or max(x, y) > MAX_INT64:
        raise argparse.ArgumentTypeError(f"tile position out of range: {text!r}")
    return (x, y)


def register(sub) -> None:
    p = sub.add_parser(
        "similar", help="list the tiles of a run most like a given tile (stored embeddings)",
        description="Exact cosine search over the image embeddings a run stored "
        "(predict --embeddings). Prints rank, tile, cosine similarity, prediction and review "
        "status.")
    p.add_argument("store", help="review store file (.pvdb)")
    p.add_argument("--run", type=run_id_value, required=True, help="model run id")
    p.add_argument("--tile", type=tile_xy, required=True, metavar="X,Y",
                   help="the query tile's top-left corner in level-0 pixels")
    p.add_argument("--slide", default=None, help="slide id, when the run covers several")
    p.add_argument("--k", type=integer(1, 100000), default=24,
                   help="how many tiles (default %(default)s)")
    p.add_argument("--project", action="store_true",
                   help="search every slide of the store (the runs of the same bundle), not "
                   "only the query tile's slide")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(func=run)


def find_run_tile(store, run_id: int, x: int, y: int, slide_id: str | None = None):
    """The TileRecord of the run's tile whose top-left corner is (x, y) (or that contains
    the point, when none starts there)."""
    from pvdesk.review import queue as _queue

    where, args = _queue.where(run_id=run_id, slide_id=slide_id)
    for clause, extra in ((" AND t.tile_x=? AND t.tile_y=?", [x, y]),
                          (" AND t.tile_x<=? AND t.tile_y<=? AND t.tile_x+t.tile_w>? "
                           "AND t.tile_y+t.tile_h>?", [x, y, x, y])):
        with store._lock:
            sql = _queue.select(store.reviewer) + where + clause
            r = store.con.execute(sql + " ORDER BY t.tile_id LIMIT 1",
                                  list(args) + extra).fetchone()
        if r is not None:
            return _queue.record(r, store.run(r[8]))
    raise PvdeskError(f"{store.path}: run {run_id} has no tile at {x},{y}")


def records_by_id(store, run_id: int, tile_ids) -> dict:
    from pvdesk.review import queue as _queue

    ids = [int(t) for t in tile_ids]
    out = {}
    for i in range(0, len(ids), 500):
        part = ids[i:i + 500]
        where, args = _queue.where(run_id=run_id)
        sql = (_queue.select(store.reviewer) + where
               + f" AND p.tile_id IN ({','.join('?' * len(part))})")
        with store._lock:
            rows = store.con.execute(sql, list(args) + part).fetchall()
        for r in rows:
            out[r[0]] = _queue.record(r, store.run(r[8]))
    return out


def run(args) -> int:
    from pvdesk.app.similar import SimilarTiles
    from pvdesk.review.store import ReviewStore

    with ReviewStore(args.store, readonly=True) as store:
        store.run(args.run)  # a clear error for an unknown run
        query = find_run_tile(store, args.run, *args.tile, slide_id=args.slide)
        svc = SimilarTiles(store)
        if args.project:
            found = svc.similar_in_project(args.run, [query.tile_id], args.k)
        else:
            found = [n.__class__(n.tile_id, n.score, args.run) for n in svc.similar(
                args.run, [query.tile_id], args.k, slide_id=query.slide_id)]
        recs = {}
        for rid in {n.run_id for n in found}:
            recs.update({(rid, t): r for t, r in records_by_id(
                store, rid, [n.tile_id for n in found if n.run_id == rid]).items()})
    rows = []
    for rank, n in enumerate(found, 1):
        r = recs[(n.run_id, n.tile_id)]
        rows.append({"rank": rank, "tile_id": n.tile_id, "run": n.run_id, "slide_id": r.slide_id,
                     "tile_x": r.tile_x, "tile_y": r.tile_y,
                     "tile_w": r.tile_w, "tile_h": r.tile_h, "cosine": round(n.score, 6),
                     "predicted": r.predicted, "confidence": round(r.confidence, 6),
                     "review_status": r.status, "review_label": r.label})
    if args.json:
        print(json.dumps({"store": str(args.store), "run": args.run,
                          "query": {"tile_id": query.tile_id, "tile_x": query.tile_x,
                                    "tile_y": query.tile_y},
                          "similar": rows}, indent=2))
        return 0
    print(f"tiles most like {query.tile_x},{query.tile_y} (run {args.run}, "
          f"{query.model}), cosine similarity of stored embeddings:")
    for row in rows:
        label = f" -> {row['review_label']}" if row["review_label"] else ""
        where = f"{row['slide_id']} " if args.project else ""
        print(f"{row['rank']:3d}  {where}{row['tile_x']},{row['tile_y']}  cos {row['cosine']:.4f}  "
              f"{row['predicted']} ({row['confidence']:.2f})  {row['review_status']}{label}")
    return 0
