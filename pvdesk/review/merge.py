"""Merge review stores: several reviewers' stores (or review projects) into one, keeping
every slide, run, tile, prediction, decision and audit row.

Identities (ids differ between stores): a slide by its id (a hash of the slide's content), a
tile by slide id and tile key (coordinates, or a patch's path), a run by bundle name,
version, manifest hash and creation time, an audit batch by its rows' content (with tiles,
runs and referenced batches by identity) and its rank among identical batches of its store.

The rule for "the same slide": one slide id must carry the same slide in every store: every
slide property both stores recorded (dimensions, resolution, vendor ...) is equal, and a tile
key both stores hold has the same resolution (mpp). The folder may differ (stores made on
different machines). Anything else is refused with one line naming both stores.

Batches are merged in time order (a stable sort of the stores' sequences, the first store's
first), renumbered, and the decisions, settings and roles are rebuilt by replaying the
merged audit trail; where one reviewer decided one tile in two stores, the later decision
stands. OUT is written to a temporary file in its folder and renamed in place, so a crash or
kill -9 leaves OUT absent (or as it was) or complete. An existing OUT is merged into, as the
first store; merging again with the same stores changes nothing. A store of an older schema
is read through a copy upgraded beside OUT (the input itself is never written).
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
from pvdesk.review.replay import replay_rows
from pvdesk.review.store import ReviewStore

_TILE_COLS = "slide_id, tile_key, source, tile_x, tile_y, tile_w, tile_h, mpp, patch_path, folder_class"
_RUN_COLS = ("bundle_name, bundle_version, manifest_hash, classes, device, settings, trained, "
             "created_at")
_AUDIT_COLS = ("batch_id, at, reviewer, action, tile_id, slide_id, run_id, old_status, "
               "old_label, new_status, new_label, ref_batch, comment")
_REGION_COLS = "slide_id, label, geometry, qupath_id, origin, reviewer, added_at, active"


def _digest(value) -> str:
    return hashlib.sha256(json.dumps(value, default=str).encode()).hexdigest()


def _upgraded_copy(path: Path, tmp: Path) -> Path | None:
    """A store of an older schema copied to ``tmp`` and upgraded there (the input is only
    read); None when ``path`` is at the current schema (or not a store: opening it says
    why)."""
    if not path.is_file():
        return None
    version, app_id, _ = schema._probe(path)
    if app_id != schema.APPLICATION_ID or version >= schema.SCHEMA_VERSION:
        return None
    _remove(tmp)
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
        _remove(tmp)
        raise
    return tmp


class _Source:
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
            f"SELECT run_id, {_RUN_COLS} FROM runs ORDER BY run_id")}
        self.tiles = {r[0]: r[1:] for r in con.execute(
            f"SELECT tile_id, {_TILE_COLS} FROM tiles ORDER BY tile_id")}
        self.audit = con.execute(f"SELECT {_AUDIT_COLS} FROM audit ORDER BY audit_id").fetchall()
        self.ops = dict(con.execute("SELECT batch_id, state FROM ops"))
        self.diagnoses = con.execute("SELECT slide_id, label, comment, reviewer, at "
                                     "FROM diagnoses").fetchall()
        self.regions = con.execute(f"SELECT {_REGION_COLS} FROM qupath_regions "
                                   "ORDER BY region_id").fetchall()

    def run_key(self, run_id):
        if run_id is None:
            return None
        if run_id not in self.runs:
            raise StoreError(f"{self.path}: the review store is damaged (a row refers to "
                             f"model run {run_id}, which it does not hold)")
        return run_identity(self.runs[run_id])

    def tile_key(self, tile_id):
        if tile_id is None:
            return None
        if tile_id not in self.tiles:
            raise StoreError(f"{self.path}: the review store is damaged (a row refers to "
                             f"tile {tile_id}, which it does not hold)")
        return tuple(self.tiles[tile_id][:2])

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
            _remove(self.copy)


def run_identity(run_row) -> tuple:
    """(bundle_name, bundle_version, manifest_hash, created_at) of a runs row without id."""
    return (run_row[0], run_row[1], run_row[2], run_row[7])


def _check_same_slides(sources: list[_Source]) -> None:
    first: dict[str, tuple[_Source, dict]] = {}
    for src in sources:
        for slide_id, _path, props, _at, _patient in src.slides:
            mine = json.loads(props)
            if slide_id not in first:
                first[slide_id] = (src, mine)
                continue
            other, theirs = first[slide_id]
            for key in sorted(set(mine) & set(theirs)):
                if mine[key] != theirs[key]:
                    raise StoreError(
                        f"{src.path}: slide {slide_id!r} is not the slide of that id in "
                        f"{other.path} (property {key}: {str(mine[key])[:40]!r} != "
                        f"{str(theirs[key])[:40]!r}); refusing to merge")
    mpp: dict[tuple, tuple[_Source, float]] = {}
    for src in sources:
        for t in src.tiles.values():
            key = tuple(t[:2])
            if t[7] is None:
                continue
            if key in mpp and abs(mpp[key][1] - t[7]) > 1e-9 * max(1.0, abs(t[7])):
                raise StoreError(f"{src.path}: tile {key[1]} of slide {key[0]!r} has "
                                 f"{t[7]} um/px, {mpp[key][0].path} has {mpp[key][1]}; "
                                 "not the same slide; refusing to merge")
            mpp.setdefault(key, (src, t[7]))


def merge_stores(out, inputs, reviewer: str | None = None) -> dict:
    """Merge ``inputs`` (and OUT itself when it exists) into OUT; returns counts."""
    out = Path(out)
    paths: list[Path] = []
    for p in ([out] if os.path.lexists(out) else []) + [Path(p) for p in inputs]:
        if not any(p.resolve() == q.resolve() for q in paths):
            paths.append(p)
    if not inputs:
        raise StoreError("review merge: name at least one store to merge")
    if not out.parent.is_dir():
        raise StoreError(f"{out}: the folder {out.parent} does not exist")
    if os.path.lexists(out) and schema._in_use(out):
        # replacing a store another program has open would lose what it writes next
        raise StoreError(f"{out}: the review store is open in another program (its -wal or "
                         "-shm file exists); close it there first (a store left so by a crash "
                         "is tidied by opening and closing it once in pvdesk)")
    sources: list[_Source] = []
    try:
        _remove_stale(out)
        for k, p in enumerate(paths):
            sources.append(_Source(p, out.parent / f".{out.name}.merge-{os.getpid()}.in{k}.pvdb"))
        _check_same_slides(sources)
        tmp = out.parent / f".{out.name}.merge-{os.getpid()}.pvdb"
        _remove(tmp)
        try:
            counts = _write(tmp, sources, reviewer)
            _replace(tmp, out)
        finally:
            _remove(tmp)
    finally:
        for s in sources:
            s.close()
    counts["stores"] = len(sources)
    return counts


def _remove_stale(out: Path) -> None:
    """Remove temporary files of earlier merges into OUT whose process is gone (killed)."""
    prefix = f".{out.name}.merge-"
    for p in out.parent.glob(f"{prefix}*.pvdb"):
        pid = p.name[len(prefix):-len(".pvdb")].split(".")[0]
        if not pid.isdigit():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            _remove(p)
        except (PermissionError, OverflowError):
            continue  # someone else's live process, or not a pid


def _remove(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(f"{path}{suffix}")


def _replace(tmp: Path, out: Path) -> None:
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, out)
    dfd = os.open(out.parent, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def _write(tmp: Path, sources: list[_Source], reviewer: str | None) -> dict:
    store = ReviewStore(tmp, reviewer=reviewer)
    try:
        with store.transaction() as con:
            counts = _fill(con, sources)
        con = store.con
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        con.execute("PRAGMA journal_mode=DELETE")
    finally:
        store.close()
    return counts


def _fill(con, sources: list[_Source]) -> dict:
    # slides (first store's path and time; the first patient set)
    slides: dict[str, list] = {}
    for src in sources:
        for slide_id, path, props, at, patient in src.slides:
            if slide_id not in slides:
                slides[slide_id] = [path, json.loads(props), at, patient]
            else:
                s = slides[slide_id]
                s[1] = {**json.loads(props), **s[1]}
                s[3] = s[3] or patient
    # runs and tiles: new ids in order of first appearance
    run_ids: dict[tuple, int] = {}
    tile_ids: dict[tuple, int] = {}
    for src in sources:
        for row in src.runs.values():
            if run_identity(row) not in run_ids:
                run_ids[run_identity(row)] = len(run_ids) + 1
                con.execute(f"INSERT INTO runs(run_id, {_RUN_COLS}) VALUES (?,?,?,?,?,?,?,?,?)",
                            (run_ids[run_identity(row)], *row))
    for slide_id, (path, props, at, patient) in slides.items():
        con.execute("INSERT INTO slides(slide_id, path, properties, added_at, patient) "
                    "VALUES (?,?,?,?,?)", (slide_id, path, json.dumps(props), at, patient))
    for src in sources:
        for row in src.tiles.values():
            key = tuple(row[:2])
            if key not in tile_ids:
                tile_ids[key] = len(tile_ids) + 1
                con.execute(f"INSERT INTO tiles(tile_id, {_TILE_COLS}) VALUES "
                            "(?,?,?,?,?,?,?,?,?,?,?)", (tile_ids[key], *row))
    n_pred = 0
    for src in sources:
        for r in src.store.con.execute("SELECT run_id, tile_id, probs, predicted, confidence, "
                                       "entropy, margin, embedding FROM predictions"):
            cur = con.execute(
                "INSERT OR IGNORE INTO predictions(run_id, tile_id, probs, predicted, "
                "confidence, entropy, margin, embedding) VALUES (?,?,?,?,?,?,?,?)",
                (run_ids[src.run_key(r[0])], tile_ids[src.tile_key(r[1])], *r[2:]))
            n_pred += cur.rowcount
    # audit batches: union by identity, in time order (stable: the first store's first)
    batches: dict[str, tuple] = {}
    for src in sources:
        for ident, rows, state in src.batches():
            batches.setdefault(ident, (rows, state))
    order = sorted(batches, key=lambda b: batches[b][0][0][0])  # stable sort by time
    new_batch = {ident: i + 1 for i, ident in enumerate(order)}
    audit = []
    for ident in order:
        rows, state = batches[ident]
        for at, who, action, tile, slide, run, os_, ol, ns, nl, ref, comment in rows:
            audit.append((len(audit) + 1, new_batch[ident], at, who, action,
                          None if tile is None else tile_ids[tile], slide,
                          None if run is None else run_ids[run], os_, ol, ns, nl,
                          None if ref is None else new_batch[ref], comment))
        if state is not None:
            con.execute("INSERT INTO ops(batch_id, reviewer, state) VALUES (?,?,?)",
                        (new_batch[ident], rows[0][1], state))
    con.executemany(f"INSERT INTO audit(audit_id, {_AUDIT_COLS}) VALUES "
                    "(?,?,?,?,?,?,?,?,?,?,?,?,?,?)", audit)
    _derived(con, audit, sources)
    return {"slides": len(slides), "runs": len(run_ids), "tiles": len(tile_ids),
            "predictions": con.execute("SELECT count(*) FROM predictions").fetchone()[0],
            "audit_rows": len(audit), "batches": len(order),
            "decisions": con.execute("SELECT count(*) FROM decisions").fetchone()[0]}


def _derived(con, audit: list[tuple], sources: list[_Source]) -> None:
    """Decisions, roles, settings, patients, diagnoses and regions of the merged store."""
    for (tile, who), st in replay_rows(audit).items():
        con.execute("INSERT INTO decisions(tile_id, reviewer, status, label, reviewed_at, "
                    "run_id, first_status, first_label, first_at) VALUES (?,?,?,?,?,?,?,?,?)",
                    (tile, who, *st))
    roles: dict[str, tuple[str, str]] = {}
    for r in audit:  # (audit_id, batch, at, reviewer, action, tile, slide, run, os, ol, ns, nl,..)
        if r[5] is not None and r[10] not in (None, "unreviewed"):
            roles.setdefault(r[3], ("reader", r[2]))
        elif r[4] == "role":
            roles[r[13]] = (r[11], roles.get(r[13], (None, r[2]))[1])
        elif r[4] == "setting":
            con.execute("INSERT OR REPLACE INTO settings(key, value) VALUES (?,?)",
                        (r[13], r[11]))
        elif r[4] == "patient":
            con.execute("UPDATE slides SET patient=? WHERE slide_id=?", (r[11], r[6]))
    for name, (role, at) in roles.items():
        con.execute("INSERT INTO reviewers(name, role, added_at) VALUES (?,?,?)",
                    (name, role, at))
    latest: dict[str, tuple] = {}
    for src in sources:
        for slide_id, *rest in src.diagnoses:
            if slide_id not in latest or (rest[3] or "") > (latest[slide_id][3] or ""):
                latest[slide_id] = tuple(rest)
    for slide_id, rest in latest.items():
        con.execute("INSERT INTO diagnoses(slide_id, label, comment, reviewer, at) "
                    "VALUES (?,?,?,?,?)", (slide_id, *rest))
    seen = set()
    for src in sources:
        for r in src.regions:
            if r[:7] not in seen:
                seen.add(r[:7])
                con.execute(f"INSERT INTO qupath_regions({_REGION_COLS}) VALUES "
                            "(?,?,?,?,?,?,?,?)", r)


def canonical_dump(path) -> dict:
    """A store's content with ids replaced by identities, as sorted lists: two stores with
    the same dump hold the same slides, runs, tiles, predictions, decisions, audit trail,
    roles, settings, diagnoses and regions."""
    src = _Source(Path(path))
    try:
        con = src.store.con
        preds = sorted((src.run_key(r[0]), src.tile_key(r[1]), *r[2:]) for r in con.execute(
            "SELECT run_id, tile_id, probs, predicted, confidence, entropy, margin, embedding "
            "FROM predictions"))
        rows = con.execute("SELECT tile_id, reviewer, status, label, reviewed_at, run_id, "
                           "first_status, first_label, first_at FROM decisions").fetchall()
        decisions = sorted([(src.tile_key(r[0]), src.run_key(r[5]), *r[1:5], *r[6:])
                            for r in rows], key=repr)
        batches = [(ident.split(":")[0], rows, state) for ident, rows, state in src.batches()]
        return {
            "slides": sorted(src.slides), "runs": sorted(src.runs.values()),
            "tiles": sorted(src.tiles.values(), key=repr), "predictions": preds,
            "decisions": decisions,
            "audit": sorted(batches, key=repr),
            "reviewers": sorted(con.execute("SELECT name, role FROM reviewers").fetchall()),
            "settings": sorted(con.execute("SELECT key, value FROM settings").fetchall()),
            "diagnoses": sorted(src.diagnoses, key=repr), "regions": sorted(src.regions,
                                                                            key=repr)}
    finally:
        src.close()
