"""The review queue's SQL: which tiles, in what order (most uncertain first), and counts.

Uncertainty is computed once when predictions are stored: the normalised entropy of the
class probabilities (1 = uniform) and the top-2 margin (0 = a tie).
"""

from __future__ import annotations

from pvdesk.review.blobs import from_blob
from pvdesk.review.types import CONFIRMED, CORRECTED, STATUSES, UNREVIEWED, Counts, TileRecord


def sql_text(value: str) -> str:
    """An SQL string literal for ``value`` (quotes doubled)."""
    if "\x00" in value:
        raise ValueError("a reviewer name cannot hold a NUL character")
    return "'" + value.replace("'", "''") + "'"


def whose(reviewer: str | None, tile: str) -> str:
    """An SQL expression of the reviewer whose decision on ``tile`` (a column) is shown:
    ``reviewer``, or with None the one who decided the tile most recently."""
    if reviewer is not None:
        return sql_text(reviewer)
    return (f"(SELECT d2.reviewer FROM decisions d2 WHERE d2.tile_id = {tile}"
            " ORDER BY d2.reviewed_at DESC, d2.reviewer LIMIT 1)")


def joined(reviewer: str | None) -> str:
    """Predictions, their tiles and ``reviewer``'s decisions (d.* NULL where none);
    ``reviewer`` None: the most recent decision of any reviewer on each tile."""
    return (" FROM predictions p JOIN tiles t ON t.tile_id = p.tile_id"
            " LEFT JOIN decisions d ON d.tile_id = p.tile_id AND d.reviewer = "
            + whose(reviewer, "p.tile_id"))


def select(reviewer: str | None) -> str:
    """The SELECT of queue records with ``reviewer``'s decisions (see :func:`record`)."""
    return ("SELECT t.tile_id, t.slide_id, t.source, t.tile_x, t.tile_y, t.tile_w, t.tile_h,"
            " t.mpp, p.run_id, p.probs, p.predicted, p.confidence, p.entropy, p.margin,"
            " d.status, d.label, d.reviewer, d.reviewed_at, t.patch_path, t.folder_class"
            + joined(reviewer))

ORDERS = {
    "entropy": "p.entropy DESC, p.margin ASC, p.tile_id",
    "margin": "p.margin ASC, p.entropy DESC, p.tile_id",
    "tile": "p.tile_id",
}


def order_by(order: str) -> str:
    try:
        return ORDERS[order]
    except KeyError:
        raise ValueError(f"unknown queue order {order!r}; use one of {', '.join(ORDERS)}") from None


def where(run_id=None, slide_id=None, predicted=None, status=None,
          disagree: bool = False) -> tuple[str, list]:
    """A WHERE clause and its arguments. ``status`` is one of STATUSES or "reviewed"."""
    terms, args = [], []
    if run_id is not None:
        terms.append("p.run_id = ?")
        args.append(int(run_id))
    if slide_id is not None:
        terms.append("t.slide_id = ?")
        args.append(slide_id)
    if predicted is not None:
        terms.append("p.predicted = ?")
        args.append(predicted)
    if status is not None:
        if status == UNREVIEWED:
            terms.append("(d.status IS NULL OR d.status = ?)")
            args.append(UNREVIEWED)
        elif status == "reviewed":
            terms.append("d.status IN (?, ?)")
            args += [CONFIRMED, CORRECTED]
        elif status in STATUSES:
            terms.append("d.status = ?")
            args.append(status)
        else:
            raise ValueError(f"unknown review status {status!r}")
    if disagree:
        terms.append("t.folder_class IS NOT NULL AND t.folder_class != p.predicted")
    return (" WHERE " + " AND ".join(terms) if terms else ""), args


def record(r, run) -> TileRecord:
    """A TileRecord from a row of SELECT and its run."""
    return TileRecord(
        tile_id=r[0], slide_id=r[1], source=r[2], tile_x=r[3], tile_y=r[4], tile_w=r[5],
        tile_h=r[6], mpp=r[7], run_id=r[8], classes=run.classes,
        probs=tuple(from_blob(r[9], "d")), predicted=r[10],
        confidence=r[11], entropy=r[12], margin=r[13], status=r[14] or UNREVIEWED,
        label=r[15], reviewer=r[16], reviewed_at=r[17], patch_path=r[18], folder_class=r[19],
        model=run.model)


def counts(con, clause: tuple[str, list], reviewer: str | None) -> Counts:
    sql = ("SELECT count(*), coalesce(sum(d.status IN (?, ?)), 0),"
           " coalesce(sum(d.status = ?), 0)" + joined(reviewer) + clause[0])
    total, reviewed, corrected = con.execute(
        sql, [CONFIRMED, CORRECTED, CORRECTED] + list(clause[1])).fetchone()
    return Counts(int(reviewed), int(total), int(corrected))


def class_counts(con, clause: tuple[str, list], reviewer: str | None
                 ) -> dict[str, tuple[int, int]]:
    """{class: (tiles predicted as it, tiles ``reviewer`` labelled as it)}."""
    base = joined(reviewer) + clause[0]
    out: dict[str, list[int]] = {}
    for name, n in con.execute("SELECT p.predicted, count(*)" + base + " GROUP BY p.predicted",
                               clause[1]):
        out.setdefault(name, [0, 0])[0] = n
    extra = (" AND " if clause[0] else " WHERE ") + "d.status IN (?, ?)"
    for name, n in con.execute("SELECT d.label, count(DISTINCT p.tile_id)" + base + extra
                               + " GROUP BY d.label", list(clause[1]) + [CONFIRMED, CORRECTED]):
        out.setdefault(name, [0, 0])[1] = n
    return {k: (v[0], v[1]) for k, v in out.items()}
