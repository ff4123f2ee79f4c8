"""The review store's SQLite schema, its version, its migrations, and a safe opener.

The schema version lives in ``PRAGMA user_version``; ``PRAGMA application_id`` marks the
file as a pvdesk store. ``MIGRATIONS[i]`` takes a store from version ``i`` to ``i + 1``;
a new schema appends one entry and never edits an old one. A store whose version is newer
than this build knows is refused before anything is written to it, so it stays
byte-identical; so is a file that is not SQLite, or SQLite that is not a pvdesk store.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from pvdesk.errors import StoreError

APPLICATION_ID = 0x70766462  # "pvdb"
SQLITE_MAGIC = b"SQLite format 3\x00"

_V1 = [
    """CREATE TABLE slides (
        slide_id TEXT PRIMARY KEY,
        path TEXT NOT NULL,
        properties TEXT NOT NULL DEFAULT '{}',
        added_at TEXT NOT NULL)""",
    """CREATE TABLE runs (
        run_id INTEGER PRIMARY KEY AUTOINCREMENT,
        bundle_name TEXT NOT NULL,
        bundle_version TEXT NOT NULL,
        manifest_hash TEXT NOT NULL,
        classes TEXT NOT NULL,
        device TEXT NOT NULL,
        settings TEXT NOT NULL DEFAULT '{}',
        trained INTEGER NOT NULL DEFAULT 1,
        created_at TEXT NOT NULL)""",
    """CREATE TABLE tiles (
        tile_id INTEGER PRIMARY KEY AUTOINCREMENT,
        slide_id TEXT NOT NULL REFERENCES slides(slide_id),
        tile_key TEXT NOT NULL,
        source TEXT NOT NULL,
        tile_x INTEGER, tile_y INTEGER, tile_w INTEGER, tile_h INTEGER,
        mpp REAL,
        patch_path TEXT,
        folder_class TEXT,
        UNIQUE (slide_id, tile_key))""",
    "CREATE INDEX tiles_source ON tiles(source)",
    """CREATE TABLE predictions (
        run_id INTEGER NOT NULL REFERENCES runs(run_id),
        tile_id INTEGER NOT NULL REFERENCES tiles(tile_id),
        probs BLOB NOT NULL,
        predicted TEXT NOT NULL,
        confidence REAL NOT NULL,
        entropy REAL NOT NULL,
        margin REAL NOT NULL,
        embedding BLOB,
        PRIMARY KEY (run_id, tile_id))""",
    "CREATE INDEX predictions_entropy ON predictions(run_id, entropy DESC)",
    "CREATE INDEX predictions_margin ON predictions(run_id, margin)",
    "CREATE INDEX predictions_tile ON predictions(tile_id, run_id)",
    # Current decision per tile: derived state, always equal to replaying the audit trail.
    """CREATE TABLE decisions (
        tile_id INTEGER PRIMARY KEY REFERENCES tiles(tile_id),
        status TEXT NOT NULL,
        label TEXT,
        reviewer TEXT,
        reviewed_at TEXT,
        run_id INTEGER)""",
    """CREATE TABLE diagnoses (
        slide_id TEXT PRIMARY KEY REFERENCES slides(slide_id),
        label TEXT,
        comment TEXT,
        reviewer TEXT,
        at TEXT)""",
    # The undo stack: one row per undoable action (batch); state done / undone / discarded.
    """CREATE TABLE ops (
        batch_id INTEGER PRIMARY KEY,
        reviewer TEXT NOT NULL,
        state TEXT NOT NULL)""",
    "CREATE INDEX ops_reviewer ON ops(reviewer, state, batch_id)",
    """CREATE TABLE audit (
        audit_id INTEGER PRIMARY KEY AUTOINCREMENT,
        batch_id INTEGER NOT NULL,
        at TEXT NOT NULL,
        reviewer TEXT NOT NULL,
        action TEXT NOT NULL,
        tile_id INTEGER,
        slide_id TEXT,
        run_id INTEGER,
        old_status TEXT, old_label TEXT,
        new_status TEXT, new_label TEXT,
        ref_batch INTEGER,
        comment TEXT)""",
    "CREATE INDEX audit_batch ON audit(batch_id)",
    """CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
        BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END""",
    """CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
        BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END""",
]

MIGRATIONS: list[list[str]] = [_V1]
SCHEMA_VERSION = len(MIGRATIONS)


def _probe(path: Path) -> tuple[int, int, bool]:
    """(user_version, application_id, has_tables) read without writing to the file."""
    with open(path, "rb") as fh:
        head = fh.read(len(SQLITE_MAGIC))
    if head != SQLITE_MAGIC:
        raise StoreError(f"{path}: not a pvdesk review store (not an SQLite database)")
    uri = "file:" + str(path.resolve()).replace("?", "%3f").replace("#", "%23") + "?mode=ro"
    try:
        con = sqlite3.connect(uri, uri=True)
        try:
            version = con.execute("PRAGMA user_version").fetchone()[0]
            app_id = con.execute("PRAGMA application_id").fetchone()[0]
            n = con.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        finally:
            con.close()
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"{path}: cannot read the review store ({exc})") from exc
    return version, app_id, n > 0


def connect(path) -> sqlite3.Connection:
    """Open (creating or migrating) a store and return a connection in autocommit mode.

    Transactions are explicit (BEGIN IMMEDIATE ... COMMIT) in the store's methods.
    """
    path = Path(path)
    if path.is_dir():
        raise StoreError(f"{path}: is a folder, not a review store file")
    if path.exists() and path.stat().st_size > 0:
        version, app_id, has_tables = _probe(path)
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{path}: review store schema version {version} is newer than this pvdesk "
                f"understands ({SCHEMA_VERSION}); upgrade pvdesk to open it")
        if has_tables and app_id != APPLICATION_ID:
            raise StoreError(f"{path}: an SQLite database, but not a pvdesk review store")
    elif not path.parent.exists():
        raise StoreError(f"{path}: the folder {path.parent} does not exist")
    try:
        con = sqlite3.connect(os.fspath(path), isolation_level=None, timeout=30,
                              check_same_thread=False)
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA synchronous=FULL")
        con.execute("PRAGMA foreign_keys=ON")
        _migrate(con, path)
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"{path}: cannot open the review store ({exc})") from exc
    return con


def _migrate(con: sqlite3.Connection, path: Path) -> None:
    con.execute("BEGIN IMMEDIATE")
    try:
        version = con.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:  # raced with a newer writer
            raise StoreError(f"{path}: review store schema version {version} is newer than "
                             f"this pvdesk understands ({SCHEMA_VERSION})")
        for statements in MIGRATIONS[version:]:
            for sql in statements:
                con.execute(sql)
        if version < SCHEMA_VERSION:
            con.execute(f"PRAGMA application_id={APPLICATION_ID}")
            con.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
