"""Reading a store's decisions, audit trail, diagnoses and patients (mixed into ReviewStore).

``decision``/``decisions`` follow the store's view (the acting reviewer's, ``store.reviewer``,
by default), ``state_at`` is one reviewer's;
every reviewer's side by side: :mod:`pvdesk.review.team`."""

from __future__ import annotations

from pvdesk.review.replay import replay
from pvdesk.review.types import NO_DECISION, UNREVIEWED, AuditRow, Decision


class ReviewHistory:
    """Needs ``con`` and ``_lock`` from ReviewStore."""

    # -- decisions and audit ------------------------------------------------------------
    def decision(self, tile_id: int) -> Decision:
        with self._lock:
            r = self.con.execute("SELECT status, label, reviewer, reviewed_at FROM decisions d "
                                 "WHERE tile_id=? AND " + self._view_clause(),
                                 (tile_id,)).fetchone()
        return NO_DECISION if r is None else Decision(*r)

    def decisions(self) -> dict[int, Decision]:
        """The decision on every tile reviewed in the view (the acting reviewer's)."""
        with self._lock:
            rows = self.con.execute("SELECT tile_id, status, label, reviewer, reviewed_at "
                                    "FROM decisions d WHERE status != ? AND "
                                    + self._view_clause(), (UNREVIEWED,)).fetchall()
        return {r[0]: Decision(*r[1:]) for r in rows}

    def audit(self, since: int = 0) -> list[AuditRow]:
        """Audit rows after ``since`` (an audit id), oldest first."""
        with self._lock:
            rows = self.con.execute(
                "SELECT audit_id, batch_id, at, reviewer, action, tile_id, slide_id, run_id, "
                "old_status, old_label, new_status, new_label, ref_batch, comment FROM audit "
                "WHERE audit_id > ? ORDER BY audit_id", (since,)).fetchall()
        return [AuditRow(*r) for r in rows]

    def state_at(self, audit_id: int | None = None,
                 reviewer: str | None = None) -> dict[int, Decision]:
        """A reviewer's (default: the acting one's) decisions as they stood just after
        audit row ``audit_id`` (None: now), rebuilt from the audit trail alone."""
        return replay(self.audit(), upto=audit_id, reviewer=reviewer or self.reviewer)

    def diagnosis(self, slide_id: str) -> tuple[str | None, str | None, str | None, str | None]:
        """(label, comment, reviewer, at) of a slide's diagnosis, all None when unset."""
        with self._lock:
            r = self.con.execute("SELECT label, comment, reviewer, at FROM diagnoses "
                                 "WHERE slide_id=?", (slide_id,)).fetchone()
        return tuple(r) if r else (None, None, None, None)

    def patients(self) -> dict[str, str]:
        """{slide_id: patient} for the slides whose patient is set."""
        with self._lock:
            rows = self.con.execute("SELECT slide_id, patient FROM slides "
                                    "WHERE patient IS NOT NULL").fetchall()
        return dict(rows)

    def batch_tiles(self, batch_id: int) -> list[int]:
        """The tiles an action (one audit batch) touched, in the order it touched them."""
        with self._lock:
            rows = self.con.execute("SELECT tile_id FROM audit WHERE batch_id=? AND tile_id IS "
                                    "NOT NULL ORDER BY audit_id", (batch_id,)).fetchall()
        return list(dict.fromkeys(r[0] for r in rows))
