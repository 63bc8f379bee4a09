"""The embedded default store: one SQLite file in WAL mode inside a directory.

It needs no server, survives a killed process, and lets several threads and several
processes share one directory correctly. It was chosen over the LMDB candidate
(``lmdb_store.py``) by measurement (``bench/bench_store.py``): LMDB is 2-5x faster on
small commits and point reads, the two tie on 1-8 MB commits and range reads, and behind
the engine (whose LTX work dominates) the difference disappears; but after a long reader
SQLite gives the space back (the WAL is truncated) while LMDB's file never shrinks, and
SQLite needs no workarounds for keys over 511 bytes, for remapping a full map, or for
reader slots left by killed processes.

Files: ``DIR/store.sqlite3`` (+ its ``-wal`` and ``-shm``). Tables:

- ``kv(key BLOB PRIMARY KEY, value BLOB NOT NULL)``: the data, byte for byte. SQLite
  compares BLOBs with ``memcmp``, so keys sort as unsigned bytes. A rowid table (not
  ``WITHOUT ROWID``): values of up to 100 kB live in overflow pages hanging off a small
  table row, and the key index stays dense; measured 7x faster reads of 100 kB values.
- ``meta``: one row: ``format``, ``version`` (the commit version counter: bumped by each
  committed write transaction, so ``version`` = number of write commits) and ``floor``
  (every conflict-log row with ``version <= floor`` has been pruned).
  Invariant: ``floor <= version``.
- ``conflict_log(version INTEGER PRIMARY KEY, ts REAL, ranges BLOB)``: the write ranges of
  each commit (``encode_ranges``), with its wall-clock time.

Conflicts are found the way the memory store (and FoundationDB's resolver) finds them,
but the log lives in the database file, so processes sharing the directory see each
other's writes: a snapshot records its read version (``meta.version`` inside its read
transaction); a commit, holding SQLite's write lock (``BEGIN IMMEDIATE``), refuses with
``ConflictError`` if any log row with ``version > read version`` intersects its read
ranges. Rows older than ``conflict_window_s`` (10 s) are pruned; a commit with
serializable reads whose read version is below ``floor`` cannot be checked any more and
raises ``TransactionTooOld`` (retryable). Reads themselves never expire.

Snapshots are read transactions on pooled read connections: WAL gives each one a
point-in-time view that writers never block. Commits run on one writer connection per
store object, under a lock (threads) and SQLite's write lock (processes; a writer of
another process waits in SQLite's busy handler, which polls). A snapshot ends its read
transaction before its commit starts: a reader open across a commit would keep the WAL
from ever being checkpointed completely.

Checkpoints (copying the WAL back into the file) run on a background thread once the WAL
holds ``checkpoint_bytes`` (16 MiB), in two passes (``_Checkpointer``), so that commits
do not wait for them and the WAL stays bounded (truncated to 32 MiB after a reset). A
snapshot held open for long makes the WAL grow meanwhile; it shrinks back afterwards.
Pages are 16 KiB: measured against 4 and 8 KiB, 100 kB values read and commit fastest,
at the price of small commits (about 50 us instead of 40 us).

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

import contextlib
import os
import struct
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import cast

import apsw

from sqlkv.errors import (
    ConfigError,
    ConflictError,
    SqlkvError,
    StoreError,
    StoreUnavailable,
    TransactionTooOld,
)
from sqlkv.store.base import (
    CommitRequest,
    KeyRange,
    Limits,
    RetryPolicy,
    Snapshot,
    Store,
    ranges_intersect,
)

DB_FILE = "store.sqlite3"
FORMAT = 1
APPLICATION_ID = 0x736B7631  # "skv1": marks the file as a sqlkv embedded store
PAGE_SIZE = 16_384  # measured: 100 kB values commit ~40% faster than with 4 KiB pages
DEFAULT_CONFLICT_WINDOW_S = 10.0
PRUNE_EVERY_S = 1.0
GET_MANY_LOOP_MAX = 4  # up to this many keys, one cached point query each
CHECKPOINT_BYTES = 16 * 1024 * 1024  # WAL size that wakes the background checkpointer

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


# --------------------------------------------------------------------------- shared helpers


def encode_ranges(ranges: Sequence[KeyRange]) -> bytes:
    """Key ranges as bytes: a u32 count, then each bound as a u32 length and its bytes."""
    parts = [struct.pack(">I", len(ranges))]
    for begin, end in ranges:
        parts += [struct.pack(">I", len(begin)), begin, struct.pack(">I", len(end)), end]
    return b"".join(parts)


def decode_ranges(data: bytes) -> list[KeyRange]:
    """The inverse of ``encode_ranges``."""
    (count,) = struct.unpack_from(">I", data, 0)
    pos = 4
    out: list[KeyRange] = []
    for _ in range(count):
        bounds = []
        for _ in range(2):
            (n,) = struct.unpack_from(">I", data, pos)
            bounds.append(bytes(data[pos + 4 : pos + 4 + n]))
            pos += 4 + n
        out.append((bounds[0], bounds[1]))
    return out


def make_store_directory(path: Path, what: str) -> Path:
    """Create ``path`` (and parents) if missing; ``ConfigError`` if it cannot hold a store."""
    path = Path(path).expanduser()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise ConfigError(
            f"{what} path {str(path)!r} exists and is not a directory; "
            "give the path of a directory (it is created if missing)"
        ) from None
    except OSError as exc:
        raise ConfigError(
            f"cannot create the {what} directory {str(path)!r}: {exc.strerror}; "
            "choose a directory this process can create and write"
        ) from None
    try:  # a probe file of our own: processes opening the store at once must not collide
        fd, probe = tempfile.mkstemp(prefix=".sqlkv-write-probe-", dir=path)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise ConfigError(
            f"the {what} directory {str(path)!r} is not writable: {exc.strerror}; "
            "fix its permissions or choose another directory"
        ) from None
    return path.resolve()


# --------------------------------------------------------------------------- errors

# apsw error class -> (our class, what to tell the user). The first matching row wins.
_ERRORS: list[tuple[type[apsw.Error], type[SqlkvError], str]] = [
    (apsw.BusyError, StoreUnavailable, "another process holds the store's write lock"),
    (apsw.LockedError, StoreUnavailable, "the store is locked"),
    (apsw.FullError, StoreError, "the disk is full; free space and retry"),
    (apsw.CantOpenError, ConfigError, "cannot open the store file; check the path"),
    (apsw.PermissionsError, ConfigError, "permission denied; check the directory's owner"),
    (apsw.ReadOnlyError, ConfigError, "the store file is read-only; check permissions"),
    (apsw.NotADBError, StoreError, "the file is not a SQLite database"),
    (apsw.CorruptError, StoreError, "the store file is corrupt; restore it from a backup"),
    (apsw.IOError, StoreError, "an I/O error reading or writing the store file"),
]


def _translate(exc: apsw.Error, path: Path) -> SqlkvError:
    for cls, ours, advice in _ERRORS:
        if isinstance(exc, cls):
            return ours(f"embedded store {str(path)!r}: {advice} ({exc})")
    return StoreError(f"embedded store {str(path)!r}: SQLite error: {exc}")


@contextlib.contextmanager
def _sqlite_errors(path: Path) -> Iterator[None]:
    try:
        yield
    except apsw.Error as exc:
        raise _translate(exc, path) from exc


# --------------------------------------------------------------------------- store


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
        self._busy_ms = int(busy_timeout_s * 1000)
        self._max_idle = max_idle_readers
        self._write_lock = threading.Lock()
        self._pool_lock = threading.Lock()
        self._idle: list[apsw.Connection] = []
        self._closed = False
        self._next_prune = 0.0
        self._checkpoint_frames = max(1, checkpoint_bytes // PAGE_SIZE)
        self._checkpointer: _Checkpointer | None = None
        self._wal_frames = 0  # frames in the WAL after this store's last commit
        with _sqlite_errors(self.path):
            self._writer = self._connect()
            try:
                self._init_file()
            except BaseException:
                self._writer.close()
                raise
        self._has_carray = self._probe_carray()
        # Checkpoints (copying the WAL back into the file, with an fsync) run on a thread
        # of their own, so that commits do not stall behind them.
        self._writer.set_wal_hook(self._wal_hook)

    # ------------------------------------------------------------------ setup

    def _connect(self) -> apsw.Connection:
        conn = apsw.Connection(
            str(self.file), flags=apsw.SQLITE_OPEN_READWRITE | apsw.SQLITE_OPEN_CREATE
        )
        conn.setbusytimeout(self._busy_ms)
        return conn

    def _init_file(self) -> None:
        conn = self._writer
        # page_size only takes effect on a new file, before it leaves rollback mode.
        conn.execute(f"PRAGMA page_size={PAGE_SIZE}")
        # Turning a new file to WAL takes an exclusive lock, and SQLite answers BUSY at once
        # (no busy handler: it would deadlock) when another opener races for it: retry.
        deadline = time.monotonic() + self._busy_ms / 1000
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
                f"embedded store {str(self.path)!r}: SQLite refused WAL mode (got {mode!r}); "
                "the directory must be on a local filesystem that supports shared memory"
            )
        conn.execute(f"PRAGMA synchronous={'FULL' if self.fsync else 'NORMAL'}")
        # After a checkpoint completes, the next commit truncates a WAL grown past this.
        conn.execute(f"PRAGMA journal_size_limit={2 * self._checkpoint_frames * PAGE_SIZE}")
        # Room for the largest transaction (10 MB) in the page cache: a commit that
        # overflows it spills pages into the WAL early, which measured 3-10x slower.
        conn.execute("PRAGMA cache_size=-32768")
        conn.execute("BEGIN IMMEDIATE")
        try:
            (app_id,) = conn.execute("PRAGMA application_id").fetchall()[0]
            tables = conn.execute("SELECT count(*) FROM sqlite_schema").fetchall()[0][0]
            if app_id != APPLICATION_ID and tables:
                raise ConfigError(
                    f"{str(self.file)!r} is a SQLite database but not a sqlkv embedded store; "
                    "give an empty or new directory"
                )
            conn.execute(_SCHEMA.format(format=FORMAT))
            conn.execute(f"PRAGMA application_id={APPLICATION_ID}")
            (fmt,) = conn.execute("SELECT format FROM meta").fetchall()[0]
            if fmt != FORMAT:
                raise StoreError(
                    f"embedded store {str(self.path)!r} has format {fmt}; this sqlkv reads "
                    f"format {FORMAT}: upgrade sqlkv"
                )
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def _probe_carray(self) -> bool:
        """True when apsw was built with SQLite's carray (PyPI wheels are)."""
        if not hasattr(apsw, "carray"):
            return False
        try:
            self._writer.execute("SELECT value FROM carray(?)", (apsw.carray((b"x",)),))
        except apsw.Error:
            return False
        return True

    # ------------------------------------------------------------------ contract

    def _open_snapshot(self) -> Snapshot:
        conn = self._checkout()
        try:
            with _sqlite_errors(self.path):
                conn.execute("BEGIN")
                # The first read starts the WAL read transaction: version and data agree.
                version = cast(int, conn.execute("SELECT version FROM meta").fetchall()[0][0])
        except BaseException:
            self._checkin(conn)
            raise
        return _EmbeddedSnapshot(self, conn, version)

    def close(self) -> None:
        with self._pool_lock:
            if self._closed:
                return
            self._closed = True
            idle, self._idle = self._idle, []
        if self._checkpointer is not None:
            self._checkpointer.stop()
        for conn in idle:
            conn.close()
        with self._write_lock:
            self._writer.close()

    # ------------------------------------------------------------------ checkpoints

    def _wal_hook(self, conn: apsw.Connection, name: str, frames: int) -> int:
        """After each commit (in place of SQLite's autocheckpoint): wake the checkpointer."""
        self._wal_frames = frames
        if frames >= self._checkpoint_frames and not self._closed:
            if self._checkpointer is None:
                self._checkpointer = _Checkpointer(self)
                self._checkpointer.start()
            self._checkpointer.wake()
        return int(apsw.SQLITE_OK)

    # ------------------------------------------------------------------ pool

    def _checkout(self) -> apsw.Connection:
        with self._pool_lock:
            if self._closed:
                raise StoreError(f"embedded store {str(self.path)!r} is closed; open it again")
            if self._idle:
                return self._idle.pop()
        with _sqlite_errors(self.path):
            conn = self._connect()
            conn.execute("PRAGMA query_only=1")
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

    def _commit(self, read_version: int, req: CommitRequest) -> None:
        ranges = encode_ranges(req.write_ranges)
        sets = [(k, v) for k, v in req.writes if v is not None]
        clears = [(k,) for k, v in req.writes if v is None]
        with self._write_lock, _sqlite_errors(self.path):
            if self._closed:
                raise StoreError(f"embedded store {str(self.path)!r} is closed; open it again")
            conn = self._writer
            conn.execute("BEGIN IMMEDIATE")
            try:
                row = conn.execute("SELECT version, floor FROM meta").fetchall()[0]
                version, floor = cast(int, row[0]), cast(int, row[1])
                if req.read_ranges and version > read_version:
                    self._check_conflicts(conn, read_version, floor, req.read_ranges)
                for begin, end in req.clear_ranges:
                    conn.execute("DELETE FROM kv WHERE key >= ? AND key < ?", (begin, end))
                if clears:
                    conn.executemany("DELETE FROM kv WHERE key = ?", clears)
                if sets:
                    conn.executemany(
                        "INSERT INTO kv(key, value) VALUES (?, ?) "
                        "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                        sets,
                    )
                now = time.time()
                conn.execute(
                    "INSERT INTO conflict_log(version, ts, ranges) VALUES (?, ?, ?)",
                    (version + 1, now, ranges),
                )
                conn.execute("UPDATE meta SET version = ?", (version + 1,))
                if now >= self._next_prune:
                    self._prune(conn, now)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

    def _check_conflicts(
        self, conn: apsw.Connection, read_version: int, floor: int, read_ranges: list[KeyRange]
    ) -> None:
        if read_version < floor:
            raise TransactionTooOld(
                f"this transaction began at version {read_version}, before the conflict "
                f"history kept ({self.conflict_window_s:g} s, from version {floor}); "
                "it will be retried"
            )
        rows = conn.execute(
            "SELECT ranges FROM conflict_log WHERE version > ? ORDER BY version",
            (read_version,),
        ).fetchall()
        for (blob,) in rows:
            if ranges_intersect(read_ranges, decode_ranges(cast(bytes, blob))):
                raise ConflictError(
                    "another transaction changed keys this one read; it will be retried"
                )

    def _prune(self, conn: apsw.Connection, now: float) -> None:
        """Drop conflict-log rows older than the window; raise ``floor`` past them."""
        self._next_prune = now + min(PRUNE_EVERY_S, self.conflict_window_s / 4)
        (upto,) = conn.execute(
            "SELECT max(version) FROM conflict_log WHERE ts < ?",
            (now - self.conflict_window_s,),
        ).fetchall()[0]
        if upto is not None:
            conn.execute("DELETE FROM conflict_log WHERE version <= ?", (upto,))
            conn.execute("UPDATE meta SET floor = max(floor, ?)", (upto,))


class _Checkpointer(threading.Thread):
    """Checkpoints on its own connection when a commit wakes it, in two passes.

    A PASSIVE checkpoint never blocks writers or readers; it copies back what no open
    snapshot still needs. But it only *completes* (and lets the next commit start the
    WAL over from its beginning) if no commit lands while it runs: under a steady stream
    of commits the WAL would grow without end. So the bulk is copied beside the commits,
    then the rest (what was committed meanwhile: little) under this store's write lock.
    """

    def __init__(self, store: EmbeddedStore) -> None:
        super().__init__(name=f"sqlkv-checkpoint {store.path}", daemon=True)
        self._store = store
        self._wake = threading.Event()
        self._stopping = False

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        self.join()

    def run(self) -> None:
        conn = self._store._connect()
        conn.execute(f"PRAGMA synchronous={'FULL' if self._store.fsync else 'NORMAL'}")
        try:
            while True:
                self._wake.wait()
                self._wake.clear()
                if self._stopping:
                    return
                # Busy: another process is checkpointing; the next commit wakes us again.
                # Other errors (I/O, disk full) reach the commits themselves.
                with contextlib.suppress(apsw.Error):
                    _, copied = conn.wal_checkpoint(mode=apsw.SQLITE_CHECKPOINT_PASSIVE)
                    if self._store._wal_frames > copied:  # our commits landed meanwhile
                        with self._store._write_lock:
                            if not self._store._closed:
                                conn.wal_checkpoint(mode=apsw.SQLITE_CHECKPOINT_PASSIVE)
        finally:
            conn.close()


class _EmbeddedSnapshot(Snapshot):
    """A read transaction on one pooled connection, at ``read_version``."""

    def __init__(self, store: EmbeddedStore, conn: apsw.Connection, read_version: int) -> None:
        self._store = store
        self._conn: apsw.Connection | None = conn
        self.read_version = read_version

    def _c(self) -> apsw.Connection:
        if self._conn is None:
            raise StoreError("this snapshot is closed; start a new transaction")
        return self._conn

    def get(self, key: bytes) -> bytes | None:
        with _sqlite_errors(self._store.path):
            rows = self._c().execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchall()
        return cast(bytes, rows[0][0]) if rows else None

    def get_many(self, keys: Sequence[bytes]) -> list[bytes | None]:
        if len(keys) <= GET_MANY_LOOP_MAX or not self._store._has_carray:
            return [self.get(k) for k in keys]
        with _sqlite_errors(self._store.path):
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
        with _sqlite_errors(self._store.path):
            rows = self._c().execute(
                "SELECT key, value FROM kv WHERE key >= ? AND key < ? "
                f"ORDER BY key {order} LIMIT ?",
                (begin, end, limit if limit > 0 else -1),
            )
            return [(k, v) for k, v in rows]

    def commit(self, request: CommitRequest) -> None:
        self._c()
        # End the read transaction first: a reader open across the commit pins the WAL,
        # so the checkpoint after it could never finish (the WAL then grows without end
        # and every commit pays a checkpoint's fsync).
        self.close()
        self._store._commit(self.read_version, request)

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            self._store._checkin(conn)
