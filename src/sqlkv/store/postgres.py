"""The PostgreSQL store: one table on a shared server (docs/design.md §2), on psycopg 3.

``PostgresStore("postgresql://user:password@host:port/dbname", table="sqlkv_kv")``.
Several processes on several machines may share one table.

Layout: ``TABLE(key bytea PRIMARY KEY, value bytea NOT NULL)``, created if missing. bytea
compares like ``memcmp`` and then by length, so keys sort as unsigned bytes, the store's
order (``tests/store/test_conformance.py`` checks it). Keys and values travel in binary
and are stored as given: byte for byte. PostgreSQL's B-tree caps an index entry at 2704
bytes, so a key longer than about 2.7 kB (if it does not compress) is refused with
``LimitExceeded`` at commit, below the 10 kB the default limits allow.

Transactions: one PostgreSQL transaction at SERIALIZABLE per store transaction, on a
pooled connection. ``BEGIN`` travels with the first read, so the snapshot is taken by the
first read. Each read is one SELECT. A commit is one statement, the table's commit
function (``postgres_sql.py``, created with the table): it checks the guards, deletes the
clear ranges, upserts every set (``INSERT ... SELECT FROM unnest(...) ON CONFLICT (key) DO
UPDATE``), deletes every clear, then runs the read check below. A transaction that read
nothing sends that one statement alone, outside ``BEGIN`` (autocommit: the statement is
the transaction, at the SERIALIZABLE default every pooled connection sets); one that read
pipelines it with ``COMMIT``. Either way one round trip. A read-only transaction ends with
``ROLLBACK`` when it is closed, which also drops it from PostgreSQL's conflict bookkeeping
at once.

Conflicts: what PostgreSQL gives, and what this driver adds (a decision)
------------------------------------------------------------------------
The contract: a commit fails when another transaction changed a key this one read
serializably *since this one began*. PostgreSQL's serializable isolation (SSI) promises
less: that committed transactions are equivalent to *some* serial order, not necessarily
commit order. When T1 reads k, T2 writes k and commits, and T1 then commits a write
elsewhere, that is a single read-write dependency, no cycle, so SSI commits both and
orders T1 before T2. FoundationDB and the memory store refuse T1. (A small table hides
this, because SSI locks index pages, not keys: then T1's write usually lands on a page
T2 read, which makes a cycle.)

So the commit re-reads, after its writes, every row in the read-conflict ranges with
``SELECT ... FOR SHARE NOWAIT``. Locking a row that a transaction invisible to our
snapshot has since updated or deleted fails with 40001 in SERIALIZABLE; a row that a
concurrent commit is writing right now fails with 55P03 (NOWAIT: no waiting, no deadlock
wait). Both become ``ConflictError``. That gives the contract exactly for every key that
existed when it was read. Share locks do not conflict with each other, so two readers of
one row never conflict; a writer waits for a reader's commit to end, then goes on.

What remains: a key *inserted* into a range (or at an absent key) that T1 read, by a
transaction that committed after T1 began. A snapshot cannot see such a row, and
PostgreSQL offers no way to detect it short of inserting it. SSI still refuses every
commit that would make the history non-serializable, so the outcome is always
serializable, but T1 may be ordered before the inserter where FoundationDB would retry T1.
Exact FoundationDB semantics for inserts would need a conflict log checked under one
global commit lock (as ``embedded.py`` does inside one file), serializing every commit on
the server across machines; we judged that too high a price for this difference.

What the engine relies on holds exactly: two transactions that both read META
serializably and both write META never both commit, because PostgreSQL never lets two
concurrent transactions write one row (first updater wins, 40001), and two inserts of
one missing key conflict through ``ON CONFLICT`` (40001 at SERIALIZABLE).

The same holds for blind clears: a ``clear`` or ``clear_range`` deletes the rows its
snapshot sees (one that changed since fails with 40001), so a key *inserted* by a
transaction that committed after this one's snapshot survives it, where FoundationDB
and the other drivers (commit order) would remove it. The outcome is serializable (the
clearing transaction is ordered first), but a caller that clears a range while others
may insert into it must also conflict with them on a key they both read and write
(the engine's META). ``tests/store/test_model.py`` models exactly this.

Other differences from the memory store, all extra retries, never wrong data:
- SSI tracks every read, snapshot reads too, and its locks grow coarse (index page, then
  whole table past ``max_pred_locks_per_*``), so transactions touching neighbouring keys
  occasionally conflict. Snapshot reads never make a commit fail on their own (a single
  read-write dependency aborts nothing).
- Two concurrent blind writes of one key conflict (FoundationDB lets the later one win).
- A read-only transaction reads a consistent snapshot, but under SSI it can in rare cases
  see a state that the serial order of the writers never passed through (PostgreSQL's
  read-only anomaly; it needs an insert-only dependency, see above).

Connection loss
---------------
- A pooled connection whose socket has something to read while idle (the server closed
  it, or sent the error that precedes closing) is discarded before use.
- Lost during a read: ``StoreUnavailable`` (retryable). The server rolls back a
  transaction whose connection dies, so nothing was written; ``transact`` retries on a
  new connection.
- Found dead just before the commit is sent: ``StoreUnavailable`` (retryable), for the
  same reason.
- Lost while the commit round trip is in flight: ``CommitUnknown`` (not retryable). The
  commit may or may not have applied; only a caller that can check (for example by a
  commit id) should run it again. A commit is one PostgreSQL transaction, so it applied
  whole or not at all.
- An error the server answers (a conflict, a refused key) means the transaction rolled
  back: it is translated in ``_ERRORS`` (``postgres_errors.py``), the one table of
  backend errors.

Connections: a small thread-safe pool keeps up to ``pool_size`` idle connections; a
transaction takes one for its lifetime and more are opened when all are busy (nested
transactions in one thread must not deadlock on the pool). Defaults added to the URL
unless it sets them: ``connect_timeout=5``, ``application_name=sqlkv`` and TCP
keepalives. Messages name the server as host:port/dbname and never carry the password.

This module is the driver: the store and its snapshots. The SQL and the schema (table and
commit function) are in ``postgres_sql.py``, the URL and the pool in ``postgres_conn.py``,
the error table and connection-loss tests in ``postgres_errors.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NoReturn, TypeVar, cast

import psycopg
from psycopg import pq
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from sqlkv.errors import (
    CommitUnknown,
    ConfigError,
    GuardFailed,
    SqlkvError,
    StoreError,
    StoreUnavailable,
)
from sqlkv.store.base import CommitRequest, Limits, RetryPolicy, Snapshot, Store
from sqlkv.store.postgres_conn import (
    CONNECTION_DEFAULTS,
    Pool,
    describe,
    looks_closed,
    public_url,
    table_identifier,
)
from sqlkv.store.postgres_errors import (
    MAX_INDEXED_KEY_BYTES,
    Connection,
    connection_failed,
    first_line,
    sqlstate,
    translate,
)
from sqlkv.store.postgres_sql import CommitCall, Statements, commit_function_name
from sqlkv.store.ranges import RangeRead

__all__ = ["DEFAULT_TABLE", "MAX_INDEXED_KEY_BYTES", "PostgresStore"]

DEFAULT_TABLE = "sqlkv_kv"


class PostgresStore(Store):
    """A store kept in one table of a PostgreSQL server."""

    def __init__(
        self,
        url: str,
        *,
        table: str = DEFAULT_TABLE,
        limits: Limits | None = None,
        retry: RetryPolicy | None = None,
        pool_size: int = 8,
    ) -> None:
        super().__init__(limits=limits, retry=retry)
        if not isinstance(pool_size, int) or pool_size < 1:
            raise ConfigError(f"pool_size must be a positive integer, got {pool_size!r}")
        self.table = table
        ident = table_identifier(table)
        try:
            params = conninfo_to_dict(url)
        except psycopg.Error as exc:
            raise ConfigError(
                f"invalid PostgreSQL URL ({first_line(exc)}); "
                "use postgresql://user:password@host:port/dbname"
            ) from None
        self._where = describe(params)
        self.url = public_url(params)
        conninfo = make_conninfo("", **{**CONNECTION_DEFAULTS, **params})
        self._pool = Pool(conninfo, pool_size, self._where)
        self._sql = Statements(ident, commit_function_name(table))
        self._call = CommitCall(self._sql)
        try:
            self._create_schema()
        except BaseException:
            self._pool.close()
            raise

    def _open_snapshot(self) -> Snapshot:
        return _PgSnapshot(self)

    def drop(self) -> None:
        """Drop the table and everything in it, and the commit function (tests and tools)."""
        for statement in self._sql.drop:
            self._run(statement)

    def close(self) -> None:
        """Close every idle connection; busy ones close when their transaction ends."""
        self._pool.close()

    def __repr__(self) -> str:
        return f"PostgresStore({self.url!r}, table={self.table!r})"

    # ------------------------------------------------------------------ internals

    def _create_schema(self) -> None:
        """The table and the commit function, each created when missing (postgres_sql.py).
        Two processes creating one at once: one wins, the other sees the catalog's unique
        violation (23505), the table (42P07) or the function (42723). All are fine."""
        exists = self._run(self._sql.function_exists, (self._sql.function_signature,))
        for statement in [self._sql.create] + ([] if exists else [self._sql.create_function]):
            try:
                self._run(statement)
            except StoreError as exc:
                if sqlstate(exc.__cause__) not in ("23505", "42P07", "42723"):
                    raise

    def _run(self, statement: str, params: tuple[Any, ...] | None = None) -> Any:
        """Run one statement in autocommit mode on a pooled connection; the first column
        of its first row (or None)."""
        conn = self._pool.get()
        try:
            cur = conn.execute(statement, params)
            row = cur.fetchone() if cur.description else None
            return row[0] if row else None
        except psycopg.Error as exc:
            translate(exc, conn, self._where, "running a statement")
        finally:
            self._pool.put(conn)


class _PgSnapshot(Snapshot):
    """One PostgreSQL transaction on one pooled connection, begun by the first statement."""

    def __init__(self, store: PostgresStore) -> None:
        self._store = store
        self._conn: Connection | None = None

    def get(self, key: bytes) -> bytes | None:
        rows = self._read(self._store._sql.get, (key,))
        return rows[0][0] if rows else None

    def get_many(self, keys: Sequence[bytes]) -> list[bytes | None]:
        found = dict(self._read(self._store._sql.get_many, (list(keys),)))
        return [found.get(k) for k in keys]

    def get_range(
        self, begin: bytes, end: bytes, limit: int, reverse: bool
    ) -> list[tuple[bytes, bytes]]:
        statement = self._store._sql.range_reverse if reverse else self._store._sql.range_forward
        rows = self._read(statement, (begin, end, limit or None))
        return [(k, v) for k, v in rows]

    def get_ranges(self, ranges: Sequence[RangeRead]) -> list[list[tuple[bytes, bytes]]]:
        sql_ = self._store._sql
        statements = [
            (sql_.range_reverse if reverse else sql_.range_forward, (begin, end, limit or None))
            for begin, end, limit, reverse in ranges
        ]
        if not statements:
            return []
        return [[(k, v) for k, v in rows] for rows in self._read_all(statements)]

    def commit(self, request: CommitRequest) -> None:
        store, sql_ = self._store, self._store._sql
        # A connection just taken from the pool was checked there (Pool.get).
        checked = self._conn is None
        conn = self._connection()
        if not checked and looks_closed(conn):
            self._discard()
            raise StoreUnavailable(
                f"the connection to PostgreSQL at {store._where} was lost before the commit "
                "was sent; nothing was written. Run the transaction again."
            )
        # One statement: the commit function (postgres_sql.py) checks the guards, applies
        # the writes and locks the read-conflict set. Nothing read yet: the call is the
        # whole transaction (autocommit, at the SERIALIZABLE default the pool sets), sent
        # straight to libpq (CommitCall: psycopg's cursor cost more client CPU than the
        # call). A transaction that read goes on in its own: the call and COMMIT, pipelined.
        params = _commit_params(request)
        answer: list[bytes | None] | None
        try:
            if conn.pgconn.transaction_status == pq.TransactionStatus.IDLE:
                answer = store._call(conn, params)
            else:
                cur = conn.cursor(binary=True)

                def send(pipeline: psycopg.Pipeline) -> None:
                    cur.execute(sql_.commit, params, prepare=True)
                    conn.execute("COMMIT", prepare=False)
                    pipeline.sync()

                _pipelined(conn, send)
                row = cur.fetchone()
                answer = row[0] if row else None
        except psycopg.Error as exc:
            lost = CommitUnknown(
                f"the connection to PostgreSQL at {store._where} was lost while a commit "
                "was in flight: it may or may not have been applied (whole, if at all). "
                "Check before running it again."
            )
            longest = max((len(k) for k, _ in request.writes), default=0)
            self._fail(exc, conn, "committing", lost, longest_key=longest)
        if answer is not None:
            _raise_guard_failed(request.guards, answer)

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        status = conn.pgconn.transaction_status
        in_transaction = (pq.TransactionStatus.INTRANS, pq.TransactionStatus.INERROR)
        if status in in_transaction and not _rolled_back(conn):
            conn.close()
        self._store._pool.put(conn)

    # ------------------------------------------------------------------ helpers

    def _connection(self) -> Connection:
        if self._conn is None:
            self._conn = self._store._pool.get()
        return self._conn

    def _discard(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def _read(self, statement: str, params: tuple[Any, ...]) -> list[Any]:
        return self._read_all([(statement, params)])[0]

    def _read_all(self, statements: list[tuple[str, tuple[Any, ...]]]) -> list[list[Any]]:
        """Run read statements in one round trip (pipelined, with BEGIN if none ran yet)."""
        conn = self._connection()
        try:
            begin = conn.pgconn.transaction_status == pq.TransactionStatus.IDLE
            if not begin and len(statements) == 1:
                cur = conn.cursor(binary=True)
                cur.execute(*statements[0])
                return [cur.fetchall()]

            def send(pipeline: psycopg.Pipeline) -> list[list[Any]]:
                if begin:
                    conn.execute(_BEGIN, prepare=False)
                cursors = []
                for statement, params in statements:
                    cur = conn.cursor(binary=True)
                    cur.execute(statement, params)
                    cursors.append(cur)
                pipeline.sync()
                return [cur.fetchall() for cur in cursors]

            return _pipelined(conn, send)
        except psycopg.Error as exc:
            lost = StoreUnavailable(
                f"lost the connection to PostgreSQL at {self._store._where} during a read; "
                "nothing was written. Run the transaction again."
            )
            self._fail(exc, conn, "reading", lost)

    def _fail(
        self,
        exc: psycopg.Error,
        conn: Connection,
        doing: str,
        lost: SqlkvError,
        *,
        longest_key: int = 0,
    ) -> NoReturn:
        """Raise ``lost`` (dropping the connection) when ``exc`` means the connection
        failed; else the server's answer, translated (``postgres_errors.translate``)."""
        if connection_failed(exc, conn):
            self._discard()
            raise lost from exc
        translate(exc, conn, self._store._where, doing, longest_key=longest_key)


_BEGIN = "BEGIN ISOLATION LEVEL SERIALIZABLE"


def _rolled_back(conn: Connection) -> bool:
    """ROLLBACK straight through libpq: psycopg answers a ROLLBACK it runs by deallocating
    every prepared statement (one more round trip, and the reads prepared again)."""
    try:
        return conn.pgconn.exec_(b"ROLLBACK").status == pq.ExecStatus.COMMAND_OK
    except psycopg.Error:
        return False


def _raise_guard_failed(
    guards: list[tuple[bytes, bytes | None]], current: list[bytes | None]
) -> NoReturn:
    """Raise ``GuardFailed`` for the first guard that does not hold, from the current values
    the commit function answered (aligned with the guards; it applied nothing)."""
    for (key, expected), found in zip(guards, current, strict=True):
        if found != expected:
            raise GuardFailed(key, found)
    raise StoreError("PostgreSQL reported a failed guard, but every guard holds (a bug)")


def _commit_params(request: CommitRequest) -> tuple[list[Any] | None, ...]:
    """The commit function's arguments (postgres_sql.py): guards, clear ranges, sets,
    clears, read keys, read ranges, as parallel bytea[] columns (None for an empty one)."""
    none: tuple[None, None] = (None, None)
    sets = [(k, v) for k, v in request.writes if v is not None]
    clears = [k for k, v in request.writes if v is None]
    # A read range of one key (every guard's, every get) is checked by an indexed lookup.
    keys, ranges = [], []
    for begin, end in request.read_ranges:
        if end == begin + b"\0":
            keys.append(begin)
        else:
            ranges.append((begin, end))
    return (
        *(_columns(request.guards) if request.guards else none),
        *(_columns(request.clear_ranges) if request.clear_ranges else none),
        *(_columns(sets) if sets else none),
        clears or None,
        keys or None,
        *(_columns(ranges) if ranges else none),
    )


T = TypeVar("T")


def _pipelined(conn: Connection, send: Callable[[psycopg.Pipeline], T]) -> T:
    """``send(pipeline)`` inside a pipeline, leaving it cleanly when a statement fails.

    After an error the statements queued behind it are aborted, and ending the pipeline
    reports that again ("pipeline aborted"). Leaving the ``with`` block by the first error
    made psycopg log that second one as a warning ("error ignored terminating
    <psycopg.Pipeline [INERROR]>") on every conflict; here the first error is held while
    the pipeline ends, the echo is dropped, and the first error is raised to be translated.
    """
    first: psycopg.Error | None = None
    result: T | None = None
    try:
        with conn.pipeline() as pipeline:
            try:
                result = send(pipeline)
            except psycopg.Error as exc:
                first = exc
    except psycopg.Error:
        if first is None:
            raise
    if first is not None:
        raise first
    return cast(T, result)


def _columns(
    pairs: Sequence[tuple[bytes, bytes | None]],
) -> tuple[list[bytes], list[bytes | None]]:
    return [a for a, _ in pairs], [b for _, b in pairs]
