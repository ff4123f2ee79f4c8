"""Inter-reader agreement statistics (pure numpy): Cohen's kappa (unweighted, linear or
quadratic weights), Fleiss' kappa, percent agreement, specific (per-class) agreement,
confusion matrices and bootstrap intervals that resample slides.

Labels are any hashable values (strings); a statistic that is undefined (every rating in
one category, so chance agreement is 1) is NaN, never a made-up 0 or 1.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

MIN_BOOTSTRAP_SLIDES = 5


def label_set(*ratings: Sequence) -> list:
    """The sorted union of the labels in ``ratings``."""
    return sorted({x for r in ratings for x in r}, key=str)


def confusion(a: Sequence, b: Sequence, labels: Sequence | None = None) -> np.ndarray:
    """Counts: rows are ``a``'s labels, columns ``b``'s, in ``labels`` order."""
    if len(a) != len(b):
        raise ValueError(f"two raters need the same number of ratings ({len(a)} != {len(b)})")
    labels = list(labels) if labels is not None else label_set(a, b)
    index = {x: i for i, x in enumerate(labels)}
    k = len(labels)
    ia = np.fromiter((index[x] for x in a), dtype=np.int64, count=len(a))
    ib = np.fromiter((index[x] for x in b), dtype=np.int64, count=len(b))
    return np.bincount(ia * k + ib, minlength=k * k).reshape(k, k)


def kappa_from_confusion(cm: np.ndarray, weights: str | None = None) -> float:
    """Cohen's kappa of a confusion matrix (the same as scikit-learn's
    ``cohen_kappa_score``); ``weights`` None, "linear" or "quadratic" (rows/columns are then
    ordered categories)."""
    cm = np.asarray(cm, dtype=np.float64)
    k = cm.shape[0]
    n = cm.sum()
    if n == 0:
        return float("nan")
    expected = np.outer(cm.sum(axis=1), cm.sum(axis=0)) / n
    if weights is None:
        w = 1.0 - np.eye(k)
    elif weights in ("linear", "quadratic"):
        d = np.abs(np.arange(k)[:, None] - np.arange(k)[None, :]).astype(np.float64)
        w = d if weights == "linear" else d ** 2
    else:
        raise ValueError(f"unknown kappa weights {weights!r}")
    den = float((w * expected).sum())
    if den == 0:
        return float("nan")
    return 1.0 - float((w * cm).sum()) / den


def cohen_kappa(a: Sequence, b: Sequence, labels: Sequence | None = None,
                weights: str | None = None) -> float:
    """Cohen's kappa of two raters' labels of the same items (``labels`` orders the
    categories, needed for weighted kappa)."""
    return kappa_from_confusion(confusion(a, b, labels), weights)


def percent_agreement(a: Sequence, b: Sequence) -> float:
    if len(a) != len(b):
        raise ValueError("two raters need the same number of ratings")
    return float(np.mean([x == y for x, y in zip(a, b, strict=True)])) if len(a) else float("nan")


def category_counts(ratings: Sequence[Sequence], labels: Sequence | None = None) -> np.ndarray:
    """Items x categories counts from raters x items labels (every rater rated every item)."""
    labels = list(labels) if labels is not None else label_set(*ratings)
    index = {x: i for i, x in enumerate(labels)}
    n_items = len(ratings[0]) if ratings else 0
    out = np.zeros((n_items, len(labels)), dtype=np.int64)
    for r in ratings:
        if len(r) != n_items:
            raise ValueError("every rater must rate every item")
        out[np.arange(n_items), [index[x] for x in r]] += 1
    return out


def pairwise_agreement(counts: np.ndarray) -> float:
    """Fleiss' observed agreement P-bar: over items, the share of pairs of ratings that
    agree (the percent agreement of several raters; two raters: the plain share)."""
    c = np.asarray(counts, dtype=np.float64)
    if c.ndim != 2 or c.shape[0] == 0:
        return float("nan")
    n = c.sum(axis=1)
    if np.any(n < 2):
        raise ValueError("pairwise agreement needs at least 2 ratings per item")
    return float((((c * c).sum(axis=1) - n) / (n * (n - 1))).mean())


def fleiss_kappa(counts: np.ndarray) -> float:
    """Fleiss' kappa (Fleiss 1971) of an items x categories matrix of how many raters put
    each item in each category; every item has the same number of raters (>= 2)."""
    c = np.asarray(counts, dtype=np.float64)
    if c.ndim != 2 or c.shape[0] == 0:
        return float("nan")
    n = c.sum(axis=1)
    if np.any(n != n[0]) or n[0] < 2:
        raise ValueError("Fleiss' kappa needs the same number (>= 2) of ratings per item")
    n = n[0]
    p_item = ((c * c).sum(axis=1) - n) / (n * (n - 1))
    p_bar = p_item.mean()
    p_cat = c.sum(axis=0) / c.sum()
    pe = float((p_cat ** 2).sum())
    if pe == 1.0:
        return float("nan")
    return float((p_bar - pe) / (1.0 - pe))


def specific_agreement(counts: np.ndarray) -> np.ndarray:
    """Per-category specific agreement from an items x categories count matrix: of the
    pairs of ratings that involve the category, the share where both raters chose it
    (two raters: 2 n_jj / (n_j. + n_.j)). NaN for a category nobody chose."""
    c = np.asarray(counts, dtype=np.float64)
    n = c.sum(axis=1, keepdims=True)
    num = (c * (c - 1)).sum(axis=0)
    den = (c * (n - 1)).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)


def bootstrap_interval(groups: np.ndarray, statistic: Callable[[np.ndarray], float],
                       resamples: int = 1000, seed: int = 0, level: float = 0.95
                       ) -> tuple[float, float] | None:
    """A percentile interval of ``statistic(item indices)`` over resamples of the groups
    (slides) with replacement; None with fewer than MIN_BOOTSTRAP_SLIDES groups.
    Resamples where the statistic is undefined (NaN) are left out."""
    groups = np.asarray(groups)
    names, inverse = np.unique(groups, return_inverse=True)
    if len(names) < MIN_BOOTSTRAP_SLIDES:
        return None
    members = [np.flatnonzero(inverse == g) for g in range(len(names))]
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(resamples):
        pick = rng.integers(0, len(names), size=len(names))
        v = statistic(np.concatenate([members[g] for g in pick]))
        if np.isfinite(v):
            values.append(v)
    if not values:
        return None
    lo, hi = np.percentile(values, [50 * (1 - level), 50 * (1 + level)])
    return float(lo), float(hi)
