"""Which review store a slide uses, recording model runs into it, and reading them back.

- :func:`default_store_path` — one ``.pvdb`` per slide under the user's data folder
  (``stores/<slide_id>.pvdb``), unless the user chose a project file that holds many slides.
- :class:`RunRecorder` — records a run (slide, one store run per model, predictions as
  batches finish). ``pvdesk predict --store`` and the desktop app both use it.
- :func:`restore_run` — a stored run of a slide as a tile grid plus one batch, so a viewer
  shows the heatmap of an earlier run without running the model again.
- :class:`BackgroundWriter` — a thread that applies store writes in order, so a GUI thread
  never waits on a large transaction.

Qt-free; numpy and the inference package are imported only where needed.
"""

from __future__ import annotations

import queue
import re
import sys
import threading
from collections.abc import Callable, Mapping
from pathlib import Path

from pvdesk.paths import user_data_dir

STORE_SUFFIX = ".pvdb"


def stores_dir() -> Path:
    return user_data_dir() / "stores"


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", str(text)).strip("._")


def default_store_path(slide_id: str, source_path=None) -> Path:
    """The store a slide uses by default, under ``<user data>/stores``: named after the
    slide's file (``<file name>-<8 characters of its id>.pvdb``, so two files with one
    name stay apart) when the path is given. A store made by an earlier version under the
    bare id (``<slide_id>.pvdb``) keeps being used."""
    folder = stores_dir()
    legacy = folder / f"{_safe(slide_id) or 'slide'}{STORE_SUFFIX}"
    if source_path is None or legacy.exists():
        return legacy
    p = Path(source_path)
    name = _safe(p.stem if p.suffix else p.name)[:80] or "slide"
    short = _safe(slide_id).split("-")[-1][:8] or "id"
    return folder / f"{name}-{short}{STORE_SUFFIX}"


def legacy_slide_id(source) -> str | None:
    """The id pvdesk 0.1 gave this slide or folder (size, first and last MiB of a file;
    16 KiB per patch of a folder), so that reviews stored under it are found again after
    the id became stronger. None when it cannot be computed."""
    import hashlib

    def old(path: Path, chunk: int = 1 << 20) -> str:
        h = hashlib.sha256()
        size = path.stat().st_size
        h.update(str(size).encode())
        with open(path, "rb") as fh:
            h.update(fh.read(chunk))
            if size > 2 * chunk:
                fh.seek(size - chunk)
                h.update(fh.read(chunk))
        return h.hexdigest()[:20]

    try:
        root = Path(source.path)
        if getattr(source, "kind", "") == "folder":
            h = hashlib.sha256()
            for p in source.patches:
                h.update(p.path.relative_to(root).as_posix().encode())
                h.update(old(p.path, chunk=1 << 14).encode())
            return h.hexdigest()[:20]
        return old(root) if root.is_file() else None
    except (OSError, ValueError, AttributeError):
        return None


def find_review_store(source, slide_id: str, project: Path | None = None):
    """(store path, the id the slide has in it): the project file, or the slide's default
    store; when that holds nothing for ``slide_id`` but a store made under the slide's
    older id does, that one, with the older id, so earlier reviews are never lost."""
    if project is not None:
        import sqlite3

        legacy = None
        if Path(project).is_file():
            legacy = legacy_slide_id(source)
            try:
                con = sqlite3.connect(f"file:{project}?mode=ro", uri=True)
                try:
                    ids = {r[0] for r in con.execute(
                        "SELECT slide_id FROM slides WHERE slide_id IN (?, ?)",
                        (slide_id, legacy or slide_id))}
                finally:
                    con.close()
            except sqlite3.Error:
                ids = set()  # not a readable store: the store layer will say why
            if slide_id not in ids and legacy in ids:
                return Path(project), legacy
        return Path(project), slide_id
    path = default_store_path(slide_id, source.path)
    if not path.exists():
        legacy = legacy_slide_id(source)
        if legacy and legacy != slide_id:
            old_path = default_store_path(legacy)
            if old_path.exists():
                return old_path, legacy
    return path, slide_id


def last_reviewed_run(store, slide_id: str) -> int | None:
    """The run in which the slide's most recent review decision was made (None if none)."""
    with store._lock:
        r = store.con.execute(
            "SELECT d.run_id FROM decisions d JOIN tiles t USING(tile_id) WHERE t.slide_id=? "
            "AND d.status != 'unreviewed' AND d.run_id IS NOT NULL "
            "ORDER BY d.reviewed_at DESC LIMIT 1", (slide_id,)).fetchone()
    return None if r is None else int(r[0])


def run_settings(grid, **extra) -> dict:
    """What a store run records about the tile grid (and any extra settings)."""
    return {"grid": grid.describe(), "tile_um": grid.tile_um, "stride": grid.stride,
            "side": grid.side, "level": grid.level, "out_size": grid.out_size, **extra}


class RunRecorder:
    """Records one inference pass over ``source`` into ``store``.

    ``begin(bundles, grid, device)`` adds the slide and one store run per model
    (``bundles`` maps the engine's classifier key to its Bundle) and returns
    {key: run_id}; ``add(batch)`` stores a BatchResult's readable tiles for every model,
    one transaction per model.
    """

    def __init__(self, store, source, slide_id: str | None = None):
        self.store = store
        self.source = source
        self.slide_id = slide_id or source.slide_id  # a store may know the slide by an older id
        self.source_path = str(Path(source.path).resolve())
        self.mpp = source.mpp
        self.runs: dict[str, int] = {}

    def begin(self, bundles: Mapping[str, object], grid, device: str, settings: dict | None = None,
              per_model: Mapping[str, dict] | None = None) -> dict[str, int]:
        from pvdesk.taxonomy import Taxonomy

        self.store.add_slide(self.slide_id, self.source_path, self.source.properties())
        common = run_settings(grid, **(settings or {}))
        for key, b in bundles.items():
            extra = dict((per_model or {}).get(key, {}))
            tax = getattr(b, "taxonomy", None)
            if (tax is not None and not tax.is_breakhis  # reviewable without the bundle
                    and tax != Taxonomy.from_names(b.classes)):  # (unless its names say all)
                extra.setdefault("taxonomy", tax.to_dict())
            self.runs[key] = self.store.add_run(
                b.name, b.version, b.manifest_hash, list(b.classes), device,
                {**common, **extra}, trained=b.trained,
                weights_sha256=getattr(b, "weights_sha256", ""))
        return dict(self.runs)

    def add(self, batch) -> int:
        from pvdesk.inference.results import to_tile_predictions

        n = 0
        for key, run_id in self.runs.items():
            if key in batch.probs:
                n += self.store.add_predictions(
                    run_id, self.slide_id,
                    to_tile_predictions(batch, key, self.source_path, self.mpp))
        return n

    def add_records(self, batch) -> dict[str, list]:
        """:meth:`add`, returning {key: the stored tiles as TileRecords} for a viewer."""
        from pvdesk.inference.results import to_tile_predictions

        out = {}
        for key, run_id in self.runs.items():
            if key in batch.probs:
                out[key] = self.store.record_predictions(
                    run_id, self.slide_id,
                    to_tile_predictions(batch, key, self.source_path, self.mpp))
        return out


def slide_runs(store, slide_id: str) -> list:
    """The store's runs that hold predictions for ``slide_id``, oldest first."""
    with store._lock:
        ids = {r[0] for r in store.con.execute(
            "SELECT DISTINCT p.run_id FROM predictions p JOIN tiles t USING(tile_id) "
            "WHERE t.slide_id=?", (slide_id,))}
    return [r for r in store.runs() if r.run_id in ids]


def latest_runs_by_model(store, slide_id: str) -> list:
    """The newest run of each model (bundle name) on a slide, newest first."""
    seen: dict[str, object] = {}
    for r in reversed(slide_runs(store, slide_id)):
        seen.setdefault(r.bundle_name, r)
    return list(seen.values())


def restore_run(store, run_id: int, slide_id: str):
    """(TileGrid, BatchResult) of a stored slide run: the tiles with coordinates and their
    probabilities keyed by the run's bundle name. None for a patch folder run or an
    unknown run (no tiles with coordinates)."""
    import numpy as np

    from pvdesk.inference.results import BatchResult
    from pvdesk.slides.base import Tile
    from pvdesk.tiling import TileGrid

    run = store.run(run_id)
    recs = [r for r in store.tiles(slide_id=slide_id, run_id=run_id) if r.tile_x is not None]
    if not recs:
        return None
    side = int(run.settings.get("side") or recs[0].tile_w)
    stride = int(run.settings.get("stride") or side)
    tiles = [Tile(index=i, x=r.tile_x, y=r.tile_y, w=r.tile_w, h=r.tile_h)
             for i, r in enumerate(recs)]
    grid = TileGrid(tiles, out_size=int(run.settings.get("out_size") or 224), side=side,
                    stride=stride, level=int(run.settings.get("level") or 0),
                    tile_um=run.settings.get("tile_um"), mpp=recs[0].mpp,
                    total_positions=len(tiles))
    probs = np.array([r.probs for r in recs], dtype=np.float32)
    return grid, BatchResult(tiles, {run.bundle_name: probs}, {run.bundle_name: None})


FLUSH_TIMEOUT_S = 60.0  # longest a flush or close waits for queued store writes


class BackgroundWriter:
    """One daemon thread applying submitted callables in order.

    ``submit(fn, *args, done=callback)`` queues ``fn(*args)``; ``done(result, error)`` is
    called on the writer thread afterwards. ``flush()`` waits until everything submitted
    so far is applied; ``close()`` flushes and stops the thread. Errors never kill it.
    """

    def __init__(self, name: str = "pvdesk-store-writer"):
        self._q: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._closed = False
        self._thread.start()

    def submit(self, fn: Callable, *args, done: Callable | None = None) -> bool:
        if self._closed:
            return False
        self._q.put((fn, args, done))
        return True

    def _loop(self) -> None:
        while True:
            item = self._q.get()
            try:
                if item is None:
                    return
                fn, args, done = item
                result, error = None, None
                try:
                    result = fn(*args)
                except Exception as exc:  # reported through ``done``
                    error = exc
                if done is not None:
                    try:
                        done(result, error)
                    except Exception as exc:  # a callback's bug must not stop the writer
                        print(f"pvdesk: a store writer callback failed: "
                              f"{type(exc).__name__}: {exc}", file=sys.stderr)
            finally:
                self._q.task_done()

    def flush(self, timeout: float | None = FLUSH_TIMEOUT_S) -> bool:
        """Wait until everything submitted so far is applied (at most ``timeout`` s; None:
        no limit). False when it timed out."""
        if not self._thread.is_alive() or self._thread is threading.current_thread():
            return True
        done = threading.Event()
        if self._closed:  # nothing new is taken: wait for the thread to drain and stop
            self._thread.join(timeout)
            return not self._thread.is_alive()
        self._q.put((done.set, (), None))
        return done.wait(timeout)

    def close(self, timeout: float | None = FLUSH_TIMEOUT_S) -> bool:
        """Apply what is queued, then stop (at most ``timeout`` s: a write stuck on a
        stalled disk never holds the window open; the thread is a daemon). False when it
        timed out."""
        if not self._closed:
            self._closed = True
            self._q.put(None)
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)
            if self._thread.is_alive():
                print(f"pvdesk: {self._thread.name} did not finish within {timeout:g} s; "
                      "closing anyway", file=sys.stderr)
                return False
        return True


def export_review(store, csv_path, geojson_path=None, run_id: int | None = None) -> dict:
    """Write a store's predictions with their review columns as CSV (and GeoJSON for
    QuPath when ``geojson_path`` is given; one file per slide when there are several).
    Returns a summary: rows, reviewed, corrected, confirmed, files (review status as each
    run's rows say it: confirmed only where that run predicted the reviewer's label)."""
    from pvdesk.export.csv import write_predictions_csv
    from pvdesk.export.geojson import write_geojson_per_slide

    counts: dict = {}
    rows = write_predictions_csv(store, csv_path, run_id=run_id, counts=counts)
    files = [str(csv_path)]
    features = 0
    if geojson_path is not None:
        for path, n in write_geojson_per_slide(store, geojson_path, run_id=run_id):
            files.append(str(path))
            features += n
    corrected, confirmed = counts.get("corrected", 0), counts.get("confirmed", 0)
    return {"rows": rows, "reviewed": corrected + confirmed, "corrected": corrected,
            "confirmed": confirmed, "features": features, "files": files}
