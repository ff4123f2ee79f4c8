"""Evaluation metrics (scikit-learn): the seed's per-class table and more.

``compute_metrics`` returns a JSON-ready dict:
accuracy (with ``correct`` of ``n``), balanced_accuracy, macro / weighted precision, recall
and F1, per-class precision / recall / F1 / support, the confusion matrix (rows = true
class), expected calibration error (15 equal-width confidence bins), bootstrap 95% intervals
(resampling patients when they are known, else images), the benign/malignant roll-up (sums
of group probabilities) and, when patients are known, patient-level accuracy (mean
probabilities per patient, against the patient's majority label).

Averages: macro and weighted precision/recall/F1 are over *all* the bundle's classes
(``labels=range(len(classes))`` in scikit-learn; a class with no images and no predictions
counts 0), so the macro row is the mean of the per-class rows printed above it. Balanced
accuracy is scikit-learn's: mean recall over the classes present in the true labels.

Intervals: a bootstrap needs groups to resample; with fewer than ``MIN_GROUPS`` patients (or
images) no interval is given, and ``bootstrap.no_interval`` says why, rather than a
zero-width "95% CI".
"""

from __future__ import annotations

import numpy as np

from pvdesk.taxonomy import CLASS_NAMES, GROUPS, group_of, rollup

ECE_BINS = 15
MIN_GROUPS = 5  # fewer patients (or images) than this: no bootstrap interval
AVERAGES_NOTE = ("macro: the unweighted mean over the bundle's {n} classes (a class with no "
                 "images and no predictions counts 0); weighted: weighted by support; "
                 "balanced accuracy: mean recall over the classes present")


def quick_scores(y, probs, n_classes: int) -> dict:
    """accuracy and macro-F1 over all ``n_classes`` (for model selection)."""
    from sklearn.metrics import f1_score

    y = np.asarray(y)
    pred = np.asarray(probs).argmax(1)
    labels = list(range(n_classes))
    present = sorted(set(y.tolist()))  # macro over classes that are in this set
    return {"accuracy": float((pred == y).mean()) if len(y) else 0.0,
            "macro_f1": float(f1_score(y, pred, labels=present or labels, average="macro",
                                       zero_division=0)) if len(y) else 0.0}


def ece(y, probs, bins: int = ECE_BINS) -> float:
    probs = np.asarray(probs, dtype=np.float64)
    conf = probs.max(1)
    correct = probs.argmax(1) == np.asarray(y)
    edges = np.linspace(0.0, 1.0, bins + 1)
    total = 0.0
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        m = (conf > lo) & (conf <= hi) if lo > 0 else (conf >= lo) & (conf <= hi)
        if m.any():
            total += m.mean() * abs(correct[m].mean() - conf[m].mean())
    return float(total)


def _core(y, pred, labels) -> dict:
    import warnings

    from sklearn.metrics import (
        accuracy_score,
        balanced_accuracy_score,
        precision_recall_fscore_support,
    )

    out = {"accuracy": float(accuracy_score(y, pred))}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out["balanced_accuracy"] = float(balanced_accuracy_score(y, pred))
    for avg in ("macro", "weighted"):  # over every class of the bundle (module docstring)
        p, r, f, _ = precision_recall_fscore_support(y, pred, labels=list(labels), average=avg,
                                                     zero_division=0)
        out[f"{avg}_precision"], out[f"{avg}_recall"], out[f"{avg}_f1"] = (
            float(p), float(r), float(f))
    return out


def _bootstrap(y, pred, groups, n_boot: int, seed: int, labels) -> dict:
    """95% percentile intervals of accuracy, balanced accuracy and macro-F1 (empty with
    fewer than MIN_GROUPS groups: see :func:`no_interval`)."""
    units = np.unique(groups)
    if n_boot <= 0 or len(y) < 2 or len(units) < MIN_GROUPS:
        return {}
    rng = np.random.default_rng(seed)
    members = {u: np.flatnonzero(groups == u) for u in units}
    stats: dict[str, list[float]] = {"accuracy": [], "balanced_accuracy": [], "macro_f1": []}
    for _ in range(n_boot):
        pick = rng.choice(units, size=len(units), replace=True)
        idx = np.concatenate([members[u] for u in pick])
        c = _core(y[idx], pred[idx], labels)
        for k in stats:
            stats[k].append(c[k])
    return {k: [float(np.percentile(v, 2.5)), float(np.percentile(v, 97.5))]
            for k, v in stats.items()}


def compute_metrics(y, probs, classes: list[str], patients=None, n_boot: int = 1000,
                    seed: int = 0) -> dict:
    """All metrics for true class indices ``y`` and probabilities ``probs`` (N, C)."""
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    y = np.asarray(y, dtype=np.int64)
    probs = np.asarray(probs, dtype=np.float64)
    pred = probs.argmax(1)
    labels = list(range(len(classes)))
    m = {"n": int(len(y)), "classes": list(classes)}
    m.update(_core(y, pred, labels))
    p, r, f, s = precision_recall_fscore_support(y, pred, labels=labels, zero_division=0)
    m["per_class"] = {c: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]),
                          "support": int(s[i])} for i, c in enumerate(classes)}
    m["confusion"] = confusion_matrix(y, pred, labels=labels).tolist()
    m["ece"] = ece(y, probs)
    m["correct"] = int((pred == y).sum())
    m["averages"] = AVERAGES_NOTE.format(n=len(classes))
    known = patients is not None and all(patients)
    groups = np.asarray(patients if known else np.arange(len(y)).astype(str))
    unit = "patient" if known else "image"
    ci = _bootstrap(y, pred, groups, n_boot, seed, labels)
    m["bootstrap"] = {"n": n_boot, "unit": unit, "groups": int(len(np.unique(groups))),
                      "ci95": ci}
    why = no_interval(n_boot, len(np.unique(groups)), unit)
    if why:
        m["bootstrap"]["no_interval"] = why
    if _subtypes(classes):
        m["binary"] = _binary(y, probs, classes)
    if known:
        m["patient_level"] = _patients(y, probs, classes, list(patients))
    return m


def no_interval(n_boot: int, groups: int, unit: str) -> str | None:
    """Why a report gives no 95% interval, or None when it gives one."""
    if n_boot <= 0:
        return "no interval: the bootstrap was turned off (--bootstrap 0)"
    if groups < MIN_GROUPS:
        return (f"no interval: {groups} {unit}{'s' if groups != 1 else ''} are too few to "
                f"resample (at least {MIN_GROUPS} needed); the figures could be far off")
    return None


def _subtypes(classes) -> bool:
    """BreakHis subtypes, which roll up to benign/malignant (a custom taxonomy such as
    PCam's normal/tumor does not)."""
    return set(classes) != set(GROUPS) and set(classes) <= set(CLASS_NAMES)


def _binary(y, probs, classes) -> dict:
    """The benign/malignant roll-up of a subtype model."""
    from sklearn.metrics import confusion_matrix, roc_auc_score

    g = rollup(classes, probs)
    yt = np.array([GROUPS.index(group_of(classes[i])) for i in y])
    pred = g.argmax(1)
    out = _core(yt, pred, [0, 1])
    out["correct"], out["n"] = int((pred == yt).sum()), int(len(yt))
    out["confusion"] = confusion_matrix(yt, pred, labels=[0, 1]).tolist()
    out["classes"] = list(GROUPS)
    out["malignant_auc"] = (float(roc_auc_score(yt, g[:, 1])) if len(set(yt.tolist())) == 2
                            else None)
    return out


def _patients(y, probs, classes, patients) -> dict:
    ids = sorted(set(patients))
    pa = np.asarray(patients)
    yt, pp = [], []
    for pid in ids:
        idx = np.flatnonzero(pa == pid)
        yt.append(np.bincount(y[idx], minlength=len(classes)).argmax())
        pp.append(probs[idx].mean(0))
    yt, pp = np.asarray(yt), np.asarray(pp)
    out = {"n_patients": len(ids), "accuracy": float((pp.argmax(1) == yt).mean()),
           "correct": int((pp.argmax(1) == yt).sum())}
    if _subtypes(classes):
        g = rollup(classes, pp).argmax(1)
        gt = np.array([GROUPS.index(group_of(classes[i])) for i in yt])
        out["binary_accuracy"] = float((g == gt).mean())
    return out


def summary(m: dict, split: str | None = None) -> dict:
    """The few numbers that go into progress events and the bundle manifest."""
    out = {k: m.get(k) for k in ("n", "correct", "accuracy", "balanced_accuracy", "macro_f1",
                                 "weighted_f1", "ece")}
    out["split"] = split
    boot = m.get("bootstrap") or {}
    if (boot.get("ci95") or {}).get("accuracy"):
        out["accuracy_ci95"] = boot["ci95"]["accuracy"]
        out["ci_unit"] = boot.get("unit")
    elif boot.get("no_interval"):
        out["no_interval"] = boot["no_interval"]
    if "binary" in m:
        out["binary_accuracy"] = m["binary"]["accuracy"]
    if "patient_level" in m:
        out["patient_accuracy"] = m["patient_level"]["accuracy"]
    return out
