"""Team review on a ReviewStore: reviewers and their roles, project settings, every
reviewer's decisions side by side, consensus and the disputed tiles (mixed into
ReviewStore).

Consensus of a tile: the adjudicator's decision where one exists (the latest, if several
adjudicators decided); else the readers' label where at least two readers labelled the tile
and all agree ("unanimous"); else, with one reader only, that reader's label ("single").
Tiles whose readers disagree and that no adjudicator decided are *disputed*.
"""

from __future__ import annotations

import json

from pvdesk.errors import StoreError
from pvdesk.review.blind_order import BLIND_ORDERS
from pvdesk.review.types import UNREVIEWED, Decision, utc_now

READER, ADJUDICATOR = "reader", "adjudicator"
ROLES = (READER, ADJUDICATOR)
ADJUDICATED, UNANIMOUS, SINGLE = "adjudicated", "unanimous", "single"
QUEUE_ORDERS = BLIND_ORDERS  # the blinded queue's orders, the queue_order setting's values
MAX_NAME_CHARS = 64
MAX_SETTING_CHARS = 4096

_AUDIT = ("INSERT INTO audit(batch_id, at, reviewer, action, tile_id, slide_id, run_id, "
          "old_status, old_label, new_status, new_label, ref_batch, comment) "
          "VALUES (?,?,?,?,NULL,NULL,NULL,NULL,?,NULL,?,NULL,?)")


def check_reviewer(name, where) -> str:
    """A reviewer name as stored: stripped, 1..64 printable characters."""
    text = str(name or "").strip()
    if not text or len(text) > MAX_NAME_CHARS or not text.isprintable():
        raise StoreError(f"{where}: {str(name)[:40]!r} is not a reviewer name (1 to "
                         f"{MAX_NAME_CHARS} printable characters)")
    return text


def check_setting(key: str, value, where):
    """The value of a project setting, checked: ``blinded`` a bool, ``queue_order`` one of
    random/spatial, ``queue_seed`` an integer; other keys any small JSON value."""
    if key == "blinded" and not isinstance(value, bool):
        raise StoreError(f"{where}: setting blinded must be true or false, not {value!r}")
    if key == "queue_order" and value not in QUEUE_ORDERS:
        raise StoreError(f"{where}: setting queue_order must be one of "
                         f"{', '.join(QUEUE_ORDERS)}, not {value!r}")
    if key == "queue_seed" and (isinstance(value, bool) or not isinstance(value, int)
                                or not 0 <= value < 2 ** 63):
        raise StoreError(f"{where}: setting queue_seed must be an integer >= 0, not {value!r}")
    try:
        text = json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        raise StoreError(f"{where}: setting {key!r} is not a JSON value") from None
    if not key or len(key) > MAX_NAME_CHARS or len(text) > MAX_SETTING_CHARS:
        raise StoreError(f"{where}: setting {key[:40]!r} is too long")
    return text


def consensus_of(by_reviewer: dict[str, dict[int, Decision]], roles: dict[str, str]
                 ) -> tuple[dict[int, tuple[str, str]], list[int]]:
    """({tile: (label, source)}, disputed tiles) from every reviewer's decisions."""
    adjudicated: dict[int, Decision] = {}
    readers: dict[int, list[str]] = {}
    for name, decisions in by_reviewer.items():
        adjudicator = roles.get(name) == ADJUDICATOR
        for tile, d in decisions.items():
            if d.status == UNREVIEWED or not d.label:
                continue
            if adjudicator:
                old = adjudicated.get(tile)
                if old is None or (d.reviewed_at or "") > (old.reviewed_at or ""):
                    adjudicated[tile] = d
            else:
                readers.setdefault(tile, []).append(d.label)
    out: dict[int, tuple[str, str]] = {t: (d.label, ADJUDICATED) for t, d in adjudicated.items()}
    disputed = []
    for tile, labels in readers.items():
        if tile in out:
            continue
        if len(set(labels)) > 1:
            disputed.append(tile)
        else:
            out[tile] = (labels[0], UNANIMOUS if len(labels) > 1 else SINGLE)
    return out, sorted(disputed)


def consensus_counts(by_reviewer: dict[str, dict[int, Decision]], roles: dict[str, str]
                     ) -> dict[str, int]:
    """How many tiles have a consensus label, by source, and how many are disputed."""
    cons, disputed = consensus_of(by_reviewer, roles)
    sources = [src for _, src in cons.values()]
    return {**{k: sources.count(k) for k in (ADJUDICATED, UNANIMOUS, SINGLE)},
            "disputed": len(disputed)}


class ReviewTeam:
    """Needs ``con``, ``_lock``, ``transaction()``, ``reviewer``, ``path`` and
    ``_next_batch`` from ReviewStore."""

    # -- reviewers -----------------------------------------------------------------------
    def reviewers(self) -> list[tuple[str, str]]:
        """[(name, role)] of everyone who decided a tile or was given a role, by name."""
        with self._lock:
            return [tuple(r) for r in self.con.execute(
                "SELECT name, role FROM reviewers ORDER BY name")]

    def roles(self) -> dict[str, str]:
        return dict(self.reviewers())

    def set_role(self, name: str, role: str) -> int:
        """Make ``name`` a reader or an adjudicator (audited: action "role", the name in
        the comment, old and new role in old_label/new_label)."""
        name = check_reviewer(name, self.path)
        if role not in ROLES:
            raise StoreError(f"{self.path}: role {role!r} is not one of {', '.join(ROLES)}")
        with self.transaction() as con:
            old = con.execute("SELECT role FROM reviewers WHERE name=?", (name,)).fetchone()
            batch, at = self._next_batch(con), utc_now()
            con.execute(_AUDIT, (batch, at, self.reviewer, "role", old[0] if old else None,
                                 role, name))
            con.execute("INSERT INTO reviewers(name, role, added_at) VALUES (?,?,?) "
                        "ON CONFLICT(name) DO UPDATE SET role=excluded.role", (name, role, at))
            return batch

    # -- project settings ----------------------------------------------------------------
    def setting(self, key: str, default=None):
        with self._lock:
            r = self.con.execute("SELECT value FROM settings WHERE key=?", (key,)).fetchone()
        return default if r is None else json.loads(r[0])

    def settings(self) -> dict:
        with self._lock:
            return {k: json.loads(v) for k, v in self.con.execute(
                "SELECT key, value FROM settings ORDER BY key")}

    def set_setting(self, key: str, value) -> int:
        """Set a project setting (audited: action "setting", the key in the comment, old and
        new JSON values in old_label/new_label)."""
        text = check_setting(str(key), value, self.path)
        with self.transaction() as con:
            old = con.execute("SELECT value FROM settings WHERE key=?", (key,)).fetchone()
            batch = self._next_batch(con)
            con.execute(_AUDIT, (batch, utc_now(), self.reviewer, "setting",
                                 old[0] if old else None, text, key))
            con.execute("INSERT INTO settings(key, value) VALUES (?,?) ON CONFLICT(key) "
                        "DO UPDATE SET value=excluded.value", (key, text))
            return batch

    # -- decisions of every reviewer -----------------------------------------------------
    def decisions_by_reviewer(self, run_id: int | None = None, first: bool = False
                              ) -> dict[str, dict[int, Decision]]:
        """{reviewer: {tile_id: Decision}} of every reviewer (tiles of one run, or all);
        ``first``: each reviewer's first decision on the tile (a blinded reading's)."""
        cols = ("first_status, first_label, reviewer, first_at" if first
                else "status, label, reviewer, reviewed_at")
        sql = f"SELECT tile_id, {cols} FROM decisions WHERE status != ?"
        args: list = [UNREVIEWED]
        if run_id is not None:
            sql += " AND tile_id IN (SELECT tile_id FROM predictions WHERE run_id=?)"
            args.append(int(run_id))
        with self._lock:
            rows = self.con.execute(sql + " ORDER BY reviewer, tile_id", args).fetchall()
        out: dict[str, dict[int, Decision]] = {}
        for tile, *d in rows:
            out.setdefault(d[2], {})[tile] = Decision(*d)
        return out

    def tile_slides(self) -> dict[int, str]:
        """{tile_id: slide_id} of every tile."""
        with self._lock:
            return dict(self.con.execute("SELECT tile_id, slide_id FROM tiles"))

    def predicted(self, run_id: int) -> dict[int, str]:
        """{tile_id: the run's predicted class}."""
        with self._lock:
            return dict(self.con.execute("SELECT tile_id, predicted FROM predictions "
                                         "WHERE run_id=?", (int(run_id),)))

    def consensus(self, run_id: int | None = None) -> dict[int, tuple[str, str]]:
        """{tile_id: (label, source)}, source "adjudicated", "unanimous" (two or more
        readers agree) or "single" (one reader only); disputed tiles are left out."""
        return consensus_of(self.decisions_by_reviewer(run_id), self.roles())[0]

    def disputed(self, run_id: int | None = None) -> list[int]:
        """Tiles whose readers disagree and that no adjudicator has decided."""
        return consensus_of(self.decisions_by_reviewer(run_id), self.roles())[1]
