"""Agreement between the readers of a review store, and between each reader and each model
run: the figures of ``pvdesk review agreement`` and of the window's Team panel, as one
JSON-ready dict (:func:`analyse`).

Readers' *first* decisions are analysed by default (a blinded reading: later changes may
have seen other labels); ``use="current"`` analyses the decisions as they stand. Each figure
says on how many tiles it stands ("k of n"), and carries a 95% bootstrap interval over
slides where the tiles come from at least five slides.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from pvdesk.errors import PvdeskError
from pvdesk.review import agreement as ag
from pvdesk.review.team import ADJUDICATOR, consensus_counts

USES = ("first", "current")


def _num(v) -> float | None:
    return None if v is None or not math.isfinite(v) else round(float(v), 6)


def _interval(groups, stat, resamples, seed) -> dict:
    if resamples <= 0:
        return {"ci": None, "ci_note": "no interval: bootstrap turned off"}
    ci = ag.bootstrap_interval(np.asarray(groups), stat, resamples, seed)
    n = len(set(groups))
    if ci is None:
        note = (f"no interval: only {n} slide{'s' if n != 1 else ''}"
                if n < ag.MIN_BOOTSTRAP_SLIDES else "no interval: undefined in every resample")
        return {"ci": None, "ci_note": note}
    return {"ci": [_num(ci[0]), _num(ci[1])], "ci_note": f"95% bootstrap over {n} slides"}


class _Codes:
    """Labels as integer codes (for fast resampling)."""

    def __init__(self, labels):
        self.labels = list(labels)
        self.index = {x: i for i, x in enumerate(self.labels)}

    def of(self, values) -> np.ndarray:
        return np.fromiter((self.index[v] for v in values), dtype=np.int64, count=len(values))


def _kappa_stat(a: np.ndarray, b: np.ndarray, k: int, weights=None):
    def stat(idx):
        cm = np.bincount(a[idx] * k + b[idx], minlength=k * k).reshape(k, k)
        return ag.kappa_from_confusion(cm, weights)
    return stat


def _ranks(labels: list[str], order: list[str] | None, taxonomy) -> tuple[list[str], dict]:
    """(ordered categories, {label: rank}) for weighted kappa: ``order`` (labels or group
    names, lowest first), else the taxonomy's groups (benign < malignant)."""
    cats = list(order) if order else list(getattr(taxonomy, "groups", ()) or ())
    rank = {}
    for x in labels:
        if x in cats:
            rank[x] = cats.index(x)
        else:
            try:
                g = taxonomy.group_of(x) if taxonomy is not None else None
            except KeyError:
                g = None
            if g in cats:
                rank[x] = cats.index(g)
    return cats, rank


def _pair(a_name, b_name, da, db, slides, codes, ordered, resamples, seed) -> dict:
    both = sorted(set(da) & set(db))
    either = len(set(da) | set(db))
    la = [da[t].label for t in both]
    lb = [db[t].label for t in both]
    out = {"a": a_name, "b": b_name, "n": len(both), "of": either,
           "n_text": f"{len(both)} of {either} tiles (labelled by both)"}
    k = len(codes.labels)
    ca, cb = codes.of(la), codes.of(lb)
    groups = [slides[t] for t in both]
    cm = np.bincount(ca * k + cb, minlength=k * k).reshape(k, k)
    kap = _kappa_stat(ca, cb, k)
    out["kappa"] = _num(kap(np.arange(len(both)))) if both else None
    out["kappa_interval"] = _interval(groups, kap, resamples, seed) if both else None
    eq = (ca == cb).astype(np.float64)
    out["percent_agreement"] = _num(eq.mean()) if both else None
    out["percent_interval"] = (_interval(groups, lambda idx: float(eq[idx].mean()),
                                         resamples, seed) if both else None)
    out["confusion"] = {"labels": codes.labels, "rows": a_name, "columns": b_name,
                        "matrix": cm.tolist()}
    spec = ag.specific_agreement(ag.category_counts([la, lb], codes.labels)) if both else []
    out["per_class"] = {lab: {"specific_agreement": _num(v), "ratings": int(cm[i].sum()
                                                                       + cm[:, i].sum())}
                        for i, (lab, v) in enumerate(zip(codes.labels, spec, strict=False))
                        if cm[i].sum() + cm[:, i].sum()}
    cats, rank = ordered
    if len(cats) >= 2:
        keep = [i for i, t in enumerate(both) if la[i] in rank and lb[i] in rank]
        ra = np.array([rank[la[i]] for i in keep], dtype=np.int64)
        rb = np.array([rank[lb[i]] for i in keep], dtype=np.int64)
        stat = _kappa_stat(ra, rb, len(cats), "quadratic")
        out["weighted"] = {"order": cats, "weights": "quadratic", "n": len(keep),
                           "n_text": f"{len(keep)} of {len(both)} tiles (both labels ordered)",
                           "kappa": _num(stat(np.arange(len(keep)))) if keep else None,
                           "interval": (_interval([groups[i] for i in keep], stat, resamples,
                                                  seed) if keep else None)}
    return out


def _fleiss(names, by, slides, codes, resamples, seed) -> dict:
    common = sorted(set.intersection(*(set(by[r]) for r in names)))
    union = len(set.union(*(set(by[r]) for r in names)))
    ratings = [[by[r][t].label for t in common] for r in names]
    out = {"reviewers": list(names), "n": len(common), "of": union,
           "n_text": f"{len(common)} of {union} tiles (labelled by all {len(names)})"}
    if not common:
        return {**out, "kappa": None, "pairwise_agreement": None, "interval": None,
                "per_class": {}}
    counts = ag.category_counts(ratings, codes.labels)
    out["kappa"] = _num(ag.fleiss_kappa(counts))
    out["pairwise_agreement"] = _num(ag.pairwise_agreement(counts))
    out["interval"] = _interval([slides[t] for t in common],
                                lambda idx: ag.fleiss_kappa(counts[idx]), resamples, seed)
    spec = ag.specific_agreement(counts)
    out["per_class"] = {lab: {"specific_agreement": _num(v), "ratings": int(counts[:, i].sum())}
                        for i, (lab, v) in enumerate(zip(codes.labels, spec, strict=True))
                        if counts[:, i].sum()}
    return out


def _model(name, dec, run, predicted, slides, resamples, seed) -> dict:
    both = sorted(t for t in dec if t in predicted)
    lr = [dec[t].label for t in both]
    lm = [predicted[t] for t in both]
    codes = _Codes(ag.label_set(lr, lm))
    k = len(codes.labels)
    ca, cb = codes.of(lr), codes.of(lm)
    kap = _kappa_stat(ca, cb, k)
    eq = (ca == cb).astype(np.float64)
    return {"reviewer": name, "run_id": run.run_id, "model": run.model, "trained": run.trained,
            "n": len(both), "of": len(dec),
            "n_text": f"{len(both)} of {len(dec)} tiles (the reviewer's, predicted by the run)",
            "kappa": _num(kap(np.arange(len(both)))) if both else None,
            "interval": (_interval([slides[t] for t in both], kap, resamples, seed)
                         if both else None),
            "percent_agreement": _num(eq.mean()) if both else None}


def analyse(store, reviewers: list[str] | None = None, run_id: int | None = None,
            use: str = "first", order: list[str] | None = None, resamples: int = 1000,
            seed: int = 0) -> dict:
    """Every agreement figure of a store (see the module docstring). ``reviewers``: whose
    readings (default: every reader, adjudicators left out); ``run_id``: the tiles of one
    run, and that run alone for reviewer-vs-model (default: all runs); ``order``: ordered
    categories (labels or group names) for the quadratic-weighted kappa (default: the
    taxonomy's groups, benign < malignant)."""
    from pvdesk.taxonomy import Taxonomy

    if use not in USES:
        raise PvdeskError(f"unknown decisions {use!r}; use one of {', '.join(USES)}")
    runs = [store.run(run_id)] if run_id is not None else store.runs()
    roles = store.roles()
    by = store.decisions_by_reviewer(run_id, first=(use == "first"))
    if reviewers:
        missing = [r for r in reviewers if r not in roles]
        if missing:
            raise PvdeskError(f"{store.path}: no reviewer {missing[0]!r} (reviewers: "
                              f"{', '.join(sorted(roles)) or 'none'})")
        names = list(dict.fromkeys(reviewers))
    else:
        names = sorted(r for r in by if roles.get(r) != ADJUDICATOR)
    by = {r: by.get(r, {}) for r in names}
    slides = store.tile_slides()
    codes = _Codes(ag.label_set(*([d.label for d in by[r].values()] for r in names)))
    taxonomy = Taxonomy.of_run(runs[-1]) if runs else Taxonomy.breakhis()
    if order is not None:
        known = set(taxonomy.review_labels) | set(taxonomy.groups) | set(codes.labels)
        unknown = [x for x in order if x not in known]
        if unknown or len(set(order)) < 2 or len(set(order)) != len(order):
            raise PvdeskError(f"--order: {unknown[0]!r} is neither a label nor a group"
                              if unknown else "--order: give two or more distinct categories")
    ordered = _ranks(codes.labels, order, taxonomy)
    out = {"store": str(store.path), "decisions": use, "run_id": run_id,
           "reviewers": names, "roles": {r: roles.get(r, "reader") for r in names},
           "tiles_read": {r: len(by[r]) for r in names},
           "slides": len({slides[t] for r in names for t in by[r]}),
           "labels": codes.labels,
           "bootstrap": {"resamples": resamples, "seed": seed, "unit": "slide",
                         "min_slides": ag.MIN_BOOTSTRAP_SLIDES},
           "pairs": [_pair(a, b, by[a], by[b], slides, codes, ordered, resamples, seed)
                     for a, b in itertools.combinations(names, 2)],
           "fleiss": (_fleiss(names, by, slides, codes, resamples, seed)
                      if len(names) >= 3 else None),
           "models": [],
           "consensus": consensus_counts(store.decisions_by_reviewer(run_id), roles)}
    for run in runs:
        predicted = store.predicted(run.run_id)
        for r in names:
            out["models"].append(_model(r, by[r], run, predicted, slides, resamples, seed))
    return out
