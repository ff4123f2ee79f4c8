"""ReviewStore: one SQLite file holding slides, model runs, tile predictions, reviewer
decisions and an append-only audit trail.

Every write is one transaction (BEGIN IMMEDIATE ... COMMIT) on a WAL database with
``synchronous=FULL``: when a method returns, its change is on disk and survives a crash or a
power cut. Reviewer actions live in :mod:`pvdesk.review.actions`, the queue in
:mod:`pvdesk.review.queue`; this module holds opening, slides, runs, predictions and reads.
A store may be used from several threads (calls are serialised by a lock) and by several
processes (SQLite locking); undo/redo stacks are per reviewer.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import re
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path

from pvdesk.errors import StoreError
from pvdesk.review import queue as _queue
from pvdesk.review import schema
from pvdesk.review.actions import ReviewActions
from pvdesk.review.blobs import to_blob
from pvdesk.review.history import ReviewHistory
from pvdesk.review.team import ReviewTeam
from pvdesk.review.types import (
    UNREVIEWED,
    Counts,
    RunInfo,
    TilePrediction,
    TileRecord,
    tile_key,
    uncertainty,
    utc_now,
)

# Slide property keys that may carry a name, a label or free text are never stored.
_IDENTIFYING_PARTS = ("description", "filename", "patient", "barcode", "comment", "macro",
                      "author", "user", "operator", "accession")
_IDENTIFYING_WORDS = {"name", "label", "date", "time", "title", "id", "uid"}


def _identifying(key: str) -> bool:
    k = str(key).lower()
    words = set(re.split(r"[^a-z0-9]+", k))
    return any(p in k for p in _IDENTIFYING_PARTS) or bool(words & _IDENTIFYING_WORDS)


def default_reviewer() -> str:
    """The login name, or ``$USER``/``$USERNAME``, or "reviewer"."""
    try:
        name = getpass.getuser()
    except Exception:  # no passwd entry (containers), no env vars
        name = os.environ.get("USER") or os.environ.get("USERNAME") or ""
    return name or "reviewer"


def embedding_code(run: RunInfo) -> str:
    """The blob code of a run's embeddings: "e" (float16) when the run was recorded with
    ``settings["embedding_dtype"] == "float16"`` (``predict --embeddings``, the window's
    run with embeddings), else "f" (float32, older runs)."""
    return "e" if (run.settings or {}).get("embedding_dtype") == "float16" else "f"


class ReviewStore(ReviewActions, ReviewHistory, ReviewTeam):
    """A review store file. ``with ReviewStore(path) as store: ...``; ``create=False``
    refuses a missing file instead of creating an empty store; ``readonly=True`` opens an
    existing store without writing anything to it (statistics, exports; also in a read-only
    folder). Every SQLite error surfaces as a one-line StoreError naming the file.

    Decisions are kept per reviewer. What the single-reviewer reads (``decision``,
    ``decisions``, ``tiles``, ``queue``, ``counts``) show is the ``view``: "own" (default)
    the acting reviewer's decisions only; "latest" the most recent decision of any reviewer
    on each tile (statistics and exports of a store, whoever runs them). Every reviewer's
    side by side: :mod:`pvdesk.review.team`."""

    VIEWS = ("own", "latest")

    def __init__(self, path, reviewer: str | None = None, create: bool = True,
                 readonly: bool = False, view: str = "own"):
        if view not in self.VIEWS:
            raise ValueError(f"unknown store view {view!r}; use one of {', '.join(self.VIEWS)}")
        self.view = view
        self.path = Path(path)
        self._con = None
        if (readonly or not create) and not os.path.lexists(self.path):
            raise StoreError(f"{self.path}: no such review store")
        self.reviewer = reviewer or default_reviewer()
        self.readonly = readonly
        self._lock = threading.RLock()
        self._depth = 0
        self._runs: dict[int, RunInfo] = {}
        self._con = schema.connect(self.path, readonly=readonly)

    @property
    def view_reviewer(self) -> str | None:
        """Whose decisions the single-reviewer reads show (None: the latest of anyone)."""
        return self.reviewer if self.view == "own" else None

    def _view_clause(self) -> str:
        """An SQL condition on ``decisions d`` keeping the rows of the view."""
        return "d.reviewer = " + _queue.whose(self.view_reviewer, "d.tile_id")

    # -- lifecycle ---------------------------------------------------------------
    def close(self) -> None:
        con, self._con = self._con, None
        if con is not None:
            con.close()

    def __enter__(self) -> ReviewStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def con(self):
        if self._con is None:
            raise StoreError(f"{self.path}: the review store is closed")
        return self._con

    @contextlib.contextmanager
    def transaction(self):
        """One write transaction; nested calls join the outer one."""
        with self._lock:
            con = self.con
            if self._depth:
                self._depth += 1
                try:
                    yield con
                finally:
                    self._depth -= 1
                return
            if self.readonly:
                raise StoreError(f"{self.path}: opened read-only; nothing can be changed")
            con.execute("BEGIN IMMEDIATE")
            self._depth = 1
            try:
                yield con
                con.execute("COMMIT")
            except BaseException:
                # Only inside an open transaction: after a failed COMMIT (disk full) SQLite
                # may have rolled back already, and "cannot rollback" must not hide why.
                con.rollback_if_active()
                raise
            finally:
                self._depth = 0

    def integrity_check(self) -> str:
        with self._lock:
            return self.con.execute("PRAGMA integrity_check").fetchone()[0]

    # -- slides and runs -----------------------------------------------------------
    def add_slide(self, slide_id: str, path: str, properties: dict | None = None) -> None:
        """Record a slide (idempotent; a second call updates path and properties).
        Keys that could identify a patient are dropped."""
        props = {str(k): v for k, v in (properties or {}).items() if not _identifying(k)}
        with self.transaction() as con:
            con.execute(
                "INSERT INTO slides(slide_id, path, properties, added_at) VALUES (?,?,?,?) "
                "ON CONFLICT(slide_id) DO UPDATE SET path=excluded.path, "
                "properties=excluded.properties",
                (str(slide_id), str(path), json.dumps(props, default=str), utc_now()))

    def slides(self) -> list[dict]:
        with self._lock:
            rows = self.con.execute("SELECT slide_id, path, properties, added_at, patient "
                                    "FROM slides ORDER BY rowid").fetchall()
        return [{"slide_id": s, "path": p, "properties": json.loads(j), "added_at": a,
                 "patient": pt} for s, p, j, a, pt in rows]

    def slide_ids(self, run_id: int | None = None, with_coords: bool = False) -> list[str]:
        """Slides that have predicted tiles (in a run; with coordinates, i.e. not patches)."""
        sql = ("SELECT DISTINCT t.slide_id FROM tiles t JOIN predictions p"
               " ON p.tile_id = t.tile_id WHERE 1")
        args: list = []
        if with_coords:
            sql += " AND t.tile_x IS NOT NULL"
        if run_id is not None:
            sql, args = sql + " AND p.run_id = ?", [run_id]
        with self._lock:
            return [r[0] for r in self.con.execute(sql + " ORDER BY t.slide_id", args)]

    def add_run(self, bundle_name: str, bundle_version: str, manifest_hash: str,
                classes: list[str], device: str, settings: dict | None = None,
                trained: bool = True, weights_sha256: str = "") -> int:
        """A new run; ``weights_sha256``: the sha256 its bundle's manifest records for the
        bundle's weights (or the 16-character prefix an imported CSV gives), "" if none."""
        classes = [str(c) for c in classes]
        if not classes or len(set(classes)) != len(classes):
            raise StoreError(f"{self.path}: a run needs a non-empty list of distinct classes")
        with self.transaction() as con:
            cur = con.execute(
                "INSERT INTO runs(bundle_name, bundle_version, manifest_hash, classes, device, "
                "settings, trained, created_at, weights_sha256) VALUES (?,?,?,?,?,?,?,?,?)",
                (bundle_name, bundle_version or "", manifest_hash or "", json.dumps(classes),
                 device, json.dumps(settings or {}, default=str), int(bool(trained)), utc_now(),
                 str(weights_sha256 or "").lower()))
            return int(cur.lastrowid)

    def runs(self) -> list[RunInfo]:
        with self._lock:
            rows = self.con.execute(
                "SELECT run_id, bundle_name, bundle_version, manifest_hash, classes, device, "
                "settings, trained, created_at, weights_sha256 FROM runs ORDER BY run_id"
            ).fetchall()
        out = []
        for r in rows:
            info = RunInfo(r[0], r[1], r[2], r[3], tuple(json.loads(r[4])), r[5],
                           json.loads(r[6]), bool(r[7]), r[8], r[9] or "")
            self._runs[info.run_id] = info
            out.append(info)
        return out

    def run(self, run_id: int) -> RunInfo:
        if run_id not in self._runs:
            self.runs()
        try:
            return self._runs[int(run_id)]
        except KeyError:
            raise StoreError(f"{self.path}: no model run {run_id}") from None

    def latest_run(self, slide_id: str | None = None) -> int | None:
        sql = "SELECT max(p.run_id) FROM predictions p"
        args: tuple = ()
        if slide_id is not None:
            sql += " JOIN tiles t USING(tile_id) WHERE t.slide_id=?"
            args = (slide_id,)
        with self._lock:
            return self.con.execute(sql, args).fetchone()[0]

    # -- predictions -------------------------------------------------------------
    def add_predictions(self, run_id: int, slide_id: str,
                        rows: Iterable[TilePrediction]) -> int:
        """Record tiles and their probabilities in one transaction; returns the row count.
        A tile seen before (same slide and coordinates, or same patch path) is reused."""
        return len(self._add_predictions(run_id, slide_id, rows))

    def record_predictions(self, run_id: int, slide_id: str,
                           rows: Iterable[TilePrediction]) -> list[TileRecord]:
        """:meth:`add_predictions`, returning the stored tiles as queue records (with any
        decision a reused tile already has), so a viewer adds them without a re-read."""
        rows = list(rows)
        added = self._add_predictions(run_id, slide_id, rows)
        run = self.run(run_id)
        decisions: dict[int, tuple] = {}
        ids = [a[0] for a in added]
        with self._lock:
            for i in range(0, len(ids), 500):
                chunk = ids[i:i + 500]
                for r in self.con.execute(
                        "SELECT tile_id, status, label, reviewer, reviewed_at FROM decisions d"
                        f" WHERE {self._view_clause()} AND tile_id IN "
                        f"({','.join('?' * len(chunk))})", chunk):
                    decisions[r[0]] = r[1:]
        out = []
        for (tid, best, conf, ent, margin), row in zip(added, rows, strict=True):
            d = decisions.get(tid)
            out.append(TileRecord(
                tile_id=tid, slide_id=slide_id, source=str(row.source), tile_x=row.tile_x,
                tile_y=row.tile_y, tile_w=row.tile_w, tile_h=row.tile_h, mpp=row.mpp,
                run_id=run_id, classes=run.classes, probs=tuple(float(v) for v in row.probs),
                predicted=run.classes[best], confidence=conf, entropy=ent, margin=margin,
                status=(d[0] or UNREVIEWED) if d else UNREVIEWED, label=d[1] if d else None,
                reviewer=d[2] if d else None, reviewed_at=d[3] if d else None,
                patch_path=row.patch_path, folder_class=row.folder_class, model=run.model))
        return out

    def _add_predictions(self, run_id: int, slide_id: str,
                         rows: Iterable[TilePrediction]) -> list[tuple]:
        classes = self.run(run_id).classes
        emb_code = embedding_code(self.run(run_id))
        added = []
        with self.transaction() as con:
            if con.execute("SELECT 1 FROM slides WHERE slide_id=?", (slide_id,)).fetchone() is None:
                raise StoreError(f"{self.path}: unknown slide {slide_id!r} (add_slide first)")
            for row in rows:
                if len(row.probs) != len(classes):
                    raise StoreError(f"{self.path}: {row.source}: {len(row.probs)} probabilities "
                                     f"for a run with {len(classes)} classes")
                xywh = (row.tile_x, row.tile_y, row.tile_w, row.tile_h)
                tid = con.execute(
                    "INSERT INTO tiles(slide_id, tile_key, source, tile_x, tile_y, tile_w, tile_h,"
                    " mpp, patch_path, folder_class) VALUES (?,?,?,?,?,?,?,?,?,?) "
                    "ON CONFLICT(slide_id, tile_key) DO UPDATE SET mpp=coalesce(excluded.mpp, mpp),"
                    " patch_path=coalesce(excluded.patch_path, patch_path),"
                    " folder_class=coalesce(excluded.folder_class, folder_class) RETURNING tile_id",
                    (slide_id, tile_key(row.source, *xywh), str(row.source),
                     *(None if v is None else int(v) for v in xywh),
                     None if row.mpp is None else float(row.mpp), row.patch_path,
                     row.folder_class)).fetchone()[0]
                best, conf, ent, margin = uncertainty(row.probs)
                con.execute(
                    "INSERT INTO predictions(run_id, tile_id, probs, predicted, confidence, "
                    "entropy, margin, embedding) VALUES (?,?,?,?,?,?,?,?) "
                    "ON CONFLICT(run_id, tile_id) DO UPDATE SET probs=excluded.probs, "
                    "predicted=excluded.predicted, confidence=excluded.confidence, "
                    "entropy=excluded.entropy, margin=excluded.margin, "
                    "embedding=coalesce(excluded.embedding, embedding)",
                    (run_id, tid, to_blob(row.probs, "d"), classes[best], conf, ent, margin,
                     to_blob(row.embedding, emb_code)))
                added.append((tid, best, conf, ent, margin))
        return added

    def embedding(self, tile_id: int, run_id: int):
        """The tile's embedding in a run as a float32 numpy array, or None."""
        with self._lock:
            r = self.con.execute("SELECT embedding FROM predictions WHERE tile_id=? AND run_id=?",
                                 (tile_id, run_id)).fetchone()
        if r is None or r[0] is None:
            return None
        import numpy as np

        dtype = "<f2" if embedding_code(self.run(run_id)) == "e" else "<f4"
        return np.frombuffer(r[0], dtype=dtype).astype(np.float32)

    def find_tile(self, slide_id: str | None = None, source: str | None = None,
                  tile_x=None, tile_y=None, tile_w=None, tile_h=None) -> int | None:
        """The tile id for coordinates (or a patch's source path), or None."""
        key = tile_key(source or "", tile_x, tile_y, tile_w, tile_h)
        sql, args = "SELECT tile_id FROM tiles WHERE tile_key=?", [key]
        if slide_id is not None:
            sql, args = sql + " AND slide_id=?", args + [slide_id]
        if source is not None:
            sql, args = sql + " AND source=?", args + [source]
        with self._lock:
            r = self.con.execute(sql + " ORDER BY tile_id LIMIT 1", args).fetchone()
        return None if r is None else r[0]

    def tiles(self, slide_id: str | None = None, run_id: int | None = None,
              view: str | None = None) -> Iterator[TileRecord]:
        """Every (tile, prediction) with its decision, by run then tile; for export.
        ``view`` overrides the store's ("latest": each tile's latest decision of anyone)."""
        if view not in (None, *self.VIEWS):
            raise ValueError(f"unknown store view {view!r}")
        who = self.view_reviewer if view is None else (self.reviewer if view == "own" else None)
        yield from self._records(_queue.where(run_id=run_id, slide_id=slide_id),
                                 "p.run_id, p.tile_id", who=who)

    def _records(self, where: tuple[str, list], order: str, limit: int | None = None,
                 who: str | None | bool = False):
        who = self.view_reviewer if who is False else who
        sql = _queue.select(who) + where[0] + " ORDER BY " + order
        args = list(where[1])
        if limit is not None:
            sql += " LIMIT ?"
            args.append(int(limit))
        with self._lock:
            rows = self.con.execute(sql, args).fetchall()
        for r in rows:
            yield _queue.record(r, self.run(r[8]))

    # -- queue -----------------------------------------------------------------------
    def queue(self, run_id: int | None = None, slide_id: str | None = None,
              order: str = "entropy", predicted: str | None = None, status: str | None = None,
              limit: int | None = None, disagree: bool = False) -> list[TileRecord]:
        """Tiles most uncertain first (highest entropy, or smallest top-2 margin), for one
        run (default: the latest), optionally one slide, one predicted class, one status;
        ``disagree`` keeps patches whose folder class differs from the prediction."""
        if run_id is None:
            run_id = self.latest_run(slide_id)
            if run_id is None:
                return []
        where = _queue.where(run_id, slide_id, predicted, status, disagree)
        return list(self._records(where, _queue.order_by(order), limit))

    def counts(self, run_id: int | None = None, slide_id: str | None = None,
               predicted: str | None = None) -> Counts:
        """reviewed / total / corrected over the tiles of a run (default: the latest)."""
        if run_id is None:
            run_id = self.latest_run(slide_id)
            if run_id is None:
                return Counts(0, 0, 0)
        where = _queue.where(run_id, slide_id, predicted)
        with self._lock:
            return _queue.counts(self.con, where, self.view_reviewer)

    def class_counts(self, run_id: int | None = None,
                     slide_id: str | None = None) -> dict[str, tuple[int, int]]:
        """{class: (predicted, labelled by the acting reviewer)} over a run (None: all)."""
        with self._lock:
            return _queue.class_counts(self.con, _queue.where(run_id, slide_id),
                                       self.view_reviewer)

    def tile_count(self) -> int:
        with self._lock:
            return self.con.execute("SELECT count(*) FROM tiles").fetchone()[0]
