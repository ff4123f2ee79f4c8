"""The review store's schema version, its migrations run, and a safe opener.

The schema version lives in ``PRAGMA user_version``; ``PRAGMA application_id`` marks the
file as a pvdesk store. ``MIGRATIONS[i]`` (pvdesk.review.migrations) takes a store from
version ``i`` to ``i + 1``; a new schema appends one entry and never edits an old one. A store whose version is newer
than this build knows is refused before anything is written to it, so it stays
byte-identical; so is a file that is not SQLite, or SQLite that is not a pvdesk store.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import stat
import sys
import tempfile
from pathlib import Path

from pvdesk.errors import StoreError
from pvdesk.review.migrations import MIGRATIONS

APPLICATION_ID = 0x70766462  # "pvdb"
SQLITE_MAGIC = b"SQLite format 3\x00"

SCHEMA_VERSION = len(MIGRATIONS)


# -- errors ----------------------------------------------------------------------------------

_MEANINGS = (  # (sqlite error name prefix or message fragment, what it means for the user)
    ("SQLITE_FULL", "the disk is full; the change was not saved"),
    ("SQLITE_READONLY", "the review store is read-only (no permission to write it or its "
                        "folder); the change was not saved"),
    ("SQLITE_BUSY", "the review store is busy (another program is writing it); try again"),
    ("SQLITE_LOCKED", "the review store is locked by another connection; try again"),
    ("SQLITE_CORRUPT", "the review store is damaged"),
    ("SQLITE_NOTADB", "not a pvdesk review store (not a readable SQLite database)"),
    ("SQLITE_IOERR", "cannot read or write the review store (disk error)"),
    ("SQLITE_CANTOPEN", "cannot open the review store file"),
    ("SQLITE_PERM", "no permission to use the review store"),
    ("SQLITE_NOMEM", "out of memory while using the review store"),
    ("SQLITE_TOOBIG", "a value is too large for the review store"),
    ("Could not decode", "the review store is damaged (text that is not UTF-8)"),
    ("codec can't decode", "the review store is damaged (text that is not UTF-8)"),
    ("malformed", "the review store is damaged"),
    ("disk is full", "the disk is full; the change was not saved"),
    ("readonly database", "the review store is read-only; the change was not saved"),
)


def store_error(path, exc: BaseException) -> StoreError:
    """A one-line StoreError for an sqlite3 error on the store at ``path``: what it means,
    then SQLite's own words."""
    name = getattr(exc, "sqlite_errorname", None) or ""
    text = " ".join(str(exc).split())[:200] or type(exc).__name__
    meaning = next((m for key, m in _MEANINGS if name.startswith(key) or key in text), None)
    if isinstance(exc, MemoryError):
        meaning = "out of memory while using the review store"
    elif isinstance(exc, OverflowError):
        meaning = "a number is too large for the review store"
    err = StoreError(f"{path}: {meaning} ({text})" if meaning else f"{path}: {text}")
    err.sqlite_errorname = name
    return err


# What a query may raise besides sqlite3 errors: MemoryError, OverflowError for an
# integer parameter beyond 64 bits, UnicodeDecodeError for a damaged schema text.
_FAILURES = (sqlite3.Error, MemoryError, OverflowError, UnicodeDecodeError)


class StoreCursor(sqlite3.Cursor):
    """A cursor whose sqlite3 errors (on execute and on every fetch) are StoreErrors."""

    def _error(self, exc):
        return store_error(getattr(self.connection, "store_path", "review store"), exc)

    def execute(self, sql, parameters=(), /):
        try:
            return super().execute(sql, parameters)
        except _FAILURES as exc:
            raise self._error(exc) from exc

    def executemany(self, sql, seq_of_parameters, /):
        try:
            return super().executemany(sql, seq_of_parameters)
        except _FAILURES as exc:
            raise self._error(exc) from exc

    def executescript(self, script, /):
        try:
            return super().executescript(script)
        except _FAILURES as exc:
            raise self._error(exc) from exc

    def fetchone(self):
        try:
            return super().fetchone()
        except _FAILURES as exc:
            raise self._error(exc) from exc

    def fetchmany(self, size=None):
        try:
            return super().fetchmany(self.arraysize if size is None else size)
        except _FAILURES as exc:
            raise self._error(exc) from exc

    def fetchall(self):
        try:
            return super().fetchall()
        except _FAILURES as exc:
            raise self._error(exc) from exc

    def __next__(self):
        try:
            return super().__next__()
        except _FAILURES as exc:
            raise self._error(exc) from exc


class StoreConnection(sqlite3.Connection):
    """The store's connection: every sqlite3 error becomes a StoreError naming the file."""

    store_path: Path | str = "review store"

    def cursor(self, factory=StoreCursor):
        return super().cursor(factory)

    def execute(self, sql, parameters=(), /):
        return self.cursor().execute(sql, parameters)

    def executemany(self, sql, seq_of_parameters, /):
        return self.cursor().executemany(sql, seq_of_parameters)

    def executescript(self, script, /):
        return self.cursor().executescript(script)

    def close(self):
        try:
            super().close()
        except sqlite3.Error as exc:
            raise store_error(self.store_path, exc) from exc

    def rollback_if_active(self) -> None:
        """ROLLBACK when a transaction is open; never raises over the error being handled
        (after a disk-full COMMIT SQLite may already have rolled back)."""
        if not self.in_transaction:
            return
        try:
            super().execute("ROLLBACK")
        except sqlite3.Error as exc:  # reported, not raised: the error being handled wins
            print(f"pvdesk: {self.store_path}: rollback after a failed write: {exc}",
                  file=sys.stderr)


# -- opening -----------------------------------------------------------------------------------

def _uri(path: Path, **params: str) -> str:
    text = str(path.resolve()).replace("%", "%25").replace("?", "%3f").replace("#", "%23")
    return "file:" + text + ("?" + "&".join(f"{k}={v}" for k, v in params.items())
                             if params else "")


def _in_use(path: Path) -> bool:
    """True when SQLite's side files exist: another connection may be using the store (or
    one ended without cleaning up), so a reader must take part in its locking."""
    return any(os.path.lexists(f"{path}{s}") for s in ("-wal", "-shm", "-journal"))


def _reader_uri(path: Path) -> str:
    """A URI that reads without writing anything: ``immutable`` (no locks, no -wal or -shm
    files made beside the store) unless the store is in use, then ``mode=ro``."""
    return _uri(path, mode="ro") if _in_use(path) else _uri(path, mode="ro", immutable="1")


def _stat(path: Path):
    """The file's stat, None when there is none; StoreError for anything but a regular
    file (a folder, a FIFO, a device or a socket is never opened: opening a FIFO blocks)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StoreError(f"{path}: cannot open the review store ({exc.strerror or exc})"
                         ) from None
    if stat.S_ISDIR(st.st_mode):
        raise StoreError(f"{path}: is a folder, not a review store file")
    if not stat.S_ISREG(st.st_mode):
        raise StoreError(f"{path}: not a regular file (a pipe, device or socket), not a "
                         "review store")
    return st


def _probe(path: Path) -> tuple[int, int, bool]:
    """(user_version, application_id, has_tables) read without writing to the file."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(100)
    except OSError as exc:
        raise StoreError(f"{path}: cannot read the review store ({exc.strerror or exc})"
                         ) from None
    if not head:
        raise StoreError(f"{path}: an empty file, not a pvdesk review store (left as it is)")
    if head[:len(SQLITE_MAGIC)] != SQLITE_MAGIC or len(head) < 100:
        raise StoreError(f"{path}: not a pvdesk review store (not an SQLite database)")
    try:
        con = sqlite3.connect(_reader_uri(path), uri=True)
        try:
            version = con.execute("PRAGMA user_version").fetchone()[0]
            app_id = con.execute("PRAGMA application_id").fetchone()[0]
            n = con.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        finally:
            con.close()
    except (sqlite3.Error, MemoryError, UnicodeDecodeError) as exc:
        raise store_error(path, exc) from exc
    return version, app_id, n > 0


def _check_ours(path: Path, version: int, app_id: int, has_tables: bool) -> None:
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"{path}: review store schema version {version} is newer than this pvdesk "
            f"understands ({SCHEMA_VERSION}); upgrade pvdesk to open it")
    if app_id != APPLICATION_ID:
        what = "an SQLite database" + ("" if has_tables else " with nothing in it")
        raise StoreError(f"{path}: {what}, but not a pvdesk review store (left as it is)")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _remove_db(tmp: str) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        with contextlib.suppress(OSError):
            os.unlink(tmp + suffix)


def _create(path: Path) -> None:
    """Create a new store at ``path`` atomically: the schema is written to a temporary file
    in the same folder, which is then linked in place. ``path`` is never an empty or
    half-made file, and a file that appears meanwhile (another process) is left alone."""
    folder = path.parent
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".new", dir=folder)
        os.close(fd)
    except OSError as exc:
        raise StoreError(f"{path}: cannot create the review store ({exc.strerror or exc})"
                         ) from None
    try:
        try:
            con = sqlite3.connect(tmp, isolation_level=None, factory=StoreConnection)
            con.store_path = path
            try:
                con.execute("PRAGMA journal_mode=WAL")
                con.execute("PRAGMA synchronous=FULL")
                _migrate(con, path)
            finally:
                con.close()
            os.chmod(tmp, 0o666 & ~_umask())
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            raise StoreError(f"{path}: cannot create the review store ({exc.strerror or exc})"
                             ) from None
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass  # created meanwhile by someone else: theirs is opened (and checked)
        except OSError:  # no hard links here (some network or FAT file systems)
            try:
                if not path.exists():
                    os.replace(tmp, path)
            except OSError as exc:
                raise StoreError(f"{path}: cannot create the review store "
                                 f"({exc.strerror or exc})") from None
    finally:
        _remove_db(tmp)


def connect(path, readonly: bool = False) -> sqlite3.Connection:
    """Open (creating or migrating) a store and return a connection in autocommit mode.

    Transactions are explicit (BEGIN IMMEDIATE ... COMMIT) in the store's methods. A file
    that is not a pvdesk store (empty, not SQLite, someone else's SQLite, a newer schema) is
    refused before anything is written to it. ``readonly`` opens an existing store without
    writing anything (no schema, no journal mode change), also in a read-only folder.
    """
    path = Path(path)
    st = _stat(path)
    if st is None:
        if readonly:
            raise StoreError(f"{path}: no such review store")
        if not path.parent.is_dir():
            raise StoreError(f"{path}: the folder {path.parent} does not exist")
        _create(path)
        _stat(path)
    version, app_id, has_tables = _probe(path)
    _check_ours(path, version, app_id, has_tables)
    if readonly:
        return _connect_readonly(path, version)
    try:
        con = sqlite3.connect(os.fspath(path), isolation_level=None, timeout=30,
                              check_same_thread=False, factory=StoreConnection)
    except (sqlite3.Error, MemoryError) as exc:
        raise store_error(path, exc) from exc
    con.store_path = path
    try:
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA synchronous=FULL")
        con.execute("PRAGMA foreign_keys=ON")
        if version < SCHEMA_VERSION:
            _migrate(con, path)
    except BaseException:
        con.close()
        raise
    return con


def _connect_readonly(path: Path, version: int) -> sqlite3.Connection:
    """A connection that never writes (``query_only``) and leaves nothing beside the store.
    A store nobody else has open is read ``immutable`` (no -wal or -shm file is made, which
    also works in a read-only folder). A store in use (its -wal or -shm exists) is read
    through SQLite's locking, with an ordinary connection where the file and folder can be
    written (SQLite needs to write its shared memory), else ``mode=ro``."""
    if version < SCHEMA_VERSION:
        raise StoreError(f"{path}: review store schema version {version} needs an upgrade; "
                         "open it once where it can be written")
    if _in_use(path):
        writable = os.access(path, os.W_OK) and os.access(path.parent, os.W_OK | os.X_OK)
        attempts = [{"mode": "rw"}] if writable else []
        attempts.append({"mode": "ro"})
    else:
        attempts = [{"mode": "ro", "immutable": "1"}]
    error: StoreError | None = None
    for params in attempts:
        con = None
        try:
            con = sqlite3.connect(_uri(path, **params), uri=True, isolation_level=None,
                                  timeout=30, check_same_thread=False, factory=StoreConnection)
            con.store_path = path
            con.execute("PRAGMA query_only=ON")
            con.execute("SELECT count(*) FROM sqlite_master").fetchone()
            return con
        except StoreError as exc:
            error = exc
        except (sqlite3.Error, MemoryError) as exc:
            error = store_error(path, exc)
        if con is not None:
            with contextlib.suppress(StoreError):
                con.close()
    raise error or StoreError(f"{path}: cannot open the review store read-only")


def _migrate(con: sqlite3.Connection, path: Path) -> None:
    con.execute("BEGIN IMMEDIATE")
    try:
        version = con.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:  # raced with a newer writer
            raise StoreError(f"{path}: review store schema version {version} is newer than "
                             f"this pvdesk understands ({SCHEMA_VERSION})")
        for statements in MIGRATIONS[version:]:
            for sql in statements:  # SQL text, or a function of the connection
                if callable(sql):
                    sql(con)
                else:
                    con.execute(sql)
        if version < SCHEMA_VERSION:
            con.execute(f"PRAGMA application_id={APPLICATION_ID}")
            con.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        con.execute("COMMIT")
    except BaseException:
        con.rollback_if_active()
        raise
