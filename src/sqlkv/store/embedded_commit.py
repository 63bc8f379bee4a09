"""The embedded store's commit: its three paths, their statements, the conflict check.

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

``Prepared`` builds what the statements bind before the store's lock is taken;
``CommitPaths`` runs them on a connection inside that lock (``EmbeddedStore._commit``
chooses the path).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Iterator
from typing import cast

import apsw

from sqlkv.errors import GuardFailed, StoreError
from sqlkv.store.base import CommitRequest
from sqlkv.store.conflict_log import check_conflicts, encode_ranges, prune_interval
from sqlkv.store.embedded_file import VERSION

LARGE_COMMIT_BYTES = 1_000_000  # above this, a pooled connection commits with a large cache
GUARDS_IN_BUMP = 8  # up to this many guards are checked by the version bump itself
LARGE_CACHE_SIZE = -32768  # KiB: the writer's (init_file); room for a 10 MB transaction


class CommitPaths:
    """The commit paths of one store: ``writer`` is its writer connection, ``where`` names
    the store in messages. Every method runs under the store's write lock."""

    def __init__(self, writer: apsw.Connection, *, conflict_window_s: float, where: str) -> None:
        self.writer = writer
        self.conflict_window_s = conflict_window_s
        self.where = where
        self._next_prune = 0.0

    def in_place(
        self, conn: apsw.Connection, read_version: int, req: CommitRequest, writes: Prepared
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
            check_guards(conn, req)
            self._apply(conn, read_version + 1, writes, logged=True)
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return True

    def on_writer(self, read_version: int | None, req: CommitRequest, writes: Prepared) -> None:
        """Commit ``req`` in a new write transaction on the writer connection; with a
        ``read_version`` (the transaction read at it), checked against the conflict log."""
        conn = self.writer
        # BEGIN IMMEDIATE waits (busy handler) for another process's writer; the version
        # bump answers nothing when a guard does not hold.
        rows = conn.execute(writes.begin, writes.guard_args).fetchall()
        try:
            if not rows:
                check_guards(conn, req)  # raises GuardFailed naming the guard
                raise StoreError(f"{self.where}: the store's meta row is missing")
            version, floor = cast(tuple[int, int], rows[0])
            if writes.guards_apart:
                check_guards(conn, req)
            if read_version is not None and req.read_ranges and version > read_version + 1:
                check_conflicts(
                    read_version,
                    floor,
                    req.read_ranges,
                    logged_after(conn, read_version),
                    window_s=self.conflict_window_s,
                )
            self._apply(conn, version, writes)
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def _apply(
        self, conn: apsw.Connection, version: int, writes: Prepared, *, logged: bool = False
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
        if writes.large and conn is not self.writer:
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
def begin_write(guards: int) -> str:
    """``BEGIN IMMEDIATE`` and the read of the next version and the floor, answered only when
    each of ``guards`` guards holds (``(key, expected)`` bound in order; ``IS`` compares
    NULL, an absent key, too): one statement for what the commit checks first."""
    held = " AND ".join(["(SELECT value FROM kv WHERE key = ?) IS ?"] * guards) or "1"
    return f"BEGIN IMMEDIATE; SELECT {VERSION} + 1, floor FROM meta WHERE {held}"


class Prepared:
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
        self.begin = begin_write(len(guards))
        self.guard_args = [x for guard in guards for x in guard]


def check_guards(conn: apsw.Connection, req: CommitRequest) -> None:
    """Raise ``GuardFailed`` for the first guard of ``req`` that does not hold (inside the
    write transaction: nothing is applied yet)."""
    for key, expected in req.guards:
        rows = conn.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchall()
        current = cast(bytes, rows[0][0]) if rows else None
        if current != expected:
            raise GuardFailed(key, current)


def logged_after(conn: apsw.Connection, read_version: int) -> Iterator[bytes]:
    """The logged write ranges of the commits after ``read_version``, in order (read from
    the log on the first ``next``)."""
    rows = conn.execute(
        "SELECT ranges FROM conflict_log WHERE version > ? ORDER BY version",
        (read_version,),
    ).fetchall()
    for (blob,) in rows:
        yield cast(bytes, blob)
