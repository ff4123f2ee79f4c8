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
first), renumbered, and the decisions, undo stacks, settings and roles are rebuilt by
replaying the merged audit trail; where one reviewer decided one tile in two stores, the later decision
stands. OUT is written to a temporary file in its folder and renamed in place, so a crash or
kill -9 leaves OUT absent (or as it was) or complete. An existing OUT is merged into, as the
first store; merging again with the same stores changes nothing. A store of an older schema
is read through a copy upgraded beside OUT (the input itself is never written).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from pvdesk.errors import StoreError
from pvdesk.review import schema
from pvdesk.review.merge_sources import (
    AUDIT_COLS,
    PRED_COLS,
    REGION_COLS,
    RUN_COLS,
    TILE_COLS,
    Source,
    canonical_dump,
    remove_db,
    run_identity,
)
from pvdesk.review.replay import replay_ops, replay_rows
from pvdesk.review.store import ReviewStore

__all__ = ["canonical_dump", "merge_stores"]

def _check_same_slides(sources: list[Source]) -> None:
    first: dict[str, tuple[Source, dict]] = {}
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
    mpp: dict[tuple, tuple[Source, float]] = {}
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
    sources: list[Source] = []
    try:
        _remove_stale(out)
        for k, p in enumerate(paths):
            sources.append(Source(p, out.parent / f".{out.name}.merge-{os.getpid()}.in{k}.pvdb"))
        _check_same_slides(sources)
        tmp = out.parent / f".{out.name}.merge-{os.getpid()}.pvdb"
        remove_db(tmp)
        try:
            counts = _write(tmp, sources, reviewer)
            _replace(tmp, out)
        finally:
            remove_db(tmp)
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
            remove_db(p)
        except (PermissionError, OverflowError):
            continue  # someone else's live process, or not a pid


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


def _write(tmp: Path, sources: list[Source], reviewer: str | None) -> dict:
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


def _fill(con, sources: list[Source]) -> dict:
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
                con.execute(f"INSERT INTO runs(run_id, {RUN_COLS}) VALUES "
                            f"({','.join('?' * (len(row) + 1))})",
                            (run_ids[run_identity(row)], *row))
    for slide_id, (path, props, at, patient) in slides.items():
        con.execute("INSERT INTO slides(slide_id, path, properties, added_at, patient) "
                    "VALUES (?,?,?,?,?)", (slide_id, path, json.dumps(props), at, patient))
    for src in sources:
        for row in src.tiles.values():
            key = tuple(row[:2])
            if key not in tile_ids:
                tile_ids[key] = len(tile_ids) + 1
                con.execute(f"INSERT INTO tiles(tile_id, {TILE_COLS}) VALUES "
                            "(?,?,?,?,?,?,?,?,?,?,?)", (tile_ids[key], *row))
    n_pred = 0
    for src in sources:
        for r in src.store.con.execute(f"SELECT {PRED_COLS} FROM predictions"):
            cur = con.execute(
                f"INSERT OR IGNORE INTO predictions({PRED_COLS}) VALUES (?,?,?,?,?,?,?,?)",
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
        rows, _ = batches[ident]
        for at, who, action, tile, slide, run, os_, ol, ns, nl, ref, comment in rows:
            audit.append((len(audit) + 1, new_batch[ident], at, who, action,
                          None if tile is None else tile_ids[tile], slide,
                          None if run is None else run_ids[run], os_, ol, ns, nl,
                          None if ref is None else new_batch[ref], comment))
    # undo stacks as the merged trail gives them (one reviewer's undo in one store applies)
    con.executemany("INSERT INTO ops(batch_id, reviewer, state) VALUES (?,?,?)",
                    [(b, who, state) for b, (who, state) in replay_ops(audit).items()])
    con.executemany(f"INSERT INTO audit(audit_id, {AUDIT_COLS}) VALUES "
                    "(?,?,?,?,?,?,?,?,?,?,?,?,?,?)", audit)
    _derived(con, audit, sources)
    return {"slides": len(slides), "runs": len(run_ids), "tiles": len(tile_ids),
            "predictions": con.execute("SELECT count(*) FROM predictions").fetchone()[0],
            "audit_rows": len(audit), "batches": len(order),
            "decisions": con.execute("SELECT count(*) FROM decisions").fetchone()[0]}


def _derived(con, audit: list[tuple], sources: list[Source]) -> None:
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
                con.execute(f"INSERT INTO qupath_regions({REGION_COLS}) VALUES "
                            "(?,?,?,?,?,?,?,?)", r)
