"""Agreement statistics: Cohen's kappa against scikit-learn, Fleiss' kappa against a
published worked example, specific agreement, bootstrap intervals over slides."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score

from pvdesk.review import agreement as ag

LABELS = ["adenosis", "fibroadenoma", "ductal_carcinoma", "lobular_carcinoma", "non_tissue"]


@pytest.mark.parametrize("seed", range(25))
def test_cohen_kappa_equals_scikit_learn_on_random_pairs(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 200))
    a = list(rng.choice(LABELS, size=n))
    # b agrees with a part of the time, so kappa spans negative to near 1
    agree = rng.random(n) < rng.random()
    b = [x if k else str(rng.choice(LABELS)) for x, k in zip(a, agree, strict=True)]
    expected = cohen_kappa_score(a, b)
    got = ag.cohen_kappa(a, b)
    assert (np.isnan(got) and np.isnan(expected)) or got == pytest.approx(expected, abs=1e-12)
    for weights in ("linear", "quadratic"):  # ordered categories: the labels' list order
        expected = cohen_kappa_score(a, b, labels=LABELS, weights=weights)
        got = ag.cohen_kappa(a, b, labels=LABELS, weights=weights)
        assert (np.isnan(got) and np.isnan(expected)) or got == pytest.approx(expected, abs=1e-12)


def test_quadratic_kappa_on_an_ordered_grouping_equals_scikit_learn():
    rng = np.random.default_rng(7)
    order = ["benign", "uncertain", "malignant"]
    a = list(rng.choice(order, size=300))
    b = [x if rng.random() < 0.7 else str(rng.choice(order)) for x in a]
    assert ag.cohen_kappa(a, b, order, "quadratic") == pytest.approx(
        cohen_kappa_score(a, b, labels=order, weights="quadratic"), abs=1e-12)


def test_agreement_with_itself_is_one():
    a = ["adenosis", "fibroadenoma", "ductal_carcinoma", "adenosis"] * 5
    assert ag.cohen_kappa(a, a) == 1.0
    assert ag.cohen_kappa(a, a, LABELS, "quadratic") == 1.0
    assert ag.percent_agreement(a, a) == 1.0
    assert ag.fleiss_kappa(ag.category_counts([a, a, a])) == 1.0
    assert np.all(ag.specific_agreement(ag.category_counts([a, a]))[[0, 1, 2]] == 1.0)
    # one label only: chance agreement is 1 and kappa is undefined, not 1 or 0
    assert np.isnan(ag.cohen_kappa(["adenosis"] * 4, ["adenosis"] * 4))


# Fleiss' kappa worked example: 10 subjects, 14 raters, 5 categories (Wikipedia, "Fleiss'
# kappa", section "Worked example"; https://en.wikipedia.org/wiki/Fleiss%27_kappa), whose
# stated results are P-bar = 0.378, P-bar_e = 0.213 and kappa = 0.210.
WIKIPEDIA_TABLE = np.array([
    [0, 0, 0, 0, 14],
    [0, 2, 6, 4, 2],
    [0, 0, 3, 5, 6],
    [0, 3, 9, 2, 0],
    [2, 2, 8, 1, 1],
    [7, 7, 0, 0, 0],
    [3, 2, 6, 3, 0],
    [2, 5, 3, 2, 2],
    [6, 5, 2, 1, 0],
    [0, 2, 2, 3, 7],
])


def test_fleiss_kappa_reproduces_the_published_worked_example():
    kappa = ag.fleiss_kappa(WIKIPEDIA_TABLE)
    assert round(kappa, 3) == 0.210
    # the intermediate values of the example: p_j of the first column is 0.143
    p = WIKIPEDIA_TABLE.sum(axis=0) / WIKIPEDIA_TABLE.sum()
    assert [round(v, 3) for v in p] == [0.143, 0.200, 0.279, 0.150, 0.229]
    p_bar = (((WIKIPEDIA_TABLE ** 2).sum(axis=1) - 14) / (14 * 13)).mean()
    assert round(p_bar, 3) == 0.378 and round(float((p ** 2).sum()), 3) == 0.213
    assert round(ag.pairwise_agreement(WIKIPEDIA_TABLE), 3) == 0.378
    # two raters: the pairwise agreement is the percent agreement
    a, b = ["x", "y", "y", "z"], ["x", "y", "z", "z"]
    assert ag.pairwise_agreement(ag.category_counts([a, b])) == ag.percent_agreement(a, b)


def test_fleiss_with_two_raters_matches_scotts_pi_and_category_counts():
    a = ["x", "y", "y", "x", "z", "z", "x"]
    b = ["x", "y", "x", "x", "z", "y", "x"]
    counts = ag.category_counts([a, b])
    assert counts.sum(axis=1).tolist() == [2] * 7
    # Fleiss' kappa for two raters is Scott's pi: (po - pe) with pooled marginals
    po = np.mean([u == v for u, v in zip(a, b, strict=True)])
    pooled = counts.sum(axis=0) / counts.sum()
    pe = (pooled ** 2).sum()
    assert ag.fleiss_kappa(counts) == pytest.approx((po - pe) / (1 - pe))
    with pytest.raises(ValueError):
        ag.fleiss_kappa(np.array([[2, 0], [1, 0]]))


def test_specific_agreement_for_two_raters_is_2njj_over_marginals():
    a = ["x", "x", "y", "y", "y", "z"]
    b = ["x", "y", "y", "y", "z", "z"]
    cm = ag.confusion(a, b, ["x", "y", "z"])
    got = ag.specific_agreement(ag.category_counts([a, b], ["x", "y", "z"]))
    want = [2 * cm[j, j] / (cm[j].sum() + cm[:, j].sum()) for j in range(3)]
    assert got.tolist() == pytest.approx(want)


def test_bootstrap_needs_five_slides_and_brackets_the_estimate():
    rng = np.random.default_rng(3)
    a = rng.integers(0, 3, 400)
    b = np.where(rng.random(400) < 0.7, a, rng.integers(0, 3, 400))

    def stat(idx):
        return ag.kappa_from_confusion(np.bincount(a[idx] * 3 + b[idx], minlength=9)
                                       .reshape(3, 3))
    assert ag.bootstrap_interval(np.repeat(np.arange(4), 100), stat) is None
    slides = np.repeat(np.arange(8), 50)
    lo, hi = ag.bootstrap_interval(slides, stat, resamples=300, seed=1)
    k = stat(np.arange(400))
    assert lo < k < hi and hi - lo < 0.3
    assert ag.bootstrap_interval(slides, stat, resamples=300, seed=1) == (lo, hi)


def _team(tmp_path, slides: int):
    """Three readers over ``slides`` slides of 8 tiles; ben and cleo follow ana 70% of the
    time."""
    import random

    from pvdesk.review.store import ReviewStore
    from pvdesk.review.types import TilePrediction
    from pvdesk.taxonomy import CLASS_NAMES

    rng = random.Random(slides)
    store = ReviewStore(tmp_path / "t.pvdb", reviewer="ana")
    run = store.add_run("m", "1", "", list(CLASS_NAMES), "cpu", {})
    for k in range(slides):
        store.add_slide(f"s{k}", f"/x/{k}.svs", {})
        store.add_predictions(run, f"s{k}", [
            TilePrediction(f"/x/{k}.svs", 10 * i, 0, 10, 10, 0.5,
                           [rng.random() for _ in CLASS_NAMES]) for i in range(8)])
    tiles = sorted(store.tile_slides())
    first = {}
    for who in ("ana", "ben", "cleo"):
        store.reviewer = who
        for t in tiles:
            label = first["ana"][t] if who != "ana" and rng.random() < 0.7 else \
                rng.choice(LABELS[:4])
            store.correct(t, label, run)
            first.setdefault(who, {})[t] = label
        store.correct(tiles[0], "phyllodes_tumor", run)  # a later change, not analysed
    store.reviewer = "ana"
    return store, run, tiles, first


def test_analyse_matches_scikit_learn_and_fleiss_on_a_store(tmp_path):
    from pvdesk.review.agreement_analysis import analyse
    from pvdesk.taxonomy import group_of

    store, run, tiles, first = _team(tmp_path, slides=6)
    r = analyse(store, run_id=run, resamples=100)
    assert r["reviewers"] == ["ana", "ben", "cleo"] and r["slides"] == 6
    for p in r["pairs"]:
        a = [first[p["a"]][t] for t in tiles]
        b = [first[p["b"]][t] for t in tiles]
        assert p["kappa"] == pytest.approx(cohen_kappa_score(a, b), abs=1e-6)
        assert p["n_text"] == f"{len(tiles)} of {len(tiles)} tiles (labelled by both)"
        lo, hi = p["kappa_interval"]["ci"]
        assert lo <= p["kappa"] <= hi and "6 slides" in p["kappa_interval"]["ci_note"]
        ga, gb = [group_of(x) for x in a], [group_of(x) for x in b]
        assert p["weighted"]["kappa"] == pytest.approx(cohen_kappa_score(
            ga, gb, labels=["benign", "malignant"], weights="quadratic"), abs=1e-6)
    counts = ag.category_counts([[first[w][t] for t in tiles] for w in ("ana", "ben", "cleo")])
    assert r["fleiss"]["kappa"] == pytest.approx(ag.fleiss_kappa(counts), abs=1e-6)
    predicted = store.predicted(run)
    (m,) = [m for m in r["models"] if m["reviewer"] == "ben"]
    assert m["kappa"] == pytest.approx(cohen_kappa_score(
        [first["ben"][t] for t in tiles], [predicted[t] for t in tiles]), abs=1e-6)
    # an explicit order, and the current decisions instead of the first
    order = ["fibroadenoma", "adenosis", "ductal_carcinoma"]
    r2 = analyse(store, reviewers=["ana", "ben"], use="current", order=order, resamples=0)
    (p,) = r2["pairs"]
    cur = {w: store.decisions_by_reviewer()[w] for w in ("ana", "ben")}
    keep = [t for t in tiles if cur["ana"][t].label in order and cur["ben"][t].label in order]
    assert p["weighted"]["n"] == len(keep)
    assert p["weighted"]["kappa"] == pytest.approx(cohen_kappa_score(
        [cur["ana"][t].label for t in keep], [cur["ben"][t].label for t in keep],
        labels=order, weights="quadratic"), abs=1e-6)
    assert p["kappa_interval"]["ci_note"] == "no interval: bootstrap turned off"
    store.close()


def test_few_slides_get_no_interval_and_say_why(tmp_path):
    from pvdesk.review.agreement_analysis import analyse

    store, run, tiles, _ = _team(tmp_path, slides=3)
    r = analyse(store, run_id=run)
    assert all(p["kappa_interval"] == {"ci": None, "ci_note": "no interval: only 3 slides"}
               for p in r["pairs"])
    assert r["fleiss"]["interval"]["ci"] is None
    store.close()
