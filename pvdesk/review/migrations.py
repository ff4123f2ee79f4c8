"""The review store's schema, as a list of migrations.

``MIGRATIONS[i]`` takes a store from version ``i`` to ``i + 1`` (``PRAGMA user_version``):
SQL statements, or functions of the connection for what SQL alone cannot do.
A new schema appends one entry and never edits an old one: stores made by every earlier
version open and are upgraded in one transaction.
"""

from __future__ import annotations

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


# Version 2: a per-slide patient (a study code set by the user; never read from slide
# metadata), so exports carry it and training splits keep one patient's slides together;
# and QuPath regions of interest (pvdesk.regions), created on first use before version 2.
_V2 = [
    "ALTER TABLE slides ADD COLUMN patient TEXT",
    """CREATE TABLE IF NOT EXISTS qupath_regions (
        region_id INTEGER PRIMARY KEY AUTOINCREMENT,
        slide_id TEXT NOT NULL,
        label TEXT,
        geometry TEXT NOT NULL,
        qupath_id TEXT,
        origin TEXT NOT NULL,
        reviewer TEXT NOT NULL,
        added_at TEXT NOT NULL,
        active INTEGER NOT NULL DEFAULT 1)""",
]


def _v3_decisions_from_audit(con) -> None:
    """Fill version 3's per-reviewer decisions by replaying the audit trail per reviewer,
    so every reviewer's decisions (not only the tile's last writer's) are kept, with each
    reviewer's first decision, and the table equals ``replay`` of the trail."""
    from pvdesk.review.replay import replay_rows

    rows = con.execute(
        "SELECT audit_id, batch_id, at, reviewer, action, tile_id, slide_id, run_id, "
        "old_status, old_label, new_status, new_label, ref_batch, comment FROM audit "
        "WHERE tile_id IS NOT NULL ORDER BY audit_id").fetchall()
    for (tile, reviewer), st in replay_rows(rows).items():
        con.execute("INSERT INTO decisions(tile_id, reviewer, status, label, reviewed_at, run_id,"
                    " first_status, first_label, first_at) VALUES (?,?,?,?,?,?,?,?,?)",
                    (tile, reviewer, *st))
    con.execute("INSERT OR IGNORE INTO reviewers(name, role, added_at) SELECT reviewer, "
                "'reader', min(at) FROM audit WHERE tile_id IS NOT NULL AND new_status IS NOT "
                "NULL AND new_status != 'unreviewed' GROUP BY reviewer")


# Version 3: team review. Decisions are kept per (tile, reviewer), never overwriting another
# reviewer's, with each reviewer's first decision on the tile (the one a blinded reading
# analyses); reviewers have a role (reader or adjudicator); project settings (blinded
# reading, queue order and seed) live in a key/value table as JSON.
_V3 = [
    "ALTER TABLE decisions RENAME TO decisions_v2",
    """CREATE TABLE decisions (
        tile_id INTEGER NOT NULL REFERENCES tiles(tile_id),
        reviewer TEXT NOT NULL,
        status TEXT NOT NULL,
        label TEXT,
        reviewed_at TEXT,
        run_id INTEGER,
        first_status TEXT,
        first_label TEXT,
        first_at TEXT,
        PRIMARY KEY (tile_id, reviewer))""",
    "CREATE INDEX decisions_reviewer ON decisions(reviewer, tile_id)",
    """CREATE TABLE reviewers (
        name TEXT PRIMARY KEY,
        role TEXT NOT NULL DEFAULT 'reader' CHECK (role IN ('reader', 'adjudicator')),
        added_at TEXT NOT NULL)""",
    """CREATE TABLE settings (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL)""",
    _v3_decisions_from_audit,
    "DROP TABLE decisions_v2",
]

# Version 4: which weights made a run. The sha256 its bundle's manifest records for the
# bundle's own weights file (a CSV's model_sha256 cell is its first 16 characters); empty
# for a bundle without a weights file of its own, and NULL for every run made before this
# version: an old run's weights are unknown, never guessed from its name and version.
# Also an index on tiles by their key: an import finds each row's tile by (source, key) and
# every tile of a slide has the same source, so without it re-importing a CSV of n tiles
# scanned the slide's tiles n times (10k tiles: 4.3 s of 5.7 s).
_V4 = ["ALTER TABLE runs ADD COLUMN weights_sha256 TEXT",
       "CREATE INDEX tiles_key ON tiles(tile_key)"]

MIGRATIONS: list = [_V1, _V2, _V3, _V4]
