"""The Team panel keeps itself current: it recomputes after a merge and after decisions are
stored, once for a burst of keys, never while hidden (then when shown), and an error keeps
the last figures with the error's line. Computations are counted by wrapping the core's
``analyse``, which ``pvdesk.app.team.panel_figures`` calls on the panel's thread."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest
from team_window_support import fake_model_env, label_tiles, open_project, run_model, switched
from ui_support import show_window

import pvdesk.review.agreement_analysis as agreement_analysis
from pvdesk.errors import PvdeskError
from pvdesk.review.store import ReviewStore

SHOTS = Path(os.environ.get("PVDESK_SHOTS", "/tmp/pvdesk-shots"))
REAL = agreement_analysis.analyse


@pytest.fixture
def env(monkeypatch, pvdesk_home):
    return fake_model_env(monkeypatch)


@pytest.fixture
def calls(monkeypatch):
    """Every analysis the panel runs, counted (a list of the stores' paths)."""
    seen: list[str] = []

    def counted(store, *a, **k):
        seen.append(str(store.path))
        return REAL(store, *a, **k)

    monkeypatch.setattr(agreement_analysis, "analyse", counted)
    return seen


def _window(qtbot, tmp_path, n_labelled=0):
    """alice's project with a model run; the first ``n_labelled`` tiles labelled 1."""
    w = show_window(qtbot)
    project = tmp_path / "alice.pvdb"
    open_project(qtbot, w, project, "alice")
    run_model(qtbot, w)
    w.review.set_mode(True)
    coords = sorted(((t.tile_x, t.tile_y) for t in w.review.session.all.values()),
                    key=lambda xy: (xy[1], xy[0]))
    if n_labelled:
        label_tiles(qtbot, w, coords[:n_labelled], ["1"] * n_labelled)
    return w, project, coords


def _idle(qtbot, team, timeout=30000):
    """No computation running or waiting (the debounce has run out)."""
    qtbot.waitUntil(lambda: not team.refresher.running and not team.refresher.timer.isActive()
                    and not team.figure_tasks.busy, timeout=timeout)


def _shown_and_computed(qtbot, w):
    team = w.review.team
    team.dock_widget.show()
    team.dock_widget.raise_()
    qtbot.waitUntil(lambda: "Computed at" in team.panel.status(), timeout=30000)
    _idle(qtbot, team)
    return team


def test_merge_updates_the_visible_panel_without_compute(qtbot, env, tmp_path, calls):
    w, project, coords = _window(qtbot, tmp_path, n_labelled=6)
    team = _shown_and_computed(qtbot, w)
    assert "from 6 decisions in alice.pvdb" in team.panel.status()
    assert not any(f.startswith("Cohen's kappa") for f, *_ in team.panel.rows())
    # bob's copy: the same tiles, 2 of the 6 read differently
    bob = tmp_path / "bob.pvdb"
    with sqlite3.connect(project) as src, sqlite3.connect(bob) as dst:
        src.backup(dst)  # (the open store's latest writes may still be in its WAL)
    with ReviewStore(bob, reviewer="bob") as store:
        run = store.runs()[-1].run_id
        ids = sorted(store.decisions_by_reviewer(run)["alice"])
        for i, tid in enumerate(ids):
            store.correct(tid, "fibroadenoma" if i < 2 else "adenosis", run_id=run)
    merged = tmp_path / "team.pvdb"
    before = len(calls)
    assert team.merge_to(merged, [project, bob])
    qtbot.waitUntil(lambda: "in team.pvdb" in team.panel.status(), timeout=30000)
    _idle(qtbot, team)
    assert team.last_merge.startswith("Merged 2 review stores"), team.last_merge
    assert "from 12 decisions in team.pvdb (the merge's output)" in team.panel.status()
    by = {f: (v, n) for f, v, _, n in team.panel.rows()}
    assert by["Cohen's kappa, alice – bob"][1] == "6 of 6 tiles (labelled by both)"
    assert len(calls) == before + 1 and calls[-1] == str(merged)
    assert "updating" not in team.panel.status()
    team.panel.grab().save(str(SHOTS / "team_panel_refresh.png"))
    w.grab().save(str(SHOTS / "team_refresh_1366x768.png"))


def test_a_burst_of_keys_is_one_or_two_computations(qtbot, env, tmp_path, calls):
    w, project, coords = _window(qtbot, tmp_path)
    team = _shown_and_computed(qtbot, w)
    assert "from 0 decisions" in team.panel.status() and team.refresher.delay_ms == 1500
    before = len(calls)
    label_tiles(qtbot, w, coords[:20], ["1"] * 20)  # 20 keys, waits for every ack
    assert "updating…" in team.panel.status()  # pending: the debounce has not run out
    team.panel.grab().save(str(SHOTS / "team_panel_updating.png"))
    qtbot.waitUntil(lambda: "from 20 decisions" in team.panel.status(), timeout=30000)
    _idle(qtbot, team)
    assert 1 <= len(calls) - before <= 2, calls
    assert "updating" not in team.panel.status()
    assert {f: v for f, v, *_ in team.panel.rows()}["Tiles labelled by alice"] == "20"


def test_a_hidden_panel_computes_nothing_until_shown(qtbot, env, tmp_path, calls):
    w, project, coords = _window(qtbot, tmp_path, n_labelled=2)
    team = _shown_and_computed(qtbot, w)
    assert "from 2 decisions" in team.panel.status()
    team.dock_widget.hide()
    before = len(calls)
    label_tiles(qtbot, w, coords[2:5], ["1"] * 3)
    qtbot.wait(2 * team.refresher.delay_ms)
    assert len(calls) == before and team.refresher.stale  # nothing while hidden
    team.dock_widget.show()
    team.dock_widget.raise_()
    qtbot.waitUntil(lambda: "from 5 decisions" in team.panel.status(), timeout=30000)
    _idle(qtbot, team)
    assert len(calls) == before + 1


def test_an_error_keeps_the_last_figures_and_says_so(qtbot, env, tmp_path, monkeypatch):
    w, project, coords = _window(qtbot, tmp_path, n_labelled=3)
    team = _shown_and_computed(qtbot, w)
    rows = team.panel.rows()
    assert rows and "from 3 decisions" in team.panel.status()

    def broken(store, *a, **k):
        raise PvdeskError(f"{store.path}: the analysis failed")

    monkeypatch.setattr(agreement_analysis, "analyse", broken)
    label_tiles(qtbot, w, coords[3:4], ["1"])
    qtbot.waitUntil(lambda: "Not computed" in team.panel.status(), timeout=30000)
    _idle(qtbot, team)
    line = team.panel.status()
    assert "the analysis failed" in line and "alice.pvdb" in line
    assert "Shown: computed at" in line and "from 3 decisions" in line  # which figures stay
    assert team.panel.rows() == rows and team.panel.compute.isEnabled()
    assert "Tiles labelled by alice: 3" in team.panel.figures.toPlainText()
    team.panel.grab().save(str(SHOTS / "team_panel_error.png"))
    monkeypatch.setattr(agreement_analysis, "analyse", REAL)
    assert team.compute()  # the button: computed now, the error line gone
    qtbot.waitUntil(lambda: "Computed at" in team.panel.status()
                    and "from 4 decisions" in team.panel.status(), timeout=30000)


def test_switching_reviewer_recomputes_the_shown_panel(qtbot, env, tmp_path, calls):
    w, project, coords = _window(qtbot, tmp_path, n_labelled=2)
    team = _shown_and_computed(qtbot, w)
    before = len(calls)
    switched(qtbot, w, "bob")
    qtbot.waitUntil(lambda: len(calls) == before + 1, timeout=30000)  # no key pressed
    _idle(qtbot, team)
    assert len(calls) == before + 1
    label_tiles(qtbot, w, coords[:2], ["2", "2"])
    qtbot.waitUntil(lambda: "from 4 decisions" in team.panel.status(), timeout=30000)
    _idle(qtbot, team)
    assert len(calls) == before + 2, calls
    assert any(f == "Cohen's kappa, alice – bob" for f, *_ in team.panel.rows())


class _Owner:
    """A stand-in computation for the Refresher: started, then finished by the test."""

    def __init__(self):
        self.started = 0
        self.pending: list[bool] = []

    def start(self) -> bool:
        self.started += 1
        return True


def test_changes_during_a_computation_get_exactly_one_more(qtbot):
    from pvdesk.ui.team_refresh import Refresher

    o = _Owner()
    r = Refresher(o.start, o.pending.append, delay_ms=50)
    r.changed()  # hidden: nothing, stale
    qtbot.wait(120)
    assert o.started == 0 and r.stale and not r.pending
    r.set_visible(True)  # shown: computed at once
    qtbot.waitUntil(lambda: o.started == 1, timeout=2000)
    assert r.running and r.pending and o.pending[-1]
    for _ in range(5):  # a burst during the computation
        r.changed()
        qtbot.wait(5)
    qtbot.wait(120)  # the burst's delay runs out while the first is still running
    assert o.started == 1
    r.finished()
    assert o.started == 2  # exactly one more, straight after
    r.finished()
    qtbot.wait(120)
    assert o.started == 2 and not r.pending and o.pending[-1] is False
    r.force()  # the Compute button: now, without the delay
    assert o.started == 3
    r.force()  # pressed again while it runs: once more after it
    r.finished()
    assert o.started == 4
    r.finished()
    r.set_visible(False)
    r.force()  # Compute shows the panel; forced even before it is visible
    assert o.started == 5
