"""The review store against hostile or unlucky files: errors are one-line StoreErrors, a file
that is not ours is never written, read-only stores can still be read, and a full disk is
reported as such (never hidden behind "cannot rollback")."""

from __future__ import annotations

import os
import shutil
import sqlite3
import threading

import pytest

from pvdesk.errors import StoreError
from pvdesk.review import ReviewStore
from pvdesk.review.sample import make_sample_store


@pytest.fixture
def store_file(tmp_path):
    path = tmp_path / "s.pvdb"
    store, run, ids = make_sample_store(path, n_tiles=30)
    store.close()
    return path, run, ids


def _one_line(exc) -> str:
    text = str(exc.value)
    assert "\n" not in text
    return text


def test_disk_full_is_reported_and_never_masked_by_rollback(store_file):
    path, run, ids = store_file
    with ReviewStore(path, reviewer="tester") as store:
        pages = store.con.execute("PRAGMA page_count").fetchone()[0]
        store.con.execute(f"PRAGMA max_page_count={pages}")  # the disk is now "full"
        big = "x" * 20000
        for _ in range(3):  # every later action still says what is wrong
            with pytest.raises(StoreError) as err:
                store.set_diagnosis("slide-1", "ductal_carcinoma", big * 20)
            text = _one_line(err)
            assert "disk is full" in text and "rollback" not in text and str(path) in text
            assert not store.con.in_transaction
        store.con.execute(f"PRAGMA max_page_count={pages * 100}")
        store.confirm(ids[0])  # space again: the store works on
        assert store.decision(ids[0])[0] == "confirmed"
        assert store.integrity_check() == "ok"


def test_rollback_only_inside_a_transaction(store_file, monkeypatch):
    path, run, ids = store_file
    with ReviewStore(path) as store:
        with pytest.raises(RuntimeError, match="boom"), store.transaction() as con:
            con.execute("INSERT INTO slides(slide_id, path, added_at) VALUES ('x', 'x', 'now')")
            raise RuntimeError("boom")
        assert not any(s["slide_id"] == "x" for s in store.slides())
        with pytest.raises(StoreError, match="UNIQUE"), store.transaction() as con:
            con.execute("INSERT INTO slides(slide_id, path, added_at) VALUES ('x', 'x', 'now')")
            con.execute("COMMIT")  # the transaction ends early ...
            con.execute("INSERT INTO slides(slide_id, path, added_at) VALUES ('x', 'x', 'now')")
        # ... and the failure is the real one, not "cannot rollback - no transaction"


@pytest.mark.parametrize("kind", ["empty", "random", "text", "foreign", "empty-sqlite",
                                  "truncated"])
def test_files_that_are_not_ours_are_refused_untouched(tmp_path, store_file, kind):
    path = tmp_path / f"{kind}.pvdb"
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "random":
        path.write_bytes(os.urandom(8192))
    elif kind == "text":
        path.write_text("just some notes\n" * 100)
    elif kind == "foreign":
        con = sqlite3.connect(path)
        con.execute("CREATE TABLE t(x)")
        con.close()
    elif kind == "empty-sqlite":
        con = sqlite3.connect(path)
        con.execute("PRAGMA user_version=0")
        con.execute("VACUUM")
        con.close()
    else:
        path.write_bytes(store_file[0].read_bytes()[:50])
    before = path.read_bytes()
    for kwargs in ({}, {"create": False}, {"readonly": True}):
        with pytest.raises(StoreError) as err:
            ReviewStore(path, **kwargs)
        assert str(path) in _one_line(err)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["s.pvdb", path.name])


def test_bit_flipped_store_fails_with_one_line(tmp_path, store_file):
    path, run, ids = store_file
    data = bytearray(path.read_bytes())
    page = 4096
    failures = 0
    for i, offset in enumerate(range(page + 100, len(data), 997)):
        flipped = bytearray(data)
        flipped[offset] ^= 0xFF
        bad = tmp_path / f"flip{i}.pvdb"
        bad.write_bytes(bytes(flipped))
        before = bad.read_bytes()
        try:
            with ReviewStore(bad, readonly=True) as store:
                list(store.tiles())
                store.slides()
                store.decisions()
        except StoreError as exc:
            assert "\n" not in str(exc) and str(bad) in str(exc)
            failures += 1
        assert bad.read_bytes() == before
    assert failures > 0


def test_fifo_is_refused_without_blocking(tmp_path):
    if not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs here")
    fifo = tmp_path / "pipe.pvdb"
    os.mkfifo(fifo)
    done = []

    def attempt():
        for kwargs in ({}, {"readonly": True}):
            try:
                ReviewStore(fifo, **kwargs)
            except StoreError as exc:
                done.append(str(exc))

    t = threading.Thread(target=attempt, daemon=True)
    t.start()
    t.join(10)
    assert not t.is_alive(), "opening a FIFO as a store blocked"
    assert len(done) == 2 and all("not a regular file" in d for d in done)


def test_folder_is_refused(tmp_path):
    with pytest.raises(StoreError, match="is a folder"):
        ReviewStore(tmp_path)


def test_new_store_never_exists_half_made(tmp_path, monkeypatch):
    from pvdesk.review import schema

    path = tmp_path / "new.pvdb"

    def broken(con, where):
        raise StoreError(f"{where}: the disk is full")

    monkeypatch.setattr(schema, "_migrate", broken)
    with pytest.raises(StoreError, match="disk is full"):
        ReviewStore(path)
    assert list(tmp_path.iterdir()) == []  # neither the store nor a temporary file
    monkeypatch.undo()
    with ReviewStore(path) as store:
        assert store.runs() == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new.pvdb"]


@pytest.mark.parametrize("access", ["as-is", "no-write-access"])
def test_read_only_store_reads_and_refuses_writes(tmp_path, store_file, monkeypatch, access):
    path, run, ids = store_file
    if access == "no-write-access":  # what a non-root user sees in a read-only folder
        from pvdesk.review import schema

        monkeypatch.setattr(schema.os, "access", lambda p, mode: not mode & os.W_OK)
    folder = tmp_path / "ro"
    folder.mkdir()
    ro = folder / "s.pvdb"
    shutil.copy(path, ro)
    before = ro.read_bytes()
    os.chmod(ro, 0o444)
    os.chmod(folder, 0o555)
    try:
        with ReviewStore(ro, readonly=True) as store:
            assert len(list(store.tiles())) == 30
            assert store.counts(run).total == 30
            with pytest.raises(StoreError) as err:
                store.confirm(ids[0])
            assert "read-only" in _one_line(err)
        if access == "as-is" or os.geteuid() != 0:  # (root may write in a 0555 folder)
            assert sorted(p.name for p in folder.iterdir()) == ["s.pvdb"]  # no -wal, -shm
        assert ro.read_bytes() == before
    finally:
        os.chmod(folder, 0o755)
        os.chmod(ro, 0o644)


def test_missing_store_is_not_created_for_reading(tmp_path):
    for kwargs in ({"create": False}, {"readonly": True}):
        with pytest.raises(StoreError, match="no such review store"):
            ReviewStore(tmp_path / "missing.pvdb", **kwargs)
    assert list(tmp_path.iterdir()) == []
