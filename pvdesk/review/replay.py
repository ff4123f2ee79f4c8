"""Rebuild reviewer decisions from the audit trail alone.

The audit trail is the record; the ``decisions`` table is a cache of replaying it. Each
tile-level audit row changes the decision of its tile by its reviewer (decisions are kept
per reviewer, never overwriting another's). A reviewer's *first* decision on a tile is the
first reviewed state after the tile was last unreviewed for that reviewer: later changes
keep it, an undo back to unreviewed withdraws it.
"""

from __future__ import annotations

from collections.abc import Iterable

from pvdesk.review.types import UNREVIEWED, AuditRow, Decision

# (status, label, reviewed_at, run_id, first_status, first_label, first_at): a decisions
# table row without its (tile_id, reviewer) key.
State = tuple


def apply_row(state: State | None, new_status, new_label, at, run_id) -> State | None:
    """A (tile, reviewer) decision after one audit row; None: unreviewed (no row)."""
    if new_status in (None, UNREVIEWED):
        return None
    first = state[4:] if state is not None else (new_status, new_label, at)
    return (new_status, new_label, at, run_id, *first)


def replay_rows(rows: Iterable, upto: int | None = None) -> dict[tuple[int, str], State]:
    """{(tile_id, reviewer): state} after the audit rows (AuditRow or tuples in its field
    order) up to audit id ``upto`` (None: all)."""
    state: dict[tuple[int, str], State] = {}
    for row in rows:
        r = row if isinstance(row, AuditRow) else AuditRow(*row)
        if upto is not None and r.audit_id > upto:
            break
        if r.tile_id is None:  # slide-level rows (diagnosis, patient, settings, roles)
            continue
        key = (r.tile_id, r.reviewer)
        new = apply_row(state.get(key), r.new_status, r.new_label, r.at, r.run_id)
        if new is None:
            state.pop(key, None)
        else:
            state[key] = new
    return state


def replay_ops(rows: Iterable) -> dict[int, tuple[str, str]]:
    """The undo stacks (the ``ops`` table) as the audit trail gives them: {batch_id:
    (reviewer, "done" | "undone" | "discarded")} for every confirm/correct batch. A new
    action discards its reviewer's undone batches; an undo or redo sets its target's state
    (pvdesk.review.actions)."""
    ops: dict[int, tuple[str, str]] = {}
    seen: set[int] = set()
    for row in rows:
        r = row if isinstance(row, AuditRow) else AuditRow(*row)
        if r.batch_id in seen:
            continue
        seen.add(r.batch_id)
        if r.action in ("confirm", "correct"):
            for b, (who, state) in ops.items():
                if who == r.reviewer and state == "undone":
                    ops[b] = (who, "discarded")
            ops[r.batch_id] = (r.reviewer, "done")
        elif r.action in ("undo", "redo") and r.ref_batch in ops:
            ops[r.ref_batch] = (ops[r.ref_batch][0], "undone" if r.action == "undo" else "done")
    return ops


def replay_by_reviewer(rows: Iterable, upto: int | None = None,
                       first: bool = False) -> dict[str, dict[int, Decision]]:
    """{reviewer: {tile_id: Decision}} just after audit row ``upto`` (None: after the last
    row); ``first``: each reviewer's first decisions instead of their current ones."""
    out: dict[str, dict[int, Decision]] = {}
    for (tile, reviewer), st in replay_rows(rows, upto).items():
        d = (Decision(st[4], st[5], reviewer, st[6]) if first
             else Decision(st[0], st[1], reviewer, st[2]))
        out.setdefault(reviewer, {})[tile] = d
    return out


def replay(rows: Iterable, upto: int | None = None,
           reviewer: str | None = None) -> dict[int, Decision]:
    """One reviewer's decisions just after audit row ``upto`` (None: after the last row);
    reviewed tiles only. ``reviewer`` None: the trail must hold one reviewer's decisions
    (or none), else ValueError."""
    by = replay_by_reviewer(rows, upto)
    if reviewer is not None:
        return by.get(reviewer, {})
    if len(by) > 1:
        raise ValueError(f"the audit trail holds decisions of {len(by)} reviewers "
                         f"({', '.join(sorted(by))}); name one")
    return next(iter(by.values()), {})
