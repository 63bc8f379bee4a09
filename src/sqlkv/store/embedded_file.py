"""The embedded store's file: its tables, its pragmas, and opening or creating it.

Files: ``DIR/store.sqlite3`` (+ its ``-wal`` and ``-shm``). Tables:

- ``kv(key BLOB PRIMARY KEY, value BLOB NOT NULL)``: the data, byte for byte. SQLite
  compares BLOBs with ``memcmp``, so keys sort as unsigned bytes. A rowid table (not
  ``WITHOUT ROWID``): values of up to 100 kB live in overflow pages hanging off a small
  table row, and the key index stays dense; measured 7x faster reads of 100 kB values.
- ``meta``: one row: ``format``, ``floor`` (every conflict-log row with ``version <=
  floor`` has been pruned) and ``version`` (format 1's commit counter; format 2 leaves it
  as the migration found it).
- ``conflict_log(version INTEGER PRIMARY KEY, ts REAL, ranges BLOB)``: the write ranges of
  each commit (``conflict_log.encode_ranges``), with its wall-clock time.

The store's version (``VERSION``, the number of write commits) is ``max(floor, newest
conflict-log version)``: each commit adds its log row at version + 1, and pruning raises
``floor`` to the newest version it removes, so the version never goes back. Format 1
bumped ``meta.version`` in every commit as well: one more statement and one more dirty
page (the ``meta`` table's) per commit, which cost 15-30% of a small commit's store
statements (docs/hot-path.md, "Commit path, round 2"). A format 1 file becomes format 2
when a format 2 sqlkv opens it (``init_file``); format 1 code then refuses it.

Pages are 4 KiB (new files; an existing file keeps the page size it was created with).
16 KiB was chosen first for 100 kB values, but a small commit dirties about ten store
pages (table and key index leaves of four keys, ``meta``, ``conflict_log``), so it wrote
~160 KiB of WAL: measured on one engine in one run (docs/hot-path.md), a 1-page commit
took ~285 us of CPU with 16 KiB pages and ~230 us with 4 KiB, an 800-page (3.2 MB) commit
and reading 10 MB of parts back cost the same with both. ``application_id`` marks the
file as ours, so a foreign SQLite database is refused rather than written to.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import apsw

from sqlkv.errors import ConfigError, StoreError, StoreUnavailable
from sqlkv.store.translate import ErrorTable

DB_FILE = "store.sqlite3"
FORMAT = 2
VERSION = "max(floor, coalesce((SELECT max(version) FROM conflict_log), 0))"
"""The store's version, as an expression over the ``meta`` row (see the docstring)."""
APPLICATION_ID = 0x736B7631  # "skv1": marks the file as a sqlkv embedded store
# The store file's own SQLite page size (not sqlkv's database pages, though both are 4 KiB):
# small commits write ~4x less WAL than with 16 KiB pages (see the module docstring).
STORE_FILE_PAGE_SIZE = 4096

_SCHEMA = """
CREATE TABLE IF NOT EXISTS kv(key BLOB PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS meta(
    id INTEGER PRIMARY KEY CHECK (id = 0),
    format INTEGER NOT NULL,
    version INTEGER NOT NULL,
    floor INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS conflict_log(
    version INTEGER PRIMARY KEY,
    ts REAL NOT NULL,
    ranges BLOB NOT NULL
);
INSERT OR IGNORE INTO meta(id, format, version, floor) VALUES (0, {format}, 0, 0);
"""


# apsw error class -> (our class, what to tell the user). The first matching row wins.
ERRORS = ErrorTable(
    apsw.Error,
    [
        (apsw.BusyError, StoreUnavailable, "another process holds the store's write lock"),
        (apsw.LockedError, StoreUnavailable, "the store is locked"),
        (apsw.FullError, StoreError, "the disk is full; free space and retry"),
        (apsw.CantOpenError, ConfigError, "cannot open the store file; check the path"),
        (apsw.PermissionsError, ConfigError, "permission denied; check the directory's owner"),
        (apsw.ReadOnlyError, ConfigError, "the store file is read-only; check permissions"),
        (apsw.NotADBError, StoreError, "the file is not a SQLite database"),
        (apsw.CorruptError, StoreError, "the store file is corrupt; restore it from a backup"),
        (apsw.IOError, StoreError, "an I/O error reading or writing the store file"),
    ],
    unknown="SQLite error",
)


BUSY_FIRST_S = 0.00005
BUSY_MAX_S = 0.002


def connect(file: Path, busy_ms: int) -> apsw.Connection:
    """A connection to ``file`` (created if missing) that waits ``busy_ms`` for locks."""
    conn = apsw.Connection(str(file), flags=apsw.SQLITE_OPEN_READWRITE | apsw.SQLITE_OPEN_CREATE)
    conn.set_busy_handler(busy_handler(busy_ms))
    return conn


def busy_handler(busy_ms: int) -> Callable[[int], bool]:
    """Retry a lock held by another process for up to ``busy_ms``, first after
    ``BUSY_FIRST_S`` and then twice as long each time up to ``BUSY_MAX_S``. SQLite's own
    timeout handler sleeps 1, 2, 5, 10 ... ms, while another process's commit holds the
    write lock a few hundred microseconds: with two processes writing one store, waiters
    slept far longer than the lock was held (docs/serving.md)."""
    limit = busy_ms / 1000
    started = [0.0]

    def handler(count: int) -> bool:
        now = time.monotonic()
        if count == 0:
            started[0] = now
        elif now - started[0] >= limit:
            return False
        time.sleep(min(BUSY_FIRST_S * (1 << min(count, 10)), BUSY_MAX_S))
        return True

    return handler


def synchronous_pragma(fsync: bool) -> str:
    """``FULL`` survives power loss; ``NORMAL`` (in WAL mode) survives a killed process."""
    return f"PRAGMA synchronous={'FULL' if fsync else 'NORMAL'}"


def init_file(
    conn: apsw.Connection,
    *,
    where: str,
    file: Path,
    fsync: bool,
    journal_size_limit: int,
    busy_ms: int,
) -> None:
    """Set up the writer connection ``conn``: WAL mode and pragmas, then (in one write
    transaction) create the tables of a new file or check the format of an existing one.
    ``where`` names the store in messages."""
    # page_size only takes effect on a new file, before it leaves rollback mode.
    conn.execute(f"PRAGMA page_size={STORE_FILE_PAGE_SIZE}")
    # Turning a new file to WAL takes an exclusive lock, and SQLite answers BUSY at once
    # (no busy handler: it would deadlock) when another opener races for it: retry.
    deadline = time.monotonic() + busy_ms / 1000
    while True:
        try:
            (mode,) = conn.execute("PRAGMA journal_mode=WAL").fetchall()[0]
            break
        except apsw.BusyError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.005)
    if str(mode).lower() != "wal":
        raise StoreError(
            f"{where}: SQLite refused WAL mode (got {mode!r}); "
            "the directory must be on a local filesystem that supports shared memory"
        )
    conn.execute(synchronous_pragma(fsync))
    # After a checkpoint completes, the next commit truncates a WAL grown past this.
    conn.execute(f"PRAGMA journal_size_limit={journal_size_limit}")
    # Room for the largest transaction (10 MB) in the page cache: a commit that
    # overflows it spills pages into the WAL early, which measured 3-10x slower.
    conn.execute("PRAGMA cache_size=-32768")
    conn.execute("BEGIN IMMEDIATE")
    try:
        (app_id,) = conn.execute("PRAGMA application_id").fetchall()[0]
        tables = conn.execute("SELECT count(*) FROM sqlite_schema").fetchall()[0][0]
        if app_id != APPLICATION_ID and tables:
            raise ConfigError(
                f"{str(file)!r} is a SQLite database but not a sqlkv embedded store; "
                "give an empty or new directory"
            )
        conn.execute(_SCHEMA.format(format=FORMAT))
        conn.execute(f"PRAGMA application_id={APPLICATION_ID}")
        (fmt,) = conn.execute("SELECT format FROM meta").fetchall()[0]
        if fmt == 1:
            # meta.version is format 1's counter; keep the version where it is
            conn.execute(f"UPDATE meta SET floor = max(floor, version), format = {FORMAT}")
            fmt = FORMAT
        if fmt != FORMAT:
            raise StoreError(
                f"{where} has format {fmt}; this sqlkv reads format {FORMAT}: upgrade sqlkv"
            )
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def has_carray(conn: apsw.Connection) -> bool:
    """True when apsw was built with SQLite's carray (PyPI wheels are)."""
    if not hasattr(apsw, "carray"):
        return False
    try:
        conn.execute("SELECT value FROM carray(?)", (apsw.carray((b"x",)),))
    except apsw.Error:
        return False
    return True
