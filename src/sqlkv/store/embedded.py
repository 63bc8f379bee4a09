"""The embedded default store: one SQLite file in WAL mode inside a directory.

It needs no server, survives a killed process, and lets several threads and several
processes share one directory correctly. It was chosen over the LMDB candidate
(``lmdb_store.py``) by measurement (``bench/bench_store.py``): LMDB is 2-5x faster on
small commits and point reads, the two tie on 1-8 MB commits and range reads, and behind
the engine (whose LTX work dominates) the difference disappears; but after a long reader
SQLite gives the space back (the WAL is truncated) while LMDB's file never shrinks, and
SQLite needs no workarounds for keys over 511 bytes, for remapping a full map, or for
reader slots left by killed processes.

This module is the driver: the store, its snapshots, its connection pool and its commit.
The file's tables and pragmas are in ``embedded_file.py``, the WAL checkpoints in
``embedded_checkpoint.py``.

Conflicts are found with the conflict log of ``conflict_log.py``, kept in the database
file's ``conflict_log`` table, so processes sharing the directory see each other's
writes: a snapshot records its read version (the store's version, ``embedded_file.
VERSION``, read inside its read transaction); a commit, holding SQLite's write lock,
refuses with ``ConflictError`` if any log row with ``version > read version`` intersects
its read ranges. Rows older than ``conflict_window_s`` (10 s) are pruned; a commit with
serializable reads whose read version is below ``floor`` cannot be checked any more and
raises ``TransactionTooOld`` (retryable). Reads themselves never expire.

Snapshots are read transactions on pooled connections, begun by the transaction's first
read: WAL gives each one a point-in-time view that writers never block. A commit takes
one of three paths, each **one SQLite transaction**, under the store's lock (threads):

- the transaction **read nothing** (the engine's warm commit: its only read is a guard):
  no snapshot was ever opened; the commit is ``BEGIN IMMEDIATE`` on the store's writer
  connection (waiting in SQLite's busy handler for another process's writer) with the
  read of the next version, which answers only if every guard holds, in one call; the
  writes (one ``executemany`` per kind); the conflict-log row and ``COMMIT`` in one call.
  Nothing to check against the log: the guards, checked under the write lock, are its
  reads. Three calls, four statements, all prepared before the lock is taken.
- it read: the snapshot's own read transaction is upgraded to a write transaction by its
  first write (the conflict-log row). SQLite allows that only when no other commit landed
  since the snapshot began (else ``SQLITE_BUSY_SNAPSHOT``) and no other process holds the
  write lock (else ``SQLITE_BUSY``, at once: SQLite never waits to upgrade a read
  transaction); so when it succeeds, nothing this transaction read can have changed and
  no conflict check is needed. Then the guards, the writes and ``COMMIT``.
- the upgrade is refused: the read transaction ends and the commit runs on the writer as
  in the first path, checked against the conflict log after its read version.

Either way no reader is left open across a commit, which would keep the WAL from ever
being checkpointed completely. Checkpoints run on a background thread once the WAL holds
``checkpoint_bytes`` (16 MiB), so that commits do not wait for them.

Durability: ``fsync=False`` (the default) runs WAL with ``synchronous=NORMAL``: a commit
is in the WAL file when ``transact`` returns, so it survives a killed process (SIGKILL,
OOM); a power loss or OS crash may lose the last commits but never corrupts the file.
``fsync=True`` (``synchronous=FULL``) also survives power loss, at the price of one
fsync per commit.

Why apsw rather than the stdlib ``sqlite3``: apsw is already a dependency (the VFS is
built on it); its bundled SQLite is current (3.5x, where the system library may be
years older); it never opens or commits transactions behind our back; and its errors
are one class per SQLite result code, which ``_ERRORS`` translates in one table.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import cast

import apsw

from sqlkv.errors import ConfigError, GuardFailed, StoreError, StoreUnavailable
from sqlkv.store.base import CommitRequest, Limits, RetryPolicy, Snapshot, Store
from sqlkv.store.conflict_log import (
    DEFAULT_CONFLICT_WINDOW_S,
    check_conflicts,
    encode_ranges,
    prune_interval,
)
from sqlkv.store.directory import make_store_directory
from sqlkv.store.embedded_checkpoint import CHECKPOINT_BYTES, Checkpoints
from sqlkv.store.embedded_file import (
    DB_FILE,
    STORE_FILE_PAGE_SIZE,
    VERSION,
    connect,
    has_carray,
    init_file,
    synchronous_pragma,
)
from sqlkv.store.translate import ErrorTable

__all__ = ["CHECKPOINT_BYTES", "DB_FILE", "EmbeddedStore"]

GET_MANY_LOOP_MAX = 4  # up to this many keys, one cached point query each
LARGE_COMMIT_BYTES = 1_000_000  # above this, a pooled connection commits with a large cache
GUARDS_IN_BUMP = 8  # up to this many guards are checked by the version bump itself
LARGE_CACHE_SIZE = -32768  # KiB: the writer's (init_file); room for a 10 MB transaction

# apsw error class -> (our class, what to tell the user). The first matching row wins.
_ERRORS = ErrorTable(
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


class EmbeddedStore(Store):
    """A store in one SQLite WAL file inside ``path`` (created if missing)."""

    def __init__(
        self,
        path: Path | str,
        *,
        limits: Limits | None = None,
        retry: RetryPolicy | None = None,
        fsync: bool = False,
        conflict_window_s: float = DEFAULT_CONFLICT_WINDOW_S,
        busy_timeout_s: float = 30.0,
        max_idle_readers: int = 8,
        checkpoint_bytes: int = CHECKPOINT_BYTES,
    ) -> None:
        super().__init__(limits=limits, retry=retry)
        for name, value in [
            ("conflict_window_s", conflict_window_s),
            ("busy_timeout_s", busy_timeout_s),
            ("checkpoint_bytes", checkpoint_bytes),
        ]:
            if not value > 0:
                raise ConfigError(f"{name} must be > 0, got {value!r}")
        self.path = make_store_directory(Path(path), "embedded store")
        self.file = self.path / DB_FILE
        self.url = self.path.as_uri()
        self.fsync = fsync
        self.conflict_window_s = conflict_window_s
        self._where = f"embedded store {str(self.path)!r}"
        self._translating = _ERRORS.translating(self._where)  # stateless: one for every use
        self._busy_ms = int(busy_timeout_s * 1000)
        self._max_idle = max_idle_readers
        self._write_lock = threading.Lock()
        self._pool_lock = threading.Lock()
        self._idle: list[apsw.Connection] = []
        self._closed = False
        self._next_prune = 0.0
        checkpoint_frames = max(1, checkpoint_bytes // STORE_FILE_PAGE_SIZE)
        self._journal_limit = 2 * checkpoint_frames * STORE_FILE_PAGE_SIZE
        with _ERRORS.translating(self._where):
            self._writer = connect(self.file, self._busy_ms)
            try:
                init_file(
                    self._writer,
                    where=self._where,
                    file=self.file,
                    fsync=fsync,
                    journal_size_limit=self._journal_limit,
                    busy_ms=self._busy_ms,
                )
            except BaseException:
                self._writer.close()
                raise
        self._has_carray = has_carray(self._writer)
        # Checkpoints (copying the WAL back into the file, with an fsync) run on a thread
        # of their own, so that commits do not stall behind them.
        self._checkpoints = Checkpoints(
            self.path,
            connect=self._checkpoint_connection,
            frames=checkpoint_frames,
            write_lock=self._write_lock,
            closed=lambda: self._closed,
        )
        self._writer.set_wal_hook(self._checkpoints.wal_hook)

    def _checkpoint_connection(self) -> apsw.Connection:
        conn = connect(self.file, self._busy_ms)
        conn.execute(synchronous_pragma(self.fsync))
        return conn

    # ------------------------------------------------------------------ contract

    def _open_snapshot(self) -> Snapshot:
        # The read transaction begins at the first read (``_EmbeddedSnapshot._c``): a
        # transaction that reads nothing (the engine's guarded commit) never opens one.
        return _EmbeddedSnapshot(self)

    def _begin_read(self) -> tuple[apsw.Connection, int, int]:
        """A pooled connection inside a new read transaction, its read version, and
        ``Checkpoints.completed`` when it began."""
        conn = self._checkout()
        checkpoints = self._checkpoints.completed
        try:
            with _ERRORS.translating(self._where):
                # The first read starts the WAL read transaction: version and data agree.
                rows = conn.execute(f"BEGIN; SELECT {VERSION} FROM meta").fetchall()
                version = cast(int, rows[0][0])
        except BaseException:
            self._checkin(conn)
            raise
        return conn, version, checkpoints

    def close(self) -> None:
        with self._pool_lock:
            if self._closed:
                return
            self._closed = True
            idle, self._idle = self._idle, []
        self._checkpoints.stop()
        for conn in idle:
            conn.close()
        with self._write_lock:
            self._writer.close()

    # ------------------------------------------------------------------ pool

    def _checkout(self) -> apsw.Connection:
        with self._pool_lock:
            if self._closed:
                raise StoreError(f"{self._where} is closed; open it again")
            if self._idle:
                return self._idle.pop()
        with _ERRORS.translating(self._where):
            conn = connect(self.file, self._busy_ms)
            # a snapshot may become its commit's write transaction: same pragmas as the writer
            conn.execute(synchronous_pragma(self.fsync))
            conn.execute(f"PRAGMA journal_size_limit={self._journal_limit}")
            conn.set_wal_hook(self._checkpoints.wal_hook)
        return conn

    def _checkin(self, conn: apsw.Connection) -> None:
        try:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
        except apsw.Error:
            conn.close()
            return
        with self._pool_lock:
            if not self._closed and len(self._idle) < self._max_idle:
                self._idle.append(conn)
                return
        conn.close()

    # ------------------------------------------------------------------ commit

    def _commit(self, snapshot: _EmbeddedSnapshot, req: CommitRequest) -> None:
        """Apply ``req``: on the writer when the transaction read nothing (no read version:
        its guards, checked under the write lock, are its only reads), else in the snapshot's
        own transaction when SQLite lets it upgrade, else in a second one on the writer,
        checked against the conflict log. What the writes need is prepared first, so the
        write lock is held only for the statements."""
        writes = _Prepared(req)
        conn = snapshot.detach()
        if conn is None:
            with self._write_lock, self._translating:
                self._check_open()
                self._commit_on_writer(None, req, writes)
            return
        read_version = snapshot.read_version
        with self._write_lock, self._translating:
            try:
                self._check_open()
                # A checkpoint that completed since the snapshot began lets only a new write
                # transaction start the WAL over: then commit on the writer.
                fresh = snapshot.checkpoints_seen == self._checkpoints.completed
                if fresh and self._commit_in_place(conn, read_version, req, writes):
                    return
            finally:
                self._checkin(conn)  # rolls back what is left of a refused upgrade
            self._commit_on_writer(read_version, req, writes)

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError(f"{self._where} is closed; open it again")

    def _commit_in_place(
        self, conn: apsw.Connection, read_version: int, req: CommitRequest, writes: _Prepared
    ) -> bool:
        """Upgrade the snapshot's read transaction and commit in it; False (nothing written)
        when SQLite refuses the upgrade: a commit landed since, or another process writes."""
        try:
            conn.execute(_LOG, (read_version + 1, writes.now, writes.ranges))
        except apsw.BusyError:
            conn.execute("ROLLBACK")
            return False
        # Upgraded: no commit landed since read_version, so no read can conflict.
        try:
            _check_guards(conn, req)
            self._apply(conn, read_version + 1, writes, logged=True)
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return True

    def _commit_on_writer(
        self, read_version: int | None, req: CommitRequest, writes: _Prepared
    ) -> None:
        """Commit ``req`` in a new write transaction on the writer connection; with a
        ``read_version`` (the transaction read at it), checked against the conflict log."""
        conn = self._writer
        # BEGIN IMMEDIATE waits (busy handler) for another process's writer; the version
        # bump answers nothing when a guard does not hold.
        rows = conn.execute(writes.begin, writes.guard_args).fetchall()
        try:
            if not rows:
                _check_guards(conn, req)  # raises GuardFailed naming the guard
                raise StoreError(f"{self._where}: the store's meta row is missing")
            version, floor = cast(tuple[int, int], rows[0])
            if writes.guards_apart:
                _check_guards(conn, req)
            if read_version is not None and req.read_ranges and version > read_version + 1:
                check_conflicts(
                    read_version,
                    floor,
                    req.read_ranges,
                    _logged_after(conn, read_version),
                    window_s=self.conflict_window_s,
                )
            self._apply(conn, version, writes)
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def _apply(
        self, conn: apsw.Connection, version: int, writes: _Prepared, *, logged: bool = False
    ) -> None:
        """The prepared writes, the conflict-log row of commit ``version`` (unless
        ``logged`` already) and ``COMMIT``, inside its write transaction."""
        if writes.large:  # room for the whole transaction in the page cache (see init_file)
            conn.execute(f"PRAGMA cache_size={LARGE_CACHE_SIZE}")
        for begin, end in writes.clear_ranges:
            conn.execute("DELETE FROM kv WHERE key >= ? AND key < ?", (begin, end))
        if writes.clears:
            conn.executemany("DELETE FROM kv WHERE key = ?", writes.clears)
        if writes.upserts:
            conn.executemany(_UPSERT, writes.upserts)
        if writes.now >= self._next_prune:
            self._prune(conn, writes.now)
        if logged:
            conn.execute("COMMIT")
        else:
            conn.execute(_LOG_AND_COMMIT, (version, writes.now, writes.ranges))
        if writes.large and conn is not self._writer:
            conn.execute("PRAGMA cache_size=-2000")  # a pooled reader's default again

    def _prune(self, conn: apsw.Connection, now: float) -> None:
        """Drop conflict-log rows older than the window; raise ``floor`` past them."""
        self._next_prune = now + prune_interval(self.conflict_window_s)
        (upto,) = conn.execute(
            "SELECT max(version) FROM conflict_log WHERE ts < ?",
            (now - self.conflict_window_s,),
        ).fetchall()[0]
        if upto is not None:
            conn.execute("DELETE FROM conflict_log WHERE version <= ?", (upto,))
            conn.execute("UPDATE meta SET floor = max(floor, ?)", (upto,))


_UPSERT = (
    "INSERT INTO kv(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value"
)
_LOG = "INSERT INTO conflict_log(version, ts, ranges) VALUES (?, ?, ?)"
_LOG_AND_COMMIT = _LOG + "; COMMIT"


@functools.lru_cache(maxsize=16)
def _begin_write(guards: int) -> str:
    """``BEGIN IMMEDIATE`` and the read of the next version and the floor, answered only when
    each of ``guards`` guards holds (``(key, expected)`` bound in order; ``IS`` compares
    NULL, an absent key, too): one statement for what the commit checks first."""
    held = " AND ".join(["(SELECT value FROM kv WHERE key = ?) IS ?"] * guards) or "1"
    return f"BEGIN IMMEDIATE; SELECT {VERSION} + 1, floor FROM meta WHERE {held}"


class _Prepared:
    """A commit request's statement arguments, built before the write lock is taken."""

    __slots__ = (
        "begin",
        "clear_ranges",
        "clears",
        "guard_args",
        "guards_apart",
        "large",
        "now",
        "ranges",
        "upserts",
    )

    def __init__(self, req: CommitRequest) -> None:
        self.large = req.size > LARGE_COMMIT_BYTES
        self.clear_ranges = req.clear_ranges
        self.clears = [(k,) for k, v in req.writes if v is None]
        self.upserts = (
            [(k, v) for k, v in req.writes if v is not None] if self.clears else req.writes
        )
        self.ranges = encode_ranges(req.write_ranges)
        self.now = time.time()
        # A commit's guards (the engine's: META) go into the version bump; many guards (a
        # compaction apply's) are checked one statement each (SQLite's expression depth).
        self.guards_apart = len(req.guards) > GUARDS_IN_BUMP
        guards = [] if self.guards_apart else req.guards
        self.begin = _begin_write(len(guards))
        self.guard_args = [x for guard in guards for x in guard]


def _check_guards(conn: apsw.Connection, req: CommitRequest) -> None:
    """Raise ``GuardFailed`` for the first guard of ``req`` that does not hold (inside the
    write transaction: nothing is applied yet)."""
    for key, expected in req.guards:
        rows = conn.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchall()
        current = cast(bytes, rows[0][0]) if rows else None
        if current != expected:
            raise GuardFailed(key, current)


def _logged_after(conn: apsw.Connection, read_version: int) -> Iterator[bytes]:
    """The logged write ranges of the commits after ``read_version``, in order (read from
    the log on the first ``next``)."""
    rows = conn.execute(
        "SELECT ranges FROM conflict_log WHERE version > ? ORDER BY version",
        (read_version,),
    ).fetchall()
    for (blob,) in rows:
        yield cast(bytes, blob)


class _EmbeddedSnapshot(Snapshot):
    """A read transaction on one pooled connection, at ``read_version``, begun by the first
    read (a transaction that reads nothing commits without one)."""

    def __init__(self, store: EmbeddedStore) -> None:
        self._store = store
        self._conn: apsw.Connection | None = None
        self._done = False
        self.read_version = 0
        self.checkpoints_seen = 0  # Checkpoints.completed when it began

    def _c(self) -> apsw.Connection:
        if self._conn is None:
            if self._done:
                raise StoreError("this snapshot is closed; start a new transaction")
            self._conn, self.read_version, self.checkpoints_seen = self._store._begin_read()
        return self._conn

    def get(self, key: bytes) -> bytes | None:
        with _ERRORS.translating(self._store._where):
            rows = self._c().execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchall()
        return cast(bytes, rows[0][0]) if rows else None

    def get_many(self, keys: Sequence[bytes]) -> list[bytes | None]:
        if len(keys) <= GET_MANY_LOOP_MAX or not self._store._has_carray:
            return [self.get(k) for k in keys]
        with _ERRORS.translating(self._store._where):
            rows = self._c().execute(
                "SELECT key, value FROM kv WHERE key IN carray(?)",
                (apsw.carray(tuple(keys)),),
            )
            found = dict(rows)
        return [found.get(k) for k in keys]

    def get_range(
        self, begin: bytes, end: bytes, limit: int, reverse: bool
    ) -> list[tuple[bytes, bytes]]:
        order = "DESC" if reverse else "ASC"
        with _ERRORS.translating(self._store._where):
            rows = self._c().execute(
                "SELECT key, value FROM kv WHERE key >= ? AND key < ? "
                f"ORDER BY key {order} LIMIT ?",
                (begin, end, limit if limit > 0 else -1),
            )
            return [(k, v) for k, v in rows]

    def commit(self, request: CommitRequest) -> None:
        if self._done:
            raise StoreError("this snapshot is closed; start a new transaction")
        self._store._commit(self, request)

    def detach(self) -> apsw.Connection | None:
        """Hand the connection (inside its read transaction; None if nothing was read) to
        the commit, which checks it back in: this snapshot is closed from now on."""
        conn, self._conn = self._conn, None
        self._done = True
        return conn

    def close(self) -> None:
        conn, self._conn = self._conn, None
        self._done = True
        if conn is not None:
            self._store._checkin(conn)
