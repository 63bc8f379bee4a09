"""The PostgreSQL store: one table on a shared server (DESIGN §2), on psycopg 3.

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
first read (or by the commit, for a transaction that only writes). Each read is one
SELECT. A commit is one round trip, pipelined: clear ranges (``DELETE ... key >= AND key
<``), then every set as one ``INSERT ... SELECT FROM unnest(...) ON CONFLICT (key) DO
UPDATE``, then every clear as one ``DELETE ... key = ANY(...)``, then the read check below,
then ``COMMIT``. A read-only transaction ends with ``ROLLBACK`` when it is closed, which
also drops it from PostgreSQL's conflict bookkeeping at once.

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
  back: it is translated in ``_ERRORS``, the one table of backend errors.

Connections: a small thread-safe pool keeps up to ``pool_size`` idle connections; a
transaction takes one for its lifetime and more are opened when all are busy (nested
transactions in one thread must not deadlock on the pool). Defaults added to the URL
unless it sets them: ``connect_timeout=5``, ``application_name=sqlkv`` and TCP
keepalives. Messages name the server as host:port/dbname and never carry the password.
"""

from __future__ import annotations

import re
import select
import threading
from collections.abc import Sequence
from typing import Any, NoReturn

import psycopg
from psycopg import pq, sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from sqlkv.errors import (
    CommitUnknown,
    ConfigError,
    ConflictError,
    LimitExceeded,
    SqlkvError,
    StoreError,
    StoreUnavailable,
)
from sqlkv.store.base import CommitRequest, Limits, RetryPolicy, Snapshot, Store

DEFAULT_TABLE = "sqlkv_kv"

MAX_INDEXED_KEY_BYTES = 2692
"""The longest key PostgreSQL's B-tree accepts when the key does not compress (measured:
an entry is the key plus 12 bytes, at most 2704)."""

_CONNECTION_DEFAULTS = {
    "connect_timeout": "5",
    "application_name": "sqlkv",
    "keepalives": "1",
    "keepalives_idle": "30",
    "keepalives_interval": "10",
    "keepalives_count": "3",
}

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")

Connection = psycopg.Connection[Any]

# Backend errors by SQLSTATE, or by its two-character class: our error and what to say.
# Connection loss is told apart by the connection's state, not here (see _translate).
_ERRORS: dict[str, tuple[type[SqlkvError], str]] = {
    "40001": (
        ConflictError,
        "another transaction changed data this one read (serialization failure); run it again",
    ),
    "40P01": (ConflictError, "a deadlock with a concurrent transaction; run it again"),
    "55P03": (
        ConflictError,
        "a concurrent commit is writing a row this transaction read; run it again",
    ),
    # A key over the B-tree's entry size (or, with no key that long, another size limit).
    "54000": (LimitExceeded, "a key is too long for PostgreSQL's primary-key index"),
    "53300": (
        StoreUnavailable,
        "the server has no free connection slot; use fewer connections or raise the "
        "server's max_connections",
    ),
    "57P01": (StoreUnavailable, "the server ended the connection (administrator command)"),
    "57P02": (StoreUnavailable, "the server is restarting after a crash"),
    "57P03": (StoreUnavailable, "the server is starting up or shutting down"),
    "08": (StoreUnavailable, "the connection to the server failed"),
    "42P01": (StoreError, "the table does not exist: was it dropped while the store was open?"),
    "42501": (
        ConfigError,
        "the user lacks a privilege on the table or its schema; grant it or use another user",
    ),
    "42": (
        StoreError,
        "the server refused the statement: does the table have the layout "
        "(key bytea PRIMARY KEY, value bytea NOT NULL)?",
    ),
    "28": (ConfigError, "the server refused the user; check the URL's user and password"),
    "3D": (ConfigError, "the database in the URL does not exist on the server"),
}


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
        ident = _table_identifier(table)
        try:
            params = conninfo_to_dict(url)
        except psycopg.Error as exc:
            raise ConfigError(
                f"invalid PostgreSQL URL ({_first_line(exc)}); "
                "use postgresql://user:password@host:port/dbname"
            ) from None
        self._where = _describe(params)
        self.url = _public_url(params)
        conninfo = make_conninfo("", **{**_CONNECTION_DEFAULTS, **params})
        self._pool = _Pool(conninfo, pool_size, self._where)
        self._sql = _Statements(ident)
        try:
            self._create_table()
        except BaseException:
            self._pool.close()
            raise

    def _open_snapshot(self) -> Snapshot:
        return _PgSnapshot(self)

    def drop(self) -> None:
        """Drop the table and everything in it (tests and tools)."""
        self._run(self._sql.drop)

    def close(self) -> None:
        """Close every idle connection; busy ones close when their transaction ends."""
        self._pool.close()

    def __repr__(self) -> str:
        return f"PostgresStore({self.url!r}, table={self.table!r})"

    # ------------------------------------------------------------------ internals

    def _create_table(self) -> None:
        try:
            self._run(self._sql.create)
        except StoreError as exc:
            # Two processes creating the table at once: one wins, the other sees the
            # catalog's unique violation (23505) or the table (42P07). Both are fine.
            if _sqlstate(exc.__cause__) not in ("23505", "42P07"):
                raise

    def _run(self, statement: str) -> None:
        """Run one statement in autocommit mode on a pooled connection."""
        conn = self._pool.get()
        try:
            conn.execute(statement)
        except psycopg.Error as exc:
            _translate(exc, conn, self._where, "running a statement")
        finally:
            self._pool.put(conn)


class _Statements:
    """The SQL this driver sends, rendered once for one table."""

    def __init__(self, table: sql.Composable) -> None:
        def render(text: str) -> str:
            return sql.SQL(text).format(t=table).as_string(None)

        self.create = render(
            "CREATE TABLE IF NOT EXISTS {t} (key bytea PRIMARY KEY, value bytea NOT NULL)"
        )
        self.drop = render("DROP TABLE IF EXISTS {t}")
        self.get = render("SELECT value FROM {t} WHERE key = %b")
        self.get_many = render("SELECT key, value FROM {t} WHERE key = ANY(%b::bytea[])")
        self.range_forward = render(
            "SELECT key, value FROM {t} WHERE key >= %b AND key < %b ORDER BY key LIMIT %b"
        )
        self.range_reverse = render(
            "SELECT key, value FROM {t} WHERE key >= %b AND key < %b ORDER BY key DESC LIMIT %b"
        )
        self.clear_ranges = render(
            "DELETE FROM {t} USING unnest(%b::bytea[], %b::bytea[]) AS r(b, e) "
            "WHERE {t}.key >= r.b AND {t}.key < r.e"
        )
        self.upsert = render(
            "INSERT INTO {t} (key, value) SELECT * FROM unnest(%b::bytea[], %b::bytea[]) "
            "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value"
        )
        self.clear_keys = render("DELETE FROM {t} WHERE key = ANY(%b::bytea[])")
        # Row locks on everything read serializably: fails (40001) if a row changed since
        # our snapshot, or (55P03) if a concurrent commit is writing it. See the docstring.
        self.check_reads = render(
            "SELECT count(*) FROM (SELECT 1 FROM {t} "
            "JOIN unnest(%b::bytea[], %b::bytea[]) AS r(b, e) "
            "ON {t}.key >= r.b AND {t}.key < r.e FOR SHARE OF {t} NOWAIT) AS locked"
        )


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

    def commit(self, request: CommitRequest) -> None:
        store, sql_ = self._store, self._store._sql
        conn = self._connection()
        if _looks_closed(conn):
            self._discard()
            raise StoreUnavailable(
                f"the connection to PostgreSQL at {store._where} was lost before the commit "
                "was sent; nothing was written. Run the transaction again."
            )
        sets = [(k, v) for k, v in request.writes if v is not None]
        clears = [k for k, v in request.writes if v is None]
        try:
            with conn.pipeline() as pipeline:
                if conn.info.transaction_status == pq.TransactionStatus.IDLE:
                    conn.execute(_BEGIN, prepare=False)
                # Not prepared: psycopg would count a Parse that an earlier error in the
                # pipeline made the server skip as done ("prepared statement does not exist").
                cur = conn.cursor(binary=True)
                if request.clear_ranges:
                    cur.execute(sql_.clear_ranges, _columns(request.clear_ranges), prepare=False)
                if sets:
                    cur.execute(sql_.upsert, _columns(sets), prepare=False)
                if clears:
                    cur.execute(sql_.clear_keys, (clears,), prepare=False)
                if request.read_ranges:
                    cur.execute(sql_.check_reads, _columns(request.read_ranges), prepare=False)
                conn.execute("COMMIT", prepare=False)
                pipeline.sync()
        except psycopg.Error as exc:
            if _connection_failed(exc, conn):
                self._discard()
                raise CommitUnknown(
                    f"the connection to PostgreSQL at {store._where} was lost while a commit "
                    "was in flight: it may or may not have been applied (whole, if at all). "
                    "Check before running it again."
                ) from exc
            longest = max((len(k) for k, _ in request.writes), default=0)
            _translate(exc, conn, store._where, "committing", longest_key=longest)

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        status = conn.info.transaction_status
        if status in (pq.TransactionStatus.INTRANS, pq.TransactionStatus.INERROR):
            try:
                conn.execute("ROLLBACK")
            except psycopg.Error:
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
        conn = self._connection()
        cur = conn.cursor(binary=True)
        try:
            if conn.info.transaction_status == pq.TransactionStatus.IDLE:
                with conn.pipeline() as pipeline:  # BEGIN and the first read: one round trip
                    conn.execute(_BEGIN, prepare=False)
                    cur.execute(statement, params)
                    pipeline.sync()
            else:
                cur.execute(statement, params)
            return cur.fetchall()
        except psycopg.Error as exc:
            if _connection_failed(exc, conn):
                self._discard()
                raise StoreUnavailable(
                    f"lost the connection to PostgreSQL at {self._store._where} during a read; "
                    "nothing was written. Run the transaction again."
                ) from exc
            _translate(exc, conn, self._store._where, "reading")


_BEGIN = "BEGIN ISOLATION LEVEL SERIALIZABLE"


class _Pool:
    """Idle connections, at most ``size`` of them; opens another when none is idle."""

    def __init__(self, conninfo: str, size: int, where: str) -> None:
        self._conninfo = conninfo
        self._size = size
        self._where = where
        self._idle: list[Connection] = []
        self._lock = threading.Lock()
        self._closed = False

    def get(self) -> Connection:
        while True:
            with self._lock:
                if self._closed:
                    raise StoreError("this PostgreSQL store is closed; open a new one")
                conn = self._idle.pop() if self._idle else None
            if conn is None:
                return self._connect()
            if not _looks_closed(conn):
                return conn
            conn.close()

    def put(self, conn: Connection) -> None:
        healthy = (
            not conn.closed
            and not conn.broken
            and conn.info.transaction_status == pq.TransactionStatus.IDLE
        )
        with self._lock:
            if healthy and not self._closed and len(self._idle) < self._size:
                self._idle.append(conn)
                return
        conn.close()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    def _connect(self) -> Connection:
        try:
            return psycopg.connect(self._conninfo, autocommit=True)
        except psycopg.Error as exc:
            # libpq says why (refused, timeout, password, no such database) but gives no
            # SQLSTATE for a failed connection, so all of them are StoreUnavailable.
            raise StoreUnavailable(
                f"cannot connect to PostgreSQL at {self._where}: {_first_line(exc)}. "
                "Check that the server is running and reachable, and the URL's host, port, "
                "user, password and database."
            ) from exc


def _translate(
    exc: psycopg.Error, conn: Connection, where: str, doing: str, *, longest_key: int = 0
) -> NoReturn:
    """Raise our error for a backend error (the one table is ``_ERRORS``)."""
    state = _sqlstate(exc) or ""
    if _connection_failed(exc, conn) and not state.startswith(("08", "57")):
        state = "08000"
    error, what = _ERRORS.get(state) or _ERRORS.get(state[:2]) or (StoreError, "")
    if error is LimitExceeded:
        if longest_key > MAX_INDEXED_KEY_BYTES:
            raise LimitExceeded("key", longest_key, MAX_INDEXED_KEY_BYTES) from exc
        error, what = StoreError, "a value or request is over one of the server's size limits"
    detail = f"{what} " if what else ""
    raise error(
        f"PostgreSQL at {where}, {doing}: {detail}[SQLSTATE {state or 'none'}: {_first_line(exc)}]"
    ) from exc


def _sqlstate(exc: BaseException | None) -> str | None:
    return getattr(exc, "sqlstate", None)


def _is_lost(conn: Connection) -> bool:
    return bool(conn.closed or conn.broken)


def _connection_failed(exc: psycopg.Error, conn: Connection) -> bool:
    """True unless the server answered with an error on a connection that still works.

    A dead connection does not always show as ``broken``: a pipeline cut short fails
    with "cannot exit pipeline mode while busy", an OperationalError with no SQLSTATE.
    """
    state = _sqlstate(exc) or ""
    if _is_lost(conn) or state.startswith(("08", "57")):
        return True
    return isinstance(exc, psycopg.OperationalError) and not state


def _looks_closed(conn: Connection) -> bool:
    """True when an idle connection is dead: closed here, or the server has sent something
    unasked (it only does so to end the session) or closed its end. Costs no round trip."""
    if _is_lost(conn):
        return True
    try:
        readable, _, _ = select.select([conn.fileno()], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)


def _columns(pairs: list[tuple[bytes, bytes]]) -> tuple[list[bytes], list[bytes]]:
    return [a for a, _ in pairs], [b for _, b in pairs]


def _table_identifier(table: str) -> sql.Identifier:
    parts = table.split(".") if isinstance(table, str) else []
    if not 1 <= len(parts) <= 2 or not all(_NAME.fullmatch(p) for p in parts):
        raise ConfigError(
            f"invalid table name {table!r}: use NAME or SCHEMA.NAME, each a letter or "
            "underscore followed by up to 62 letters, digits or underscores"
        )
    return sql.Identifier(*parts)


def _describe(params: dict[str, Any]) -> str:
    """host:port/dbname as user, for messages (never the password)."""
    host = params.get("host") or params.get("hostaddr") or "localhost"
    port = params.get("port") or "5432"
    where = f"{host}:{port}"
    if params.get("dbname"):
        where += f"/{params['dbname']}"
    if params.get("user"):
        where += f" (user {params['user']})"
    return where


def _public_url(params: dict[str, Any]) -> str:
    """The store's URL without its password."""
    host = params.get("host") or params.get("hostaddr") or ""
    port = params.get("port")
    user = params.get("user")
    netloc = (f"{user}@" if user else "") + host + (f":{port}" if port else "")
    return f"postgresql://{netloc}/{params.get('dbname', '')}"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
