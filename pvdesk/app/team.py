"""Team review for the window, without Qt: who is reviewing and how (their role, the
project's blinded-reading settings, the adjudicator's disputed tiles and each reader's
label), the Team panel's agreement figures, and merging review projects.

Everything here reads or writes a store and so runs off the GUI thread (the review writer
thread, or a ``pvdesk.ui.background.Tasks`` job); the window only shows what it returns.
The statistics themselves are the core's (``pvdesk.review.agreement``), the same functions
``pvdesk review agreement`` reports with.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import NamedTuple

from pvdesk.review.team import ADJUDICATOR, QUEUE_ORDERS, READER, consensus_of

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
    settings = store.settings()  # one read of the project's settings
    order = settings.get("queue_order", "random")
    if order not in QUEUE_ORDERS:
        order = "random"
    try:
        seed = int(settings.get("queue_seed", DEFAULT_SEED))
    except (TypeError, ValueError):
        seed = DEFAULT_SEED
    state = TeamState(me, role, _as_bool(settings.get("blinded", False)), order, seed,
                      reviewers)
    if role != ADJUDICATOR or run_id is None:
        return state
    roles = dict(reviewers)
    by = store.decisions_by_reviewer(run_id)  # read once: the disputed tiles come from it too
    disputed = frozenset(int(t) for t in consensus_of(by, roles)[1])
    readers: dict[int, dict[str, str]] = {}
    for name, decisions in by.items():
        if roles.get(name, READER) == ADJUDICATOR:
            continue
        for tid, d in decisions.items():
            if tid in disputed and d.label:
                readers.setdefault(tid, {})[name] = d.label
    return replace(state, disputed=disputed, readers=readers)


def save_reading_settings(store, blinded: bool, order: str, seed: int) -> None:
    """Store the project's blinded-reading settings (each change audited by the store)."""
    if order not in QUEUE_ORDERS:
        raise ValueError(f"unknown blinded queue order {order!r}; use random or spatial")
    stored = store.settings()
    for key, value in (("blinded", bool(blinded)), ("queue_order", order),
                       ("queue_seed", int(seed))):
        if stored.get(key) != value:
            store.set_setting(key, value)


# -- the Team panel's figures -------------------------------------------------------------
def _value(v, percent: bool = False) -> str:
    if v is None:
        return "undefined"
    return f"{100 * v:.1f}%" if percent else f"{v:.3f}"


def _interval(iv, percent: bool = False) -> str:
    if not iv:
        return ""
    ci = iv.get("ci")
    if ci is None or None in ci:
        return iv.get("ci_note") or "no interval"
    return f"{_value(ci[0], percent)} to {_value(ci[1], percent)}"


def figure_rows(a: dict) -> tuple[str, list[tuple[str, str, str, str]]]:
    """(summary, rows of (figure, value, 95% interval, n)) from an agreement analysis
    (``pvdesk.review.agreement_analysis.analyse``, the dict of agreement.json)."""
    names = a.get("reviewers") or []
    rows: list[tuple[str, str, str, str]] = []
    for r in names:
        n = a["tiles_read"].get(r, 0)
        rows.append((f"Tiles labelled by {r}", str(n), "", f"{n} tiles"))
    for p in a.get("pairs") or []:
        pair = f"{p['a']} – {p['b']}"
        rows.append((f"Cohen's kappa, {pair}", _value(p["kappa"]),
                     _interval(p.get("kappa_interval")), p["n_text"]))
        rows.append((f"Percent agreement, {pair}", _value(p["percent_agreement"], True),
                     _interval(p.get("percent_interval"), True), p["n_text"]))
        for label, v in (p.get("per_class") or {}).items():
            rows.append((f"Specific agreement on {label}, {pair}",
                         _value(v["specific_agreement"]), "", f"{v['ratings']} ratings"))
        wk = p.get("weighted")
        if wk:
            rows.append((f"Quadratic-weighted kappa ({' < '.join(wk['order'])}), {pair}",
                         _value(wk["kappa"]), _interval(wk.get("interval")), wk["n_text"]))
    f = a.get("fleiss")
    if f:
        rows.append((f"Fleiss' kappa, {', '.join(f['reviewers'])}", _value(f["kappa"]),
                     _interval(f.get("interval")), f["n_text"]))
        for label, v in (f.get("per_class") or {}).items():
            rows.append((f"Specific agreement on {label}, all {len(f['reviewers'])} readers",
                         _value(v["specific_agreement"]), "", f"{v['ratings']} ratings"))
    for m in a.get("models") or []:
        model = m["model"] + ("" if m.get("trained", True) else " (UNTRAINED)")
        rows.append((f"{m['reviewer']} vs {model} (run {m['run_id']}): Cohen's kappa",
                     _value(m["kappa"]), _interval(m.get("interval")), m["n_text"]))
    c = a.get("consensus") or {}
    readers = ", ".join(names) or "none"
    summary = (f"<b>{len(names)} reader{'s' if len(names) != 1 else ''}</b> ({readers}) on "
               f"{a.get('slides', 0)} slide(s); {a.get('decisions', 'first')} decisions "
               "analysed. Consensus: "
               f"{c.get('adjudicated', 0)} adjudicated, {c.get('unanimous', 0)} unanimous, "
               f"{c.get('single', 0)} single-reader, <b>{c.get('disputed', 0)} disputed</b>.")
    if len(names) < 2:
        summary += " Agreement needs two or more readers."
    return summary, rows


class TeamFigures(NamedTuple):
    summary: str
    rows: list[tuple[str, str, str, str]]  # (figure, value, 95% interval, n)
    confusions: list[tuple[str, list[str], list[list[int]]]]  # (title, labels, matrix)


def confusions(a: dict) -> list[tuple[str, list[str], list[list[int]]]]:
    """Each pair's reviewer-vs-reviewer confusion matrix (rows: the first reader), with
    only the labels either of them used."""
    out = []
    for p in a.get("pairs") or []:
        c = p.get("confusion") or {}
        labels, m = c.get("labels") or [], c.get("matrix") or []
        used = [i for i in range(len(labels)) if sum(m[i]) + sum(r[i] for r in m)]
        if used:
            out.append((f"{p['a']} (rows) × {p['b']} (columns), {p['n_text']}",
                        [labels[i] for i in used], [[m[i][j] for j in used] for i in used]))
    return out


def _analysis(path, run_id: int | None, resamples: int) -> dict:
    from pvdesk.review.agreement_analysis import analyse
    from pvdesk.review.store import ReviewStore

    with ReviewStore(path, readonly=True) as store:
        return analyse(store, run_id=run_id, resamples=resamples)


class PanelFigures(NamedTuple):
    figures: TeamFigures
    decisions: int  # the readers' decisions the figures come from ("from N decisions")


def panel_figures(path, run_id: int | None = None, resamples: int = 200) -> PanelFigures:
    """The Team panel's figures for the store at ``path`` (opened read-only, its own
    connection), over the tiles of ``run_id``: the same analysis as ``pvdesk review
    agreement`` (fewer bootstrap resamples, for speed), and how many readers' decisions
    they come from."""
    a = _analysis(path, run_id, resamples)
    return PanelFigures(TeamFigures(*figure_rows(a), confusions(a)),
                        sum(a["tiles_read"].values()))


# -- File ▸ Merge review projects ---------------------------------------------------------
def merge_projects(out, inputs) -> str:
    """Merge review projects (``pvdesk.review.merge.merge_stores``, the same as
    ``pvdesk review merge``) and say what OUT now holds, in one line."""
    from pvdesk.review.merge import merge_stores

    counts = merge_stores(out, inputs)
    n = counts.pop("stores", len(inputs))
    held = ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in counts.items()
                     if isinstance(v, int))
    return (f"Merged {n} review store{'s' if n != 1 else ''} into {out}"
            + (f": {held}" if held else ""))
