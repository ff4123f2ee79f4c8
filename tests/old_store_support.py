"""Review stores made as an older pvdesk version made them, for migration tests."""

from __future__ import annotations

import json

from pvdesk.review import schema
from pvdesk.review.migrations import MIGRATIONS
from pvdesk.review.sample import make_sample_store
from pvdesk.review.store import ReviewStore
from pvdesk.review.types import utc_now


def _old_add_run(self, bundle_name, bundle_version, manifest_hash, classes, device,
                 settings=None, trained=True, weights_sha256=""):
    """ReviewStore.add_run as versions before 4 wrote it (no weights_sha256 column)."""
    with self.transaction() as con:
        cur = con.execute(
            "INSERT INTO runs(bundle_name, bundle_version, manifest_hash, classes, device, "
            "settings, trained, created_at) VALUES (?,?,?,?,?,?,?,?)",
            (bundle_name, bundle_version or "", manifest_hash or "", json.dumps(list(classes)),
             device, json.dumps(settings or {}), int(bool(trained)), utc_now()))
        return int(cur.lastrowid)


def _old_runs(self):
    """ReviewStore.runs as versions before 4 read them: weights unknown."""
    from pvdesk.review.types import RunInfo

    with self._lock:
        rows = self.con.execute(
            "SELECT run_id, bundle_name, bundle_version, manifest_hash, classes, device, "
            "settings, trained, created_at FROM runs ORDER BY run_id").fetchall()
    out = [RunInfo(r[0], r[1], r[2], r[3], tuple(json.loads(r[4])), r[5], json.loads(r[6]),
                   bool(r[7]), r[8]) for r in rows]
    self._runs.update({r.run_id: r for r in out})
    return out


def old_sample_store(path, version: int, monkeypatch, **kw):
    """make_sample_store at schema ``version`` (< 4): (store, run_id, tile ids). The store
    is returned open at that version; close it before opening it with the current code."""
    assert version < 4, "versions 4 and later write runs with weights_sha256"
    with monkeypatch.context() as m:
        m.setattr(schema, "MIGRATIONS", MIGRATIONS[:version])
        m.setattr(schema, "SCHEMA_VERSION", version)
        m.setattr(ReviewStore, "add_run", _old_add_run)
        m.setattr(ReviewStore, "runs", _old_runs)
        return make_sample_store(path, **kw)
