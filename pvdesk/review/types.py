"""Plain records that go in and out of the review store.

Nothing here touches SQLite; the store, the queue, the exporters and the GUI share these.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, NamedTuple

from pvdesk.taxonomy import CLASS_NAMES, NON_TISSUE, UNCERTAIN

UNREVIEWED = "unreviewed"
CONFIRMED = "confirmed"
CORRECTED = "corrected"
STATUSES = (UNREVIEWED, CONFIRMED, CORRECTED)

# Labels a reviewer may give a tile: the 8 subtypes, non-tissue / artefact, uncertain.
REVIEW_LABELS: tuple[str, ...] = CLASS_NAMES + (NON_TISSUE, UNCERTAIN)

# Audit actions.
ACTIONS = ("confirm", "correct", "undo", "redo", "import", "diagnosis")


@dataclass
class TilePrediction:
    """One tile (or patch image) and the model's probabilities for it.

    ``tile_x .. tile_h`` are level-0 pixels, or all None for a patch image, whose identity
    is then its ``source`` path. ``probs`` follow the run's class order. ``embedding`` is
    optional and stored as float32 bytes.
    """

    source: str
    tile_x: int | None
    tile_y: int | None
    tile_w: int | None
    tile_h: int | None
    mpp: float | None
    probs: Sequence[float]
    embedding: Any = None
    patch_path: str | None = None
    folder_class: str | None = None

    @property
    def has_coords(self) -> bool:
        return self.tile_x is not None


def tile_key(source: str, x, y, w, h) -> str:
    """The identity of a tile within its slide: its coordinates, or its path for a patch."""
    if x is None:
        return f"patch:{source}"
    return f"{int(x)},{int(y)},{int(w)},{int(h)}"


class Decision(NamedTuple):
    status: str
    label: str | None
    reviewer: str | None
    reviewed_at: str | None


NO_DECISION = Decision(UNREVIEWED, None, None, None)


class Counts(NamedTuple):
    reviewed: int
    total: int
    corrected: int


@dataclass(frozen=True)
class RunInfo:
    run_id: int
    bundle_name: str
    bundle_version: str
    manifest_hash: str
    classes: tuple[str, ...]
    device: str
    settings: dict
    trained: bool
    created_at: str
    weights_sha256: str = ""  # its bundle's weights sha256 ("" when unknown or none)

    @property
    def model_sha(self) -> str:
        """The CSV's ``model_sha256`` cell: the first 16 hex characters of the weights sha256
        ("" when the run's bundle had no weights file, or the run predates the record)."""
        return (self.weights_sha256 or "")[:MODEL_SHA_CHARS]

    @property
    def model(self) -> str:
        """The CSV's ``model`` cell: bundle name and version."""
        return model_label(self.bundle_name, self.bundle_version)


UNTRAINED_TAG = " (UNTRAINED)"
MODEL_SHA_CHARS = 16  # a CSV's model_sha256 cell: this many hex characters of the sha256


def status_for_run(rec) -> str:
    """A tile's review status as seen from the run of ``rec``: a decision holds the
    reviewer's label, whichever run was on screen when it was made, so a run "confirmed" it
    only where this run predicted that label, and it "corrected" this run otherwise."""
    if rec.status not in (CONFIRMED, CORRECTED) or not rec.label:
        return rec.status
    return CONFIRMED if rec.label == rec.predicted else CORRECTED


def model_label(name: str, version: str, trained: bool = True) -> str:
    """"name@version", with " (UNTRAINED)" after it for an untrained model (CSV columns)."""
    text = f"{name}@{version}" if version else name
    return text if trained else text + UNTRAINED_TAG


def split_untrained(model: str) -> tuple[str, bool]:
    """(the model label without the untrained tag, trained?) of a CSV model cell."""
    if model.endswith(UNTRAINED_TAG):
        return model[:-len(UNTRAINED_TAG)], False
    return model, True


@dataclass(frozen=True)
class TileRecord:
    """A tile with one run's prediction and the tile's current review decision."""

    tile_id: int
    slide_id: str
    source: str
    tile_x: int | None
    tile_y: int | None
    tile_w: int | None
    tile_h: int | None
    mpp: float | None
    run_id: int
    classes: tuple[str, ...]
    probs: tuple[float, ...]
    predicted: str
    confidence: float
    entropy: float
    margin: float
    status: str = UNREVIEWED
    label: str | None = None
    reviewer: str | None = None
    reviewed_at: str | None = None
    patch_path: str | None = None
    folder_class: str | None = None
    model: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def coords(self) -> tuple[int, int, int, int] | None:
        if self.tile_x is None:
            return None
        return (self.tile_x, self.tile_y, self.tile_w, self.tile_h)

    @property
    def shown_label(self) -> str:
        """The reviewed label when reviewed, else the prediction."""
        return self.label if self.status != UNREVIEWED and self.label else self.predicted


@dataclass(frozen=True)
class AuditRow:
    audit_id: int
    batch_id: int
    at: str
    reviewer: str
    action: str
    tile_id: int | None
    slide_id: str | None
    run_id: int | None
    old_status: str | None
    old_label: str | None
    new_status: str | None
    new_label: str | None
    ref_batch: int | None = None
    comment: str | None = None


def uncertainty(probs: Sequence[float]) -> tuple[str | int, float, float, float]:
    """(arg-max index, confidence, normalised entropy in [0, 1], top-2 margin)."""
    p = [float(v) for v in probs]
    if not p:
        raise ValueError("empty probability vector")
    best = max(range(len(p)), key=p.__getitem__)
    top = sorted(p, reverse=True)
    margin = top[0] - (top[1] if len(top) > 1 else 0.0)
    total = sum(v for v in p if v > 0)
    ent = 0.0
    if total > 0 and len(p) > 1:
        for v in p:
            if v > 0:
                q = v / total
                ent -= q * math.log(q)
        ent /= math.log(len(p))
    return best, top[0], ent, margin


def utc_now() -> str:
    """UTC ISO-8601 with milliseconds and a ``Z``."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
