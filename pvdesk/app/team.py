"""Team review for the window, without Qt: who is reviewing and how (their role, the
project's blinded-reading settings, the adjudicator's disputed tiles and each reader's
label), the Team panel's agreement figures, and merging review projects.

Everything here reads or writes a store and so runs off the GUI thread (the review writer
thread, or a ``pvdesk.ui.background.Tasks`` job); the window only shows what it returns.
The statistics themselves are the core's (``pvdesk.review.agreement``), the same functions
``pvdesk review agreement`` reports with.
"""

from __future__ import annotations

from dataclasses import dataclass, field

READER, ADJUDICATOR = "reader", "adjudicator"
DEFAULT_SEED = 1


@dataclass(frozen=True)
class TeamState:
    """The acting reviewer's standing in a store and the project's reading settings."""

    reviewer: str
    role: str = READER
    blinded_setting: bool = False  # the project asks for blinded reading
    queue_order: str = "random"  # the blinded queue's order: "random" or "spatial"
    queue_seed: int = DEFAULT_SEED
    reviewers: tuple[tuple[str, str], ...] = ()  # every (name, role) the store knows
    disputed: frozenset[int] | None = None  # adjudicator: tiles where readers disagree
    readers: dict[int, dict[str, str]] = field(default_factory=dict)  # tile -> reader -> label

    @property
    def adjudicator(self) -> bool:
        return self.role == ADJUDICATOR

    @property
    def blinded(self) -> bool:
        """Blinded reading applies to readers; an adjudicator sees everything."""
        return self.blinded_setting and not self.adjudicator

    def filters(self) -> dict:
        """The queue settings this state imposes (see ReviewSession.set_filters)."""
        return {"order": self.queue_order, "seed": self.queue_seed} if self.blinded else {}


def _as_bool(value) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


def load_team_state(store, run_id: int | None = None) -> TeamState:
    """The acting reviewer's (``store.reviewer``) state in ``store``; for an adjudicator
    also the disputed tiles of ``run_id`` and each reader's label on them."""
    me = store.reviewer
    reviewers = tuple((str(n), str(r)) for n, r in store.reviewers())
    role = dict(reviewers).get(me, READER)
    order = store.setting("queue_order", "random")
    if order not in ("random", "spatial"):
        order = "random"
    try:
        seed = int(store.setting("queue_seed", DEFAULT_SEED))
    except (TypeError, ValueError):
        seed = DEFAULT_SEED
    state = TeamState(me, role, _as_bool(store.setting("blinded", False)), order, seed,
                      reviewers)
    if role != ADJUDICATOR or run_id is None:
        return state
    disputed = frozenset(int(t) for t in store.disputed(run_id))
    roles = dict(reviewers)
    readers: dict[int, dict[str, str]] = {}
    for name, decisions in store.decisions_by_reviewer(run_id).items():
        if roles.get(name, READER) == ADJUDICATOR:
            continue
        for tid, d in decisions.items():
            if tid in disputed and d.label:
                readers.setdefault(tid, {})[name] = d.label
    return TeamState(me, role, state.blinded_setting, order, seed, reviewers, disputed,
                     readers)


def save_reading_settings(store, blinded: bool, order: str, seed: int) -> None:
    """Store the project's blinded-reading settings (each change audited by the store)."""
    if order not in ("random", "spatial"):
        raise ValueError(f"unknown blinded queue order {order!r}; use random or spatial")
    for key, value in (("blinded", bool(blinded)), ("queue_order", order),
                       ("queue_seed", int(seed))):
        if store.setting(key, None) != value:
            store.set_setting(key, value)
