"""Reading review stores for a merge: each store's rows with identities instead of ids
(a slide by its id, a tile by slide id and tile key, a run by bundle name, version, manifest
hash and creation time, an audit batch by its rows' content and its rank among identical
batches), and a canonical dump to compare stores by content. See :mod:`pvdesk.review.merge`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
from pathlib import Path

from pvdesk.errors import StoreError
from pvdesk.review import schema
from pvdesk.review.store import ReviewStore

TILE_COLS = "slide_id, tile_key, source, tile_x, tile_y, tile_w, tile_h, mpp, patch_path, folder_class"
RUN_COLS = ("bundle_name, bundle_version, manifest_hash, classes, device, settings, trained, "
             "created_at, weights_sha256")
AUDIT_COLS = ("batch_id, at, reviewer, action, tile_id, slide_id, run_id, old_status, "
               "old_label, new_status, new_label, ref_batch, comment")
PRED_COLS = "run_id, tile_id, probs, predicted, confidence, entropy, margin, embedding"
REGION_COLS = "slide_id, label, geometry, qupath_id, origin, reviewer, added_at, active"


def _digest(value) -> str:
    return hashlib.sha256(json.dumps(value, default=str).encode()).hexdigest()


def remove_db(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(f"{path}{suffix}")


def _upgraded_copy(path: Path, tmp: Path) -> Path | None:
    """A store of an older schema copied to ``tmp`` and upgraded there (the input is only
    read); None when ``path`` is at the current schema (or not a store: opening it says
    why)."""
    if not path.is_file():
        return None
    version, app_id, _ = schema._probe(path)
    if app_id != schema.APPLICATION_ID or version >= schema.SCHEMA_VERSION:
        return None
    remove_db(tmp)
    try:
        try:
            src = sqlite3.connect(schema._reader_uri(path), uri=True)
            try:
                dst = sqlite3.connect(tmp)
                try:
                    src.backup(dst)
                finally:
                    dst.close()
            finally:
                src.close()
        except (sqlite3.Error, MemoryError) as exc:
            raise schema.store_error(path, exc) from exc
        ReviewStore(tmp).close()  # migrates the copy
    except BaseException:
        remove_db(tmp)
        raise
    return tmp


class Source:
    """One input store read into identities (an older schema through an upgraded copy)."""

    def __init__(self, path: Path, scratch: Path | None = None):
        self.path = path
        self.copy = _upgraded_copy(path, scratch) if scratch is not None else None
        self.store = None
        try:
            self.store = ReviewStore(self.copy or path, readonly=True, create=False)
            self._read(path, self.store.con)
        except BaseException:
            self.close()
            raise

    def _read(self, path: Path, con) -> None:
        self.slides = []
        for slide_id, path_, props, at, patient in con.execute(
                "SELECT slide_id, path, properties, added_at, patient FROM slides ORDER BY rowid"):
            try:
                parsed = json.loads(props)
            except ValueError:
                raise StoreError(f"{path}: the review store is damaged (the properties of "
                                 f"slide {str(slide_id)[:40]!r} are not JSON)") from None
            self.slides.append((slide_id, path_, json.dumps(parsed, sort_keys=True), at,
                                patient))
        self.runs = {r[0]: r[1:] for r in con.execute(
            f"SELECT run_id, {RUN_COLS} FROM runs ORDER BY run_id")}
        self.tiles = {r[0]: r[1:] for r in con.execute(
            f"SELECT tile_id, {TILE_COLS} FROM tiles ORDER BY tile_id")}
        self.audit = con.execute(f"SELECT {AUDIT_COLS} FROM audit ORDER BY audit_id").fetchall()
        self.ops = dict(con.execute("SELECT batch_id, state FROM ops"))
        self.diagnoses = con.execute("SELECT slide_id, label, comment, reviewer, at "
                                     "FROM diagnoses").fetchall()
        self.regions = con.execute(f"SELECT {REGION_COLS} FROM qupath_regions "
                                   "ORDER BY region_id").fetchall()

    def _row(self, table: dict, key, what: str):
        """``table[key]``; None for a None key; a damaged store when it is not held."""
        if key is None:
            return None
        if key not in table:
            raise StoreError(f"{self.path}: the review store is damaged (a row refers to "
                             f"{what} {key}, which it does not hold)")
        return table[key]

    def run_key(self, run_id):
        row = self._row(self.runs, run_id, "model run")
        return None if row is None else run_identity(row)

    def tile_key(self, tile_id):
        row = self._row(self.tiles, tile_id, "tile")
        return None if row is None else tuple(row[:2])

    def batches(self) -> list[tuple[str, list[tuple]]]:
        """[(identity, rows)] in the store's order; rows with identities for ids."""
        grouped: dict[int, list] = {}
        for r in self.audit:
            grouped.setdefault(r[0], []).append(r)
        out, ident, seen = [], {}, {}
        for batch_id, rows in grouped.items():
            mapped = [(r[1], r[2], r[3], self.tile_key(r[4]), r[5], self.run_key(r[6]), *r[7:11],
                       ident.get(r[11]) if r[11] is not None else None, r[12]) for r in rows]
            digest = _digest(mapped)
            rank = seen.get(digest, 0)
            seen[digest] = rank + 1
            ident[batch_id] = f"{digest}:{rank}"
            out.append((ident[batch_id], mapped, self.ops.get(batch_id)))
        return out

    def close(self):
        if self.store is not None:
            self.store.close()
        if self.copy is not None:
            remove_db(self.copy)


def run_identity(run_row) -> tuple:
    """(bundle_name, bundle_version, manifest_hash, created_at) of a runs row without id."""
    return (run_row[0], run_row[1], run_row[2], run_row[7])


def canonical_dump(path) -> dict:
    """A store's content with ids replaced by identities, as sorted lists: two stores with
    the same dump hold the same slides, runs, tiles, predictions, decisions, audit trail,
    roles, settings, diagnoses and regions."""
    src = Source(Path(path))
    try:
        con = src.store.con
        preds = sorted((src.run_key(r[0]), src.tile_key(r[1]), *r[2:]) for r in con.execute(
            f"SELECT {PRED_COLS} FROM predictions"))
        rows = con.execute("SELECT tile_id, reviewer, status, label, reviewed_at, run_id, "
                           "first_status, first_label, first_at FROM decisions").fetchall()
        decisions = sorted([(src.tile_key(r[0]), src.run_key(r[5]), *r[1:5], *r[6:])
                            for r in rows], key=repr)
        batches = [(ident.split(":")[0], rows, state) for ident, rows, state in src.batches()]
        return {
            "slides": sorted(src.slides), "runs": sorted(src.runs.values(), key=repr),
            "tiles": sorted(src.tiles.values(), key=repr), "predictions": preds,
            "decisions": decisions,
            "audit": sorted(batches, key=repr),
            "reviewers": sorted(con.execute("SELECT name, role FROM reviewers").fetchall()),
            "settings": sorted(con.execute("SELECT key, value FROM settings").fetchall()),
            "diagnoses": sorted(src.diagnoses, key=repr), "regions": sorted(src.regions,
                                                                            key=repr)}
    finally:
        src.close()
