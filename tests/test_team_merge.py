"""Merging reviewers' stores: nothing lost, idempotent, refuses different slides under one
id, atomic under kill -9; and `pvdesk review agreement` on a merged store."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.metrics import cohen_kappa_score

from pvdesk.cli import main
from pvdesk.review.merge import canonical_dump, merge_stores
from pvdesk.review.replay import replay_ops
from pvdesk.review.sample import make_sample_store
from pvdesk.review.store import ReviewStore

LABELS = ["adenosis", "fibroadenoma", "ductal_carcinoma", "lobular_carcinoma"]
N_TILES = 6


def _base(folder: Path, n_tiles: int = N_TILES, name: str = "base.pvdb"):
    store, run, ids = make_sample_store(folder / name, n_tiles=n_tiles, reviewer="setup")
    store.close()
    return run, ids


def _play(path: Path, run: int, ids: list[int], steps) -> None:
    """Apply (reviewer, action, tile, label) steps to the store at ``path``."""
    stores: dict[str, ReviewStore] = {}
    try:
        for who, action, tile, label in steps:
            if who not in stores:
                stores[who] = ReviewStore(path, reviewer=who)
            s = stores[who]
            if action == "correct":
                s.correct(ids[tile], label, run)
            elif action == "confirm":
                s.confirm(ids[tile], run)
            elif action == "undo":
                s.undo()
            else:
                s.redo()
    finally:
        for s in stores.values():
            s.close()


def _audit_content(path: Path) -> Counter:
    """Audit rows by content (tiles and runs by identity), as a multiset."""
    rows = Counter()
    for _, batch_rows, _ in canonical_dump(path)["audit"]:
        rows.update(repr(r[:10] + r[11:]) for r in batch_rows)  # without the ref identity
    return rows


def _steps(names):
    return st.lists(st.tuples(st.sampled_from(names),
                              st.sampled_from(["correct", "correct", "confirm", "undo", "redo"]),
                              st.integers(0, N_TILES - 1), st.sampled_from(LABELS)),
                    max_size=8)


@pytest.mark.slow
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(a_steps=_steps(["ana", "ben"]), b_steps=_steps(["cleo", "dan"]),
       shared=_steps(["ana", "cleo"]))
def test_merge_keeps_every_decision_and_audit_row_and_is_idempotent(a_steps, b_steps, shared):
    folder = Path(tempfile.mkdtemp())
    try:
        run, ids = _base(folder)
        _play(folder / "base.pvdb", run, ids, shared)  # history both copies share
        for name, steps in (("a.pvdb", a_steps), ("b.pvdb", b_steps)):
            shutil.copy(folder / "base.pvdb", folder / name)
            _play(folder / name, run, ids, steps)
        out = folder / "out.pvdb"
        merge_stores(out, [folder / "a.pvdb", folder / "b.pvdb"])
        with ReviewStore(out, readonly=True) as m:
            merged = m.decisions_by_reviewer()
            merged_first = m.decisions_by_reviewer(first=True)
            assert m.integrity_check() == "ok"
        for name, others in (("a.pvdb", b_steps), ("b.pvdb", a_steps)):
            # A reviewer who went on working in the other copy has their later decisions
            # there; everyone else's decisions in this copy are kept exactly (ids are equal:
            # the copies share the base).
            moved = {step[0] for step in others}
            with ReviewStore(folder / name, readonly=True) as s:
                for first, got in ((False, merged), (True, merged_first)):
                    for who, ds in s.decisions_by_reviewer(first=first).items():
                        if who not in moved:
                            assert got.get(who) == ds
                # the undo stacks are what the trail says, in the stores and merged
                ops = s.con.execute("SELECT batch_id, reviewer, state FROM ops").fetchall()
                assert replay_ops(s.audit()) == {b: (w, st) for b, w, st in ops}
            for who in {"ana", "ben", "cleo", "dan"} - moved:
                with ReviewStore(folder / name, reviewer=who, readonly=True) as s, \
                        ReviewStore(out, reviewer=who, readonly=True) as m:
                    assert (m.can_undo(), m.can_redo()) == (s.can_undo(), s.can_redo())
            assert not _audit_content(folder / name) - _audit_content(out)
        once = canonical_dump(out)
        merge_stores(out, [folder / "a.pvdb", folder / "b.pvdb"])
        assert canonical_dump(out) == once
        merge_stores(folder / "again.pvdb", [out, folder / "a.pvdb", folder / "b.pvdb"])
        assert canonical_dump(folder / "again.pvdb") == once
        assert not [p for p in os.listdir(folder) if ".merge-" in p]  # no temporary file
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_merge_keeps_roles_settings_diagnoses_and_both_runs(tmp_path):
    run, ids = _base(tmp_path)
    shutil.copy(tmp_path / "base.pvdb", tmp_path / "a.pvdb")
    with ReviewStore(tmp_path / "a.pvdb", reviewer="ana") as a:
        a.set_setting("blinded", True)
        a.set_role("dora", "adjudicator")
        a.set_diagnosis("slide-1", "benign", "looks benign")
        a.correct(ids[0], "adenosis", run)
    store, run_b, ids_b = make_sample_store(tmp_path / "b.pvdb", n_tiles=N_TILES,
                                            reviewer="ben", seed=5)
    store.correct(ids_b[0], "fibroadenoma", run_b)
    store.close()
    counts = merge_stores(tmp_path / "out.pvdb", [tmp_path / "a.pvdb", tmp_path / "b.pvdb"])
    assert counts["runs"] == 2 and counts["tiles"] == N_TILES and counts["slides"] == 1
    with ReviewStore(tmp_path / "out.pvdb", readonly=True) as m:
        assert m.settings() == {"blinded": True}
        assert dict(m.reviewers()) == {"ana": "reader", "ben": "reader", "dora": "adjudicator"}
        assert m.diagnosis("slide-1")[:2] == ("benign", "looks benign")
        assert m.disputed() == [ids[0]]  # the same tile: adenosis vs fibroadenoma
        assert len(m.runs()) == 2 and m.counts(run_b).total == N_TILES


def test_merge_refuses_two_different_slides_under_one_id(tmp_path, capsys):
    _base(tmp_path, name="a.pvdb")
    with ReviewStore(tmp_path / "b.pvdb", reviewer="x") as b:
        b.add_slide("slide-1", "/elsewhere/slide-1.svs", {"vendor": "synthetic", "width": 999,
                                                          "height": 16384, "mpp": 0.25})
    assert main(["review", "merge", str(tmp_path / "out.pvdb"), str(tmp_path / "a.pvdb"),
                 str(tmp_path / "b.pvdb")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "slide-1" in err and "width" in err
    assert not (tmp_path / "out.pvdb").exists()
    assert sorted(os.listdir(tmp_path)) == ["a.pvdb", "b.pvdb"]
    # the same slide from another folder (another machine) merges
    with ReviewStore(tmp_path / "c.pvdb", reviewer="x") as c:
        c.add_slide("slide-1", "/elsewhere/slide-1.svs", {"vendor": "synthetic", "mpp": 0.25})
    assert main(["review", "merge", str(tmp_path / "out.pvdb"), str(tmp_path / "a.pvdb"),
                 str(tmp_path / "c.pvdb")]) == 0
    for bad in (["review", "merge", str(tmp_path / "o.pvdb"), str(tmp_path / "none.pvdb")],
                ["review", "merge", str(tmp_path / "no/o.pvdb"), str(tmp_path / "a.pvdb")]):
        assert main(bad) == 2
        assert capsys.readouterr().err.count("\n") == 1


MERGE_CHILD = """
import sys
from pvdesk.review.merge import merge_stores
merge_stores(sys.argv[1], sys.argv[2:])
print("done", flush=True)
"""


@pytest.mark.slow
def test_kill_9_during_a_merge_leaves_out_absent_or_complete(tmp_path):
    run, ids = _base(tmp_path, n_tiles=3000)
    rng = random.Random(7)
    inputs = []
    for who in ("ana", "ben", "cleo"):
        p = tmp_path / f"{who}.pvdb"
        shutil.copy(tmp_path / "base.pvdb", p)
        with ReviewStore(p, reviewer=who) as s:
            for i in range(0, len(ids), 50):
                s.correct_many(ids[i:i + 50], rng.choice(LABELS), run)
        inputs.append(str(p))
    merge_stores(tmp_path / "reference.pvdb", inputs)
    expected = canonical_dump(tmp_path / "reference.pvdb")
    start = time.monotonic()
    merge_stores(tmp_path / "timing.pvdb", inputs)
    took = time.monotonic() - start
    script = tmp_path / "child.py"
    script.write_text(MERGE_CHILD)
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    outcomes = []
    for trial in range(4):
        out = tmp_path / f"out{trial}.pvdb"
        child = subprocess.Popen([sys.executable, str(script), str(out), *inputs],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        time.sleep(0.3 + rng.uniform(0.0, 1.5 * took))  # 0.3 s: python and pvdesk imports
        child.send_signal(signal.SIGKILL)
        child.communicate()
        if out.exists():
            assert canonical_dump(out) == expected
            outcomes.append("complete")
        else:
            outcomes.append("absent")
        # a later merge into the same OUT cleans the killed one's temporary file
        merge_stores(out, inputs)
        assert canonical_dump(out) == expected
        assert not [p for p in os.listdir(tmp_path) if p.startswith(f".{out.name}.merge-")]
    print(f"merge of 3 x 3000 tiles: {took:.2f} s; kills left OUT: {outcomes}")


def test_agreement_cli_reports_scikit_learns_kappa_on_first_decisions(tmp_path, capsys):
    run, ids = _base(tmp_path, n_tiles=40)
    rng = random.Random(3)
    first = {}
    for who in ("ana", "ben"):
        shutil.copy(tmp_path / "base.pvdb", tmp_path / f"{who}.pvdb")
        with ReviewStore(tmp_path / f"{who}.pvdb", reviewer=who) as s:
            for t in ids:
                s.correct(t, rng.choice(LABELS[:2]) if rng.random() < 0.5 else LABELS[2], run)
            first[who] = [s.decision(t).label for t in ids]
            s.correct(ids[0], LABELS[3], run)  # a later change: not analysed
    out = tmp_path / "merged.pvdb"
    assert main(["review", "merge", str(out), str(tmp_path / "ana.pvdb"),
                 str(tmp_path / "ben.pvdb")]) == 0
    assert main(["review", "agreement", str(out), "--out", str(tmp_path / "rep"),
                 "--resamples", "50"]) == 0
    printed = capsys.readouterr().out
    result = json.loads((tmp_path / "rep" / "agreement.json").read_text())
    (pair,) = result["pairs"]
    expected = cohen_kappa_score(first["ana"], first["ben"])
    assert pair["kappa"] == pytest.approx(expected, abs=1e-6)
    assert f"kappa {expected:.3f} on 40 of 40 tiles" in printed
    assert pair["kappa_interval"]["ci_note"] == "no interval: only 1 slide"
    assert sum(map(sum, pair["confusion"]["matrix"])) == 40
    report = (tmp_path / "rep" / "report.md").read_text()
    assert "40 of 40 tiles" in report and "no interval: only 1 slide" in report
    assert (tmp_path / "rep" / "confusion_ana_vs_ben.png").stat().st_size > 1000
    assert [m["reviewer"] for m in result["models"]] == ["ana", "ben"]
    current = main(["review", "agreement", str(out), "--out", str(tmp_path / "rep2"),
                    "--decisions", "current", "--resamples", "0"])
    assert current == 0
    second = json.loads((tmp_path / "rep2" / "agreement.json").read_text())["pairs"][0]
    changed = ["lobular_carcinoma"] + first["ana"][1:], ["lobular_carcinoma"] + first["ben"][1:]
    assert second["kappa"] == pytest.approx(cohen_kappa_score(*changed), abs=1e-6)


def test_merge_refuses_an_out_another_program_has_open(tmp_path, capsys):
    _base(tmp_path, name="a.pvdb")
    merge_stores(tmp_path / "out.pvdb", [tmp_path / "a.pvdb"])
    before = (tmp_path / "out.pvdb").read_bytes()
    with ReviewStore(tmp_path / "out.pvdb", reviewer="window") as open_elsewhere:
        open_elsewhere.set_setting("blinded", True)  # its -wal exists while it is open
        assert main(["review", "merge", str(tmp_path / "out.pvdb"),
                     str(tmp_path / "a.pvdb")]) == 2
        assert "open in another program" in capsys.readouterr().err
        assert open_elsewhere.setting("blinded") is True
    assert (tmp_path / "out.pvdb").read_bytes() != before  # the window's change, kept
    assert main(["review", "merge", str(tmp_path / "out.pvdb"), str(tmp_path / "a.pvdb")]) == 0
    with ReviewStore(tmp_path / "out.pvdb", readonly=True) as s:
        assert s.settings() == {"blinded": True}


def test_a_version_2_store_merges_through_an_upgraded_copy(tmp_path, monkeypatch):
    import hashlib

    from test_team_store import _v2_store

    run, ids = _v2_store(tmp_path / "v2.pvdb", monkeypatch)
    before = hashlib.sha256((tmp_path / "v2.pvdb").read_bytes()).hexdigest()
    store, run3, ids3 = make_sample_store(tmp_path / "v3.pvdb", n_tiles=4, reviewer="cleo")
    store.correct(ids3[1], "phyllodes_tumor", run3)
    store.close()
    out = tmp_path / "out.pvdb"
    assert main(["review", "merge", str(out), str(tmp_path / "v2.pvdb"),
                 str(tmp_path / "v3.pvdb")]) == 0
    assert hashlib.sha256((tmp_path / "v2.pvdb").read_bytes()).hexdigest() == before
    assert sorted(os.listdir(tmp_path)) == ["out.pvdb", "v2.pvdb", "v3.pvdb"]
    with ReviewStore(out, readonly=True) as m:
        labels = {r: {t: d.label for t, d in ds.items()}
                  for r, ds in m.decisions_by_reviewer().items()}
    # the same sample slide and grid in both: tile ids line up
    assert labels == {"ana": {ids[0]: "adenosis", ids[1]: "adenosis"},
                      "ben": {ids[1]: "fibroadenoma"}, "cleo": {ids3[1]: "phyllodes_tumor"}}
