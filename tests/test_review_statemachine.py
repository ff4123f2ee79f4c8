"""Any sequence of reviewer actions keeps the store equal to a plain in-memory model, and
replaying the audit trail rebuilds every earlier state."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from pvdesk.review.sample import make_sample_store
from pvdesk.review.types import REVIEW_LABELS

N_TILES = 6
tiles = st.integers(0, N_TILES - 1)
labels = st.sampled_from(REVIEW_LABELS)


class Model:
    """Decisions as (status, label) plus an undo and a redo stack of bulk actions."""

    def __init__(self, predicted: dict[int, str]):
        self.predicted = predicted
        self.state: dict[int, tuple[str, str | None]] = {}
        self.done: list[list[tuple[int, tuple, tuple]]] = []
        self.undone: list[list[tuple[int, tuple, tuple]]] = []

    def get(self, t):
        return self.state.get(t, ("unreviewed", None))

    def set(self, t, value):
        if value[0] == "unreviewed":
            self.state.pop(t, None)
        else:
            self.state[t] = value

    def act(self, ids, label=None):
        op = []
        for t in dict.fromkeys(ids):
            p = self.predicted[t]
            new = ("confirmed", p) if label is None or label == p else ("corrected", label)
            op.append((t, self.get(t), new))
            self.set(t, new)
        self.done.append(op)
        self.undone.clear()

    def undo(self):
        if self.done:
            op = self.done.pop()
            for t, old, _ in reversed(op):
                self.set(t, old)
            self.undone.append(op)

    def redo(self):
        if self.undone:
            op = self.undone.pop()
            for t, _, new in op:
                self.set(t, new)
            self.done.append(op)


class ReviewMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="pvdesk-sm-"))
        self.store, self.run, self.ids = make_sample_store(self.dir / "s.pvdb", n_tiles=N_TILES)
        predicted = {i: r.predicted for i, r in enumerate(self.store.tiles())}
        self.model = Model(predicted)
        self.snapshots: list[tuple[int, dict]] = [(0, {})]

    def _snap(self):
        rows = self.store.audit()
        last = rows[-1].audit_id if rows else 0
        self.snapshots.append((last, {self.ids[t]: v for t, v in self.model.state.items()}))

    @rule(t=tiles)
    def confirm(self, t):
        self.store.confirm(self.ids[t])
        self.model.act([t])
        self._snap()

    @rule(t=tiles, label=labels)
    def correct(self, t, label):
        self.store.correct(self.ids[t], label)
        self.model.act([t], label)
        self._snap()

    @rule(ts=st.lists(tiles, min_size=1, max_size=N_TILES))
    def confirm_many(self, ts):
        self.store.confirm_many([self.ids[t] for t in ts])
        self.model.act(ts)
        self._snap()

    @rule(ts=st.lists(tiles, min_size=1, max_size=N_TILES), label=labels)
    def correct_many(self, ts, label):
        self.store.correct_many([self.ids[t] for t in ts], label)
        self.model.act(ts, label)
        self._snap()

    @rule()
    def undo(self):
        result = self.store.undo()
        assert (result is None) == (not self.model.done)
        self.model.undo()
        self._snap()

    @rule()
    def redo(self):
        result = self.store.redo()
        assert (result is None) == (not self.model.undone)
        self.model.redo()
        self._snap()

    @invariant()
    def store_equals_model(self):
        got = {t: d[:2] for t, d in self.store.decisions().items()}
        assert got == {self.ids[t]: v for t, v in self.model.state.items()}
        assert self.store.can_undo() == bool(self.model.done)
        assert self.store.can_redo() == bool(self.model.undone)
        assert self.store.counts().reviewed == len(self.model.state)

    def teardown(self):
        try:
            rows = self.store.audit()
            for audit_id, expected in self.snapshots:
                rebuilt = self.store.state_at(audit_id)
                assert {t: d[:2] for t, d in rebuilt.items()} == expected
            assert self.store.state_at() == self.store.decisions()
            assert [r.audit_id for r in rows] == list(range(1, len(rows) + 1))
        finally:
            self.store.close()
            shutil.rmtree(self.dir, ignore_errors=True)


ReviewMachine.TestCase.settings = settings(
    max_examples=40, stateful_step_count=30, deadline=None,
    suppress_health_check=[HealthCheck.too_slow])
TestReviewMachine = ReviewMachine.TestCase
