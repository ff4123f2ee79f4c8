"""The review store: slides, model runs, tile predictions, reviewer decisions and an
append-only audit trail in one SQLite file. See :class:`pvdesk.review.store.ReviewStore`."""

from pvdesk.review.replay import replay
from pvdesk.review.store import ReviewStore, default_reviewer
from pvdesk.review.types import (
    CONFIRMED,
    CORRECTED,
    REVIEW_LABELS,
    STATUSES,
    UNREVIEWED,
    AuditRow,
    Counts,
    Decision,
    RunInfo,
    TilePrediction,
    TileRecord,
)

__all__ = [
    "CONFIRMED", "CORRECTED", "REVIEW_LABELS", "STATUSES", "UNREVIEWED", "AuditRow", "Counts",
    "Decision", "ReviewStore", "RunInfo", "TilePrediction", "TileRecord", "default_reviewer", "replay",
]
