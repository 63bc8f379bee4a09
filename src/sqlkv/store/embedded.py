"""The embedded default store: one SQLite file in WAL mode inside a directory.

It needs no server, survives a killed process, and lets several threads and several
processes share one directory correctly. It was chosen over the LMDB candidate
(``lmdb_store.py``) by measurement (``bench/bench_store.py``): LMDB is 2-5x faster on
small commits and point reads, the two tie on 1-8 MB commits and range reads, and behind
the engine (whose LTX work dominates) the difference disappears; but after a long reader
SQLite gives the space back (the WAL is truncated) while LMDB's file never shrinks, and
SQLite needs no workarounds for keys over 511 bytes, for remapping a full map, or for
reader slots left by killed processes.

This module is the driver: the store, its connection pool, and which commit path a
transaction takes. The other modules of the driver:

- ``embedded_snapshot.py``: a transaction's reads (a WAL read transaction, begun by the
  first read);
- ``embedded_commit.py``: the commit paths, their statements and the conflict check;
- ``embedded_file.py``: the file's tables, pragmas, format, and the apsw error table;
- ``embedded_checkpoint.py``: the WAL checkpoints on a thread of their own.

Durability: ``fsync=False`` (the default) runs WAL with ``synchronous=NORMAL``: a commit
is in the WAL file when ``transact`` returns, so it survives a killed process (SIGKILL,
OOM); a power loss or OS crash may lose the last commits but never corrupts the file.
``fsync=True`` (``synchronous=FULL``) also survives power loss, at the price of one
fsync per commit.

Why apsw rather than the stdlib ``sqlite3``: apsw is already a dependency (the VFS is
built on it); its bundled SQLite is current (3.5x, where the system library may be
years older); it never opens or commits transactions behind our back; and its errors
are one class per SQLite result code, which ``embedded_file.ERRORS`` translates in one table.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import cast

import apsw

from sqlkv.errors import ConfigError, StoreError
from sqlkv.store.base import CommitRequest, Limits, RetryPolicy, Snapshot, Store
from sqlkv.store.conflict_log import DEFAULT_CONFLICT_WINDOW_S
from sqlkv.store.directory import make_store_directory
from sqlkv.store.embedded_checkpoint import CHECKPOINT_BYTES, Checkpoints
from sqlkv.store.embedded_commit import CommitPaths, Prepared
from sqlkv.store.embedded_file import (
    DB_FILE,
    ERRORS,
    STORE_FILE_PAGE_SIZE,
    VERSION,
    connect,
    has_carray,
    init_file,
    synchronous_pragma,
)
from sqlkv.store.embedded_snapshot import EmbeddedSnapshot

__all__ = ["CHECKPOINT_BYTES", "DB_FILE", "EmbeddedStore"]


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
        self._translating = ERRORS.translating(self._where)  # stateless: one for every use
        self._busy_ms = int(busy_timeout_s * 1000)
        self._max_idle = max_idle_readers
        self._write_lock = threading.Lock()
        self._pool_lock = threading.Lock()
        self._idle: list[apsw.Connection] = []
        self._closed = False
        checkpoint_frames = max(1, checkpoint_bytes // STORE_FILE_PAGE_SIZE)
        self._journal_limit = 2 * checkpoint_frames * STORE_FILE_PAGE_SIZE
        with ERRORS.translating(self._where):
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
        self._paths = CommitPaths(
            self._writer, conflict_window_s=conflict_window_s, where=self._where
        )
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
        # The read transaction begins at the first read (``EmbeddedSnapshot._c``): a
        # transaction that reads nothing (the engine's guarded commit) never opens one.
        return EmbeddedSnapshot(self)

    def _begin_read(self) -> tuple[apsw.Connection, int, int]:
        """A pooled connection inside a new read transaction, its read version, and
        ``Checkpoints.completed`` when it began."""
        conn = self._checkout()
        checkpoints = self._checkpoints.completed
        try:
            with ERRORS.translating(self._where):
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
        with ERRORS.translating(self._where):
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

    def _commit(self, snapshot: EmbeddedSnapshot, req: CommitRequest) -> None:
        """Apply ``req``: on the writer when the transaction read nothing (no read version:
        its guards, checked under the write lock, are its only reads), else in the snapshot's
        own transaction when SQLite lets it upgrade, else in a second one on the writer,
        checked against the conflict log. What the writes need is prepared first, so the
        write lock is held only for the statements."""
        writes = Prepared(req)
        conn = snapshot.detach()
        if conn is None:
            with self._write_lock, self._translating:
                self._check_open()
                self._paths.on_writer(None, req, writes)
            return
        read_version = snapshot.read_version
        with self._write_lock, self._translating:
            try:
                self._check_open()
                # A checkpoint that completed since the snapshot began lets only a new write
                # transaction start the WAL over: then commit on the writer.
                fresh = snapshot.checkpoints_seen == self._checkpoints.completed
                if fresh and self._paths.in_place(conn, read_version, req, writes):
                    return
            finally:
                self._checkin(conn)  # rolls back what is left of a refused upgrade
            self._paths.on_writer(read_version, req, writes)

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError(f"{self._where} is closed; open it again")
