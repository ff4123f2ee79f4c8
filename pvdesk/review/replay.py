"""Rebuild reviewer decisions from the audit trail alone.

The audit trail is the record; the ``decisions`` table is a cache of ``replay(audit)``.
"""

from __future__ import annotations

from collections.abc import Iterable

from pvdesk.review.types import UNREVIEWED, AuditRow, Decision


def decision_after(row: AuditRow) -> Decision:
    """The tile's decision once ``row`` is applied."""
    if row.new_status in (None, UNREVIEWED):
        return Decision(UNREVIEWED, None, None, None)
    return Decision(row.new_status, row.new_label, row.reviewer, row.at)


def replay(rows: Iterable[AuditRow], upto: int | None = None) -> dict[int, Decision]:
    """Decisions just after audit row ``upto`` (None: after the last row).

    Returns reviewed tiles only; a tile that is back to unreviewed is left out.
    """
    state: dict[int, Decision] = {}
    for row in rows:
        if upto is not None and row.audit_id > upto:
            break
        if row.tile_id is None:  # slide-level rows (diagnosis)
            continue
        d = decision_after(row)
        if d.status == UNREVIEWED:
            state.pop(row.tile_id, None)
        else:
            state[row.tile_id] = d
    return state
