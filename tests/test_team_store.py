"""Team review in the store (schema 3): decisions per (tile, reviewer), first decisions,
roles, settings, consensus and the migration of version-2 stores."""

from __future__ import annotations

import pytest
from old_store_support import old_sample_store

from pvdesk.errors import StoreError
from pvdesk.review import schema
from pvdesk.review.migrations import MIGRATIONS
from pvdesk.review.replay import replay, replay_by_reviewer, replay_ops
from pvdesk.review.sample import make_sample_store
from pvdesk.review.store import ReviewStore


@pytest.fixture
def team(tmp_path):
    store, run, ids = make_sample_store(tmp_path / "t.pvdb", n_tiles=8, reviewer="ana")
    yield store, run, ids
    store.close()


def _as(store, name):
    return ReviewStore(store.path, reviewer=name)


def test_two_reviewers_label_the_same_tiles_without_overwriting(team):
    store, run, ids = team
    store.correct_many(ids[:4], "fibroadenoma", run)
    with _as(store, "ben") as ben:
        ben.correct_many(ids[:4], "ductal_carcinoma", run)
        assert {d.label for d in ben.decisions().values()} == {"ductal_carcinoma"}
        assert ben.counts(run).reviewed == 4
    assert {d.label for d in store.decisions().values()} == {"fibroadenoma"}
    by = store.decisions_by_reviewer()
    assert set(by) == {"ana", "ben"}
    assert {t: d.label for t, d in by["ana"].items()} == dict.fromkeys(ids[:4], "fibroadenoma")
    assert {t: d.label for t, d in by["ben"].items()} == dict.fromkeys(ids[:4], "ductal_carcinoma")
    assert [r.label for r in store.queue(run, status="reviewed")] == ["fibroadenoma"] * 4
    assert store.reviewers() == [("ana", "reader"), ("ben", "reader")]
    # the audit trail keeps who did what
    assert {(r.reviewer, r.new_label) for r in store.audit()} == {
        ("ana", "fibroadenoma"), ("ben", "ductal_carcinoma")}


def test_undo_is_per_reviewer(team):
    store, run, ids = team
    store.correct(ids[0], "adenosis", run)
    with _as(store, "ben") as ben:
        ben.correct(ids[0], "phyllodes_tumor", run)
        ben.correct(ids[1], "phyllodes_tumor", run)
        assert store.undo() is not None  # ana's only action
        assert store.decision(ids[0]).status == "unreviewed"
        assert ben.decision(ids[0]).label == "phyllodes_tumor"  # untouched
        ben.undo()
        assert ids[1] not in ben.decisions() and ids[0] in ben.decisions()
        assert store.redo() is not None
        assert store.decision(ids[0]).label == "adenosis"


def test_first_decision_is_kept_and_withdrawn_by_undo(team):
    store, run, ids = team
    store.correct(ids[0], "adenosis", run)
    store.correct(ids[0], "fibroadenoma", run)  # a later change: the first stays
    first = store.decisions_by_reviewer(first=True)["ana"][ids[0]]
    now = store.decisions_by_reviewer()["ana"][ids[0]]
    assert (first.label, now.label) == ("adenosis", "fibroadenoma")
    assert first.reviewed_at <= now.reviewed_at
    store.undo()
    store.undo()  # back to unreviewed: the reading is withdrawn
    assert store.decisions_by_reviewer(first=True) == {}
    store.correct(ids[0], "tubular_adenoma", run)
    assert store.decisions_by_reviewer(first=True)["ana"][ids[0]].label == "tubular_adenoma"


def test_replay_equals_the_decisions_table_per_reviewer(team):
    store, run, ids = team
    store.correct_many(ids[:3], "adenosis", run)
    with _as(store, "ben") as ben:
        ben.confirm_many(ids[1:5], run)
        ben.correct(ids[2], "lobular_carcinoma", run)
        ben.undo()
        store.undo()
        store.redo()
        store.correct(ids[6], "mucinous_carcinoma", run)
        ben.record_imported([(ids[7], run, "corrected", "fibroadenoma", "cleo", "2020-01-01Z")])
    rows = store.audit()
    assert replay_by_reviewer(rows) == store.decisions_by_reviewer()
    assert replay_by_reviewer(rows, first=True) == store.decisions_by_reviewer(first=True)
    assert replay(rows, reviewer="ana") == store.decisions() == store.state_at()
    assert store.state_at(reviewer="cleo")[ids[7]].label == "fibroadenoma"
    ops = store.con.execute("SELECT batch_id, reviewer, state FROM ops").fetchall()
    assert replay_ops(rows) == {b: (w, st) for b, w, st in ops}
    with pytest.raises(ValueError, match="3 reviewers"):
        replay(rows)


def test_consensus_unanimous_single_disputed_and_adjudicated(team):
    store, run, ids = team
    store.correct_many(ids[:3], "adenosis", run)
    with _as(store, "ben") as ben:
        ben.correct_many(ids[:2], "adenosis", run)
        ben.correct(ids[2], "fibroadenoma", run)
    assert store.consensus(run) == {ids[0]: ("adenosis", "unanimous"),
                                    ids[1]: ("adenosis", "unanimous")}
    assert store.disputed(run) == [ids[2]]
    store.correct(ids[3], "phyllodes_tumor", run)
    assert store.consensus()[ids[3]] == ("phyllodes_tumor", "single")
    store.set_role("dora", "adjudicator")
    with _as(store, "dora") as dora:
        dora.correct(ids[2], "fibroadenoma", run)
    assert store.consensus(run)[ids[2]] == ("fibroadenoma", "adjudicated")
    assert store.disputed(run) == []
    assert ("dora", "adjudicator") in store.reviewers()
    last = [r for r in store.audit() if r.action == "role"][-1]
    assert (last.reviewer, last.comment, last.new_label) == ("ana", "dora", "adjudicator")
    with pytest.raises(StoreError, match="role"):
        store.set_role("dora", "boss")
    with pytest.raises(StoreError, match="reviewer name"):
        store.set_role("  ", "reader")


def test_settings_are_checked_and_audited(team):
    store, _, _ = team
    assert store.setting("blinded", False) is False
    store.set_setting("blinded", True)
    store.set_setting("queue_order", "random")
    store.set_setting("queue_seed", 1234)
    assert store.settings() == {"blinded": True, "queue_order": "random", "queue_seed": 1234}
    rows = [r for r in store.audit() if r.action == "setting"]
    assert [(r.comment, r.new_label) for r in rows] == [
        ("blinded", "true"), ("queue_order", '"random"'), ("queue_seed", "1234")]
    for key, bad in (("blinded", "yes"), ("queue_order", "entropy"), ("queue_seed", -1),
                     ("queue_seed", True), ("x", float("nan"))):
        with pytest.raises(StoreError):
            store.set_setting(key, bad)


def _v2_store(path, monkeypatch):
    """A version-2 store where ana labelled two tiles and ben then overwrote one of them
    (version 2 kept one decision per tile: the last writer's)."""
    with monkeypatch.context() as m:
        m.setattr(schema, "MIGRATIONS", MIGRATIONS[:2])
        m.setattr(schema, "SCHEMA_VERSION", 2)
        store, run, ids = old_sample_store(path, 2, monkeypatch, n_tiles=4, reviewer="ana")
        con = store.con
        audit = ("INSERT INTO audit(batch_id, at, reviewer, action, tile_id, run_id, old_status,"
                 " old_label, new_status, new_label) VALUES (?,?,?,?,?,?,?,?,?,?)")
        con.execute(audit, (1, "2025-01-01T00:00:00.000Z", "ana", "correct", ids[0], run,
                            "unreviewed", None, "corrected", "adenosis"))
        con.execute(audit, (1, "2025-01-01T00:00:00.000Z", "ana", "correct", ids[1], run,
                            "unreviewed", None, "corrected", "adenosis"))
        con.execute(audit, (2, "2025-01-02T00:00:00.000Z", "ben", "correct", ids[1], run,
                            "corrected", "adenosis", "corrected", "fibroadenoma"))
        con.execute("INSERT INTO decisions VALUES (?, 'corrected', 'adenosis', 'ana', "
                    "'2025-01-01T00:00:00.000Z', ?)", (ids[0], run))
        con.execute("INSERT INTO decisions VALUES (?, 'corrected', 'fibroadenoma', 'ben', "
                    "'2025-01-02T00:00:00.000Z', ?)", (ids[1], run))
        assert con.execute("PRAGMA user_version").fetchone()[0] == 2
        store.close()
    return run, ids


def test_a_version_2_store_migrates_keeping_its_decisions(tmp_path, monkeypatch):
    path = tmp_path / "v2.pvdb"
    run, ids = _v2_store(path, monkeypatch)
    with ReviewStore(path, reviewer="ana") as store:
        assert store.con.execute("PRAGMA user_version").fetchone()[0] == schema.SCHEMA_VERSION
        by = store.decisions_by_reviewer()
        # every decision is kept as its reviewer's, including the one ben overwrote
        assert {r: {t: d.label for t, d in ds.items()} for r, ds in by.items()} == {
            "ana": {ids[0]: "adenosis", ids[1]: "adenosis"}, "ben": {ids[1]: "fibroadenoma"}}
        assert by["ben"][ids[1]].reviewed_at == "2025-01-02T00:00:00.000Z"
        assert replay_by_reviewer(store.audit()) == by
        assert store.reviewers() == [("ana", "reader"), ("ben", "reader")]
        assert store.disputed() == [ids[1]]
        assert store.integrity_check() == "ok"
