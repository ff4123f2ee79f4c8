"""Reviewer actions on a ReviewStore: confirm, correct (one tile or many), undo, redo, a
slide-level diagnosis and the slide's patient.

Each call is one transaction that updates the current decisions and appends audit rows
sharing one ``batch_id``; it returns that batch id (undo/redo return None when there is
nothing to undo or redo). Undo and redo append rows too (never deletions); undoing a bulk
action undoes the whole bulk. Decisions are per reviewer: an action changes the acting
reviewer's decision on a tile and never another reviewer's. Undo stacks are per reviewer: a
new action discards that reviewer's redo stack. Correcting a tile to its predicted label
records it as confirmed.
"""

from __future__ import annotations

from collections.abc import Iterable

from pvdesk.errors import StoreError
from pvdesk.review.replay import apply_row
from pvdesk.review.types import (
    CONFIRMED,
    CORRECTED,
    REVIEW_LABELS,
    UNREVIEWED,
    utc_now,
)
from pvdesk.taxonomy import GROUPS, Taxonomy

DIAGNOSIS_LABELS = REVIEW_LABELS + GROUPS
MAX_PATIENT_CHARS = 64


def check_patient(text: str | None, where) -> str | None:
    """A patient code as stored: stripped, None when blank; at most 64 printable characters
    (letters, digits and ``-_.:/ #``), so it is an identifier, not free text."""
    if text is None or not str(text).strip():
        return None
    code = str(text).strip()
    if len(code) > MAX_PATIENT_CHARS or not all(c.isalnum() or c in "-_.:/ #" for c in code):
        raise StoreError(f"{where}: patient {code[:40]!r} is not a short study code (at most "
                         f"{MAX_PATIENT_CHARS} letters, digits and - _ . : / # or spaces)")
    return code

_AUDIT_INSERT = (
    "INSERT INTO audit(batch_id, at, reviewer, action, tile_id, slide_id, run_id, old_status,"
    " old_label, new_status, new_label, ref_batch, comment) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)")


class ReviewActions:
    """Mixed into ReviewStore; needs ``transaction()``, ``reviewer`` and ``path``."""

    # -- public actions -----------------------------------------------------------------
    def confirm(self, tile_id: int, run_id: int | None = None) -> int:
        return self.confirm_many([tile_id], run_id)

    def correct(self, tile_id: int, label: str, run_id: int | None = None) -> int:
        return self.correct_many([tile_id], label, run_id)

    def confirm_many(self, tile_ids: Iterable[int], run_id: int | None = None) -> int:
        return self._act("confirm", tile_ids, None, run_id)

    def correct_many(self, tile_ids: Iterable[int], label: str,
                     run_id: int | None = None) -> int:
        allowed = self._review_labels(run_id)
        if label not in allowed:
            raise StoreError(f"{self.path}: {label!r} is not a review label "
                             f"({', '.join(allowed)})")
        return self._act("correct", tile_ids, label, run_id)

    def undo(self) -> int | None:
        """Undo this reviewer's latest action (all of a bulk action)."""
        return self._replay_op("undo")

    def redo(self) -> int | None:
        """Redo this reviewer's latest undone action."""
        return self._replay_op("redo")

    def can_undo(self) -> bool:
        return self._op_to("undo", self.con) is not None

    def can_redo(self) -> bool:
        return self._op_to("redo", self.con) is not None

    def set_diagnosis(self, slide_id: str, label: str | None, comment: str = "") -> int:
        """A slide-level diagnosis with a free-text comment (not on the undo stack)."""
        if label is not None and label not in DIAGNOSIS_LABELS and label not in {
                x for r in self.runs() for x in Taxonomy.of_run(r).diagnosis_labels}:
            raise StoreError(f"{self.path}: {label!r} is not a diagnosis label")
        with self.transaction() as con:
            if con.execute("SELECT 1 FROM slides WHERE slide_id=?", (slide_id,)).fetchone() is None:
                raise StoreError(f"{self.path}: unknown slide {slide_id!r}")
            old = con.execute("SELECT label FROM diagnoses WHERE slide_id=?",
                              (slide_id,)).fetchone()
            batch, at = self._next_batch(con), utc_now()
            con.execute(_AUDIT_INSERT, (batch, at, self.reviewer, "diagnosis", None, slide_id,
                                        None, None, old[0] if old else None, None, label, None,
                                        comment))
            con.execute("INSERT INTO diagnoses(slide_id, label, comment, reviewer, at) "
                        "VALUES (?,?,?,?,?) ON CONFLICT(slide_id) DO UPDATE SET "
                        "label=excluded.label, comment=excluded.comment, "
                        "reviewer=excluded.reviewer, at=excluded.at",
                        (slide_id, label, comment, self.reviewer, at))
            return batch

    def set_patient(self, slide_id: str, patient: str | None) -> int:
        """The slide's patient: a study code (not a name) that exports carry and training
        splits group by, so two slides of one patient never straddle train and test.
        Audited (action "patient"); None or blank clears it."""
        patient = check_patient(patient, self.path)
        with self.transaction() as con:
            row = con.execute("SELECT patient FROM slides WHERE slide_id=?",
                              (slide_id,)).fetchone()
            if row is None:
                raise StoreError(f"{self.path}: unknown slide {slide_id!r}")
            batch, at = self._next_batch(con), utc_now()
            con.execute(_AUDIT_INSERT, (batch, at, self.reviewer, "patient", None, slide_id,
                                        None, None, row[0], None, patient, None, None))
            con.execute("UPDATE slides SET patient=? WHERE slide_id=?", (patient, slide_id))
            return batch

    def record_imported(self, decisions: Iterable[tuple], comment: str = "") -> int | None:
        """Apply decisions read from elsewhere (a CSV): tuples of (tile_id, run_id, status,
        label, reviewer, reviewed_at[, exact]). Audit rows keep the original reviewer and
        time, with action "import"; each becomes that reviewer's decision (the acting
        reviewer's when the reviewer is missing); not on the undo stack. Unchanged decisions
        are skipped: same status, label and time, or, where ``exact`` is False (the time is
        only a bound, e.g. a team CSV's label_by cell), same status and label."""
        with self.transaction() as con:
            batch = None
            deciders: set[str] = set()
            for tid, run, status, label, reviewer, at, *exact in decisions:
                who = reviewer or self.reviewer
                r = con.execute("SELECT status, label, reviewed_at FROM decisions "
                                "WHERE tile_id=? AND reviewer=?", (tid, who)).fetchone()
                if r is not None and (r[0], r[1]) == (status, label) and (
                        r[2] == at or (exact and not exact[0])):
                    continue
                if batch is None:
                    batch = self._next_batch(con)
                if self._write(con, batch, at or utc_now(), "import", tid, run, (status, label),
                               comment=comment, reviewer=who):
                    deciders.add(who)
            self._add_reviewers(con, deciders, utc_now())
            return batch

    # -- helpers ------------------------------------------------------------------------
    def _review_labels(self, run_id: int | None) -> tuple[str, ...]:
        """The labels a reviewer may give in ``run_id`` (its taxonomy's classes, 0 and U;
        without a run: those of every run in the store)."""
        runs = [self.run(run_id)] if run_id is not None else self.runs()
        out = list(REVIEW_LABELS) if run_id is None else []
        for r in runs:
            out += [x for x in Taxonomy.of_run(r).review_labels if x not in out]
        return tuple(out)

    @staticmethod
    def _next_batch(con) -> int:
        return con.execute("SELECT coalesce(max(batch_id), 0) + 1 FROM audit").fetchone()[0]

    def _predicted(self, con, tile_id: int, run_id: int | None) -> tuple[int, str]:
        sql = "SELECT run_id, predicted FROM predictions WHERE tile_id=?"
        args: list = [tile_id]
        if run_id is not None:
            sql, args = sql + " AND run_id=?", args + [run_id]
        r = con.execute(sql + " ORDER BY run_id DESC LIMIT 1", args).fetchone()
        if r is None:
            raise StoreError(f"{self.path}: no prediction for tile {tile_id}"
                             + (f" in run {run_id}" if run_id is not None else ""))
        return r[0], r[1]

    def _write(self, con, batch, at, action, tile_id, run_id, new, ref=None, comment=None,
               reviewer=None) -> bool:
        """One audit row (old state read here) and the decisions row it gives; True when
        the reviewer's tile is now reviewed (callers then record the reviewer once)."""
        reviewer = reviewer or self.reviewer
        key = (tile_id, reviewer)
        row = con.execute("SELECT status, label, reviewed_at, run_id, first_status, "
                          "first_label, first_at FROM decisions WHERE tile_id=? AND reviewer=?",
                          key).fetchone()
        old = (row[0], row[1]) if row is not None else (UNREVIEWED, None)
        con.execute(_AUDIT_INSERT, (batch, at, reviewer, action, tile_id, None, run_id,
                                    old[0], old[1], new[0], new[1], ref, comment))
        # The decisions row is what replaying this audit row gives (pvdesk.review.replay).
        state = apply_row(None if row is None else tuple(row), new[0], new[1], at, run_id)
        if state is None:
            con.execute("DELETE FROM decisions WHERE tile_id=? AND reviewer=?", key)
            return False
        con.execute("INSERT OR REPLACE INTO decisions(tile_id, reviewer, status, label, "
                    "reviewed_at, run_id, first_status, first_label, first_at) "
                    "VALUES (?,?,?,?,?,?,?,?,?)", (*key, *state))
        return True

    @staticmethod
    def _add_reviewers(con, names, at) -> None:
        """Everyone who decided a tile is a reviewer (a reader unless given a role)."""
        con.executemany("INSERT OR IGNORE INTO reviewers(name, role, added_at) "
                        "VALUES (?, 'reader', ?)", [(n, at) for n in sorted(names)])

    def _act(self, action: str, tile_ids: Iterable[int], label: str | None,
             run_id: int | None) -> int:
        ids = list(dict.fromkeys(int(t) for t in tile_ids))
        if not ids:
            raise StoreError(f"{self.path}: no tiles to {action}")
        with self.transaction() as con:
            batch, at = self._next_batch(con), utc_now()
            for tid in ids:
                run, predicted = self._predicted(con, tid, run_id)
                if action == "confirm":
                    new = (CONFIRMED, predicted)
                else:
                    new = (CONFIRMED if label == predicted else CORRECTED, label)
                self._write(con, batch, at, action, tid, run, new)
            self._add_reviewers(con, [self.reviewer], at)
            con.execute("UPDATE ops SET state='discarded' WHERE reviewer=? AND state='undone'",
                        (self.reviewer,))
            con.execute("INSERT INTO ops(batch_id, reviewer, state) VALUES (?,?,'done')",
                        (batch, self.reviewer))
            return batch

    def _op_to(self, which: str, con) -> int | None:
        if which == "undo":
            sql = "WHERE reviewer=? AND state='done' ORDER BY batch_id DESC"
        else:
            sql = "WHERE reviewer=? AND state='undone' ORDER BY batch_id ASC"
        with self._lock:
            r = con.execute("SELECT batch_id FROM ops " + sql + " LIMIT 1",
                            (self.reviewer,)).fetchone()
        return None if r is None else r[0]

    def _replay_op(self, which: str) -> int | None:
        with self.transaction() as con:
            target = self._op_to(which, con)
            if target is None:
                return None
            rows = con.execute("SELECT tile_id, run_id, old_status, old_label, new_status, "
                               "new_label FROM audit WHERE batch_id=? ORDER BY audit_id",
                               (target,)).fetchall()
            if which == "undo":
                rows = rows[::-1]
            batch, at = self._next_batch(con), utc_now()
            decided = False
            for tid, run, old_s, old_l, new_s, new_l in rows:
                new = (old_s, old_l) if which == "undo" else (new_s, new_l)
                decided |= self._write(con, batch, at, which, tid, run, new, ref=target)
            if decided:
                self._add_reviewers(con, [self.reviewer], at)
            con.execute("UPDATE ops SET state=? WHERE batch_id=?",
                        ("undone" if which == "undo" else "done", target))
            return batch
