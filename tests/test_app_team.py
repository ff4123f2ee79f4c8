"""pvdesk.app.team without a window: the acting reviewer's state (role, blinded reading,
the adjudicator's disputed tiles and readers' labels) and the Team panel's figures."""

from __future__ import annotations

import pytest
from review_support import fake_source, grid_tiles, record_fake_run
from sklearn.metrics import cohen_kappa_score

from pvdesk.app.team import load_team_state, panel_figures, save_reading_settings
from pvdesk.review.store import ReviewStore

LABELS = ("adenosis", "fibroadenoma", "ductal_carcinoma")


@pytest.fixture
def team_store(tmp_path):
    store = ReviewStore(tmp_path / "team.pvdb", reviewer="alice")
    src = fake_source(tmp_path / "s.svs")
    store.add_slide("slide-1", str(src.path), {})
    run = record_fake_run(store, src, grid_tiles(6, 4, 224), seed=1)
    ids = sorted(r.tile_id for r in store.tiles(run_id=run))
    a = [LABELS[i % 3] for i in range(len(ids))]
    b = [LABELS[(i // 4) % 3] for i in range(len(ids))]
    for name, labels in (("alice", a), ("bob", b)):
        store.reviewer = name
        for tid, lab in zip(ids, labels, strict=True):
            store.correct(tid, lab, run_id=run)
    store.reviewer = "alice"
    yield store, run, ids, a, b
    store.close()


def test_reader_state_and_blinded_settings(team_store):
    store, run, *_ = team_store
    s = load_team_state(store, run)
    assert (s.reviewer, s.role, s.blinded, s.disputed) == ("alice", "reader", False, None)
    assert s.filters() == {}
    save_reading_settings(store, True, "spatial", 5)
    s = load_team_state(store, run)
    assert s.blinded and (s.queue_order, s.queue_seed) == ("spatial", 5)
    assert s.filters() == {"order": "spatial", "seed": 5}
    assert ("alice", "reader") in s.reviewers and ("bob", "reader") in s.reviewers
    audited = [r for r in store.audit() if r.action == "setting"]
    assert len(audited) == 3
    save_reading_settings(store, True, "spatial", 5)  # nothing changed: nothing audited
    assert len([r for r in store.audit() if r.action == "setting"]) == 3
    with pytest.raises(ValueError, match="unknown blinded queue order"):
        save_reading_settings(store, True, "entropy", 5)


def test_adjudicator_sees_the_disputed_tiles_and_every_reader(team_store):
    store, run, ids, a, b = team_store
    save_reading_settings(store, True, "random", 1)
    store.set_role("carol", "adjudicator")
    store.reviewer = "carol"
    s = load_team_state(store, run)
    assert s.adjudicator and not s.blinded  # the project is blinded; the adjudicator is not
    want = {t for t, x, y in zip(ids, a, b, strict=True) if x != y}
    assert s.disputed == want == set(store.disputed(run))
    for t in want:
        i = ids.index(t)
        assert s.readers[t] == {"alice": a[i], "bob": b[i]}
    t = min(want)
    store.correct(t, "ductal_carcinoma", run_id=run)  # the consensus label
    assert load_team_state(store, run).disputed == want - {t}


def test_panel_figures_equal_scikit_learn(team_store):
    store, run, ids, a, b = team_store
    summary, rows, confusions = panel_figures(store.path, run, resamples=0).figures
    by = {r[0]: r for r in rows}
    kappa = by["Cohen's kappa, alice – bob"]
    assert kappa[1] == f"{cohen_kappa_score(a, b):.3f}"
    assert kappa[3] == f"{len(ids)} of {len(ids)} tiles (labelled by both)"
    assert "only 1 slide" in kappa[2] or "bootstrap turned off" in kappa[2]
    agree = sum(x == y for x, y in zip(a, b, strict=True)) / len(ids)
    assert by["Percent agreement, alice – bob"][1] == f"{100 * agree:.1f}%"
    assert by["Tiles labelled by bob"][1] == str(len(ids))
    for label in LABELS:  # specific agreement: 2 n_ii / (ratings of the class by both)
        both = sum(x == y == label for x, y in zip(a, b, strict=True))
        ratings = a.count(label) + b.count(label)
        row = by[f"Specific agreement on {label}, alice – bob"]
        assert row[1] == f"{2 * both / ratings:.3f}" and row[3] == f"{ratings} ratings"
    assert any(r[0].startswith("alice vs fake-model") for r in rows)
    ((title, labels, matrix),) = confusions
    assert title.startswith("alice (rows) × bob (columns)") and labels == sorted(LABELS)
    for i, x in enumerate(labels):
        for j, y in enumerate(labels):
            assert matrix[i][j] == sum(p == x and q == y for p, q in zip(a, b, strict=True))
    disputed = sum(x != y for x, y in zip(a, b, strict=True))
    assert f"{disputed} disputed" in summary and "2 readers" in summary


def _fleiss(ratings: list[list[str]]) -> float:
    """Fleiss' kappa from its definition (Fleiss 1971): subjects x raters labels."""
    cats = sorted({x for row in ratings for x in row})
    n = len(ratings[0])
    counts = [[row.count(c) for c in cats] for row in ratings]
    p_i = [(sum(k * k for k in c) - n) / (n * (n - 1)) for c in counts]
    p_j = [sum(c[j] for c in counts) / (len(ratings) * n) for j in range(len(cats))]
    p_bar, p_e = sum(p_i) / len(p_i), sum(p * p for p in p_j)
    return (p_bar - p_e) / (1 - p_e)


def test_three_readers_get_fleiss_kappa(team_store):
    store, run, ids, a, b = team_store
    c = [LABELS[(i * 7) % 3] for i in range(len(ids))]
    store.reviewer = "dan"
    for tid, lab in zip(ids, c, strict=True):
        store.correct(tid, lab, run_id=run)
    _, rows, _ = panel_figures(store.path, run, resamples=0).figures
    by = {r[0]: r for r in rows}
    fleiss = by["Fleiss' kappa, alice, bob, dan"]
    assert fleiss[1] == f"{_fleiss([list(t) for t in zip(a, b, c, strict=True)]):.3f}"
    assert fleiss[3] == f"{len(ids)} of {len(ids)} tiles (labelled by all 3)"
    assert "Cohen's kappa, bob – dan" in by and "Cohen's kappa, alice – dan" in by
