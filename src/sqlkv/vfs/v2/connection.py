"""Building the apsw connection of a v2 database, and the ``Connection`` users get.

``Connection`` is an ``apsw.Connection`` with three differences:

- ``sqlkv_stats`` is the live ``ClientCounters`` of this connection (``.snapshot()`` to keep);
- ``close()`` also closes the engine and store that ``connect`` opened for it (and so does
  dropping the connection without closing it). ``with conn:``
  keeps apsw's meaning (a transaction), so code written for apsw (the §7 workloads) runs
  unchanged, but a commit that fails at the end of the block raises its own error
  (``ConnectionFenced``, ``QuotaExceeded``, the transport error) where apsw's C
  implementation would report ``AuthError: not authorized`` (see ``__exit__``);
  to close at the end of a block use ``with contextlib.closing(connect(...))``;
- once another owner has taken the database over, every statement fails with
  ``FencedIOError`` (an ``apsw.IOError`` and a ``sqlkv.errors.ConnectionFenced``) saying so,
  even one SQLite could answer from its own cache. (It learns of the takeover at its next
  engine round trip: a commit, or a read that misses every cache.)
- pragmas that would break the guarantees of docs/design.md §5 on the main database are refused
  with an ``apsw.AuthError`` saying why (``UNSAFE_PRAGMAS``): ``synchronous=OFF`` (SQLite
  would never call xSync, so no commit would reach the engine), a ``journal_mode`` other than
  MEMORY (WAL keeps commits in an in-memory log and leaves a database that no longer opens;
  OFF cannot roll back a spilled transaction) and a ``page_size`` other than 4096 (the next
  VACUUM would leave a database sqlkv refuses to open). A user ``authorizer`` runs after
  this check, as apsw's own would.
"""

from __future__ import annotations

import contextlib
import logging
import weakref
from collections.abc import Callable
from typing import Any, Literal

import apsw

from sqlkv.engine.api import EngineApi
from sqlkv.engine.head import Head
from sqlkv.errors import ConfigError
from sqlkv.logs import failure_fields
from sqlkv.vfs.sqlite_errors import sqlite_error
from sqlkv.vfs.v2.cache import limit_sqlite_heap
from sqlkv.vfs.v2.config import PAGE_SIZE, VfsConfig
from sqlkv.vfs.v2.counters import ClientCounters
from sqlkv.vfs.v2.file import LOCK_PAGE, DbFile
from sqlkv.vfs.v2.remote import RemoteDb, Unreachable
from sqlkv.vfs.v2.vfs import VfsFile

log = logging.getLogger("sqlkv.client")

# docs/design.md §5. page_size and auto_vacuum must precede the first write; never journal_mode=OFF
# (it cannot roll back a transaction whose pages were spilled before COMMIT).
PRAGMAS: tuple[tuple[str, str, object], ...] = (
    ("page_size", "4096", None),
    ("auto_vacuum", "NONE", None),
    ("locking_mode", "EXCLUSIVE", "exclusive"),
    ("journal_mode", "MEMORY", "memory"),
    ("synchronous", "NORMAL", None),
    ("temp_store", "MEMORY", None),
)

SQLITE_DEFAULT_CACHE_KIB = 2000  # SQLite's own default pager cache, PRAGMA cache_size=-2000

ExecTracer = Callable[[apsw.Cursor, str, Any], bool]
Authorizer = Callable[[int, str | None, str | None, str | None, str | None], int]


def _synchronous_off(value: str) -> bool:
    return value.strip().lower() in ("off", "0", "false", "no")


# pragma -> (refuses this value, why and what to do instead)
UNSAFE_PRAGMAS: dict[str, tuple[Callable[[str], bool], str]] = {
    "synchronous": (
        _synchronous_off,
        "synchronous=OFF would keep every commit from reaching the engine (sqlkv commits "
        "at xSync); commits are atomic in the engine, so keep synchronous=NORMAL",
    ),
    "journal_mode": (
        lambda value: value.strip().lower() != "memory",
        "sqlkv keeps journal_mode=MEMORY on the main database (the commit to the engine is "
        "atomic; WAL and OFF would lose or corrupt commits)",
    ),
    "page_size": (
        lambda value: value.strip() != str(PAGE_SIZE),
        f"sqlkv databases use {PAGE_SIZE}-byte pages; another page size would leave a "
        "database that no longer opens after the next VACUUM",
    ),
}


def _weak_call(ref: weakref.WeakMethod[Callable[[], None]]) -> Callable[[], None]:
    def call() -> None:
        method = ref()
        if method is not None:
            method()

    return call


class Connection(apsw.Connection):
    """An apsw connection to one sqlkv v2 database (see the module docstring)."""

    OPEN_FLAGS = apsw.SQLITE_OPEN_READWRITE | apsw.SQLITE_OPEN_CREATE

    def __init__(self, vfs: VfsFile, remote: RemoteDb, closers: list[Callable[[], None]]) -> None:
        super().__init__(vfs.filename, flags=self.OPEN_FLAGS, vfs=vfs.vfs_name)
        self._sqlkv_vfs = vfs
        self._sqlkv_remote = remote
        self._sqlkv_closers = closers
        self._sqlkv_closed = False
        self._sqlkv_savepoints = 0  # open ``with conn:`` blocks
        self._user_exec_trace: ExecTracer | None = None
        self._user_authorizer: Authorizer | None = None
        # The fencing guard is an exec tracer, which SQLite calls for every statement
        # (every row of an executemany): it is installed only once the connection is dead
        # (or the user sets a tracer), because until then it would let everything through.
        # (weakly: the remote must not keep a dropped connection alive)
        remote.on_dead = _weak_call(weakref.WeakMethod(self._install_tracer))
        base_authorizer: Any = vars(apsw.Connection)["authorizer"]
        base_authorizer.__set__(self, self._authorize)

    # ------------------------------------------------------------------ sqlkv additions

    @property
    def sqlkv_stats(self) -> ClientCounters:
        return self._sqlkv_remote.counters

    @property
    def sqlkv_name(self) -> str:
        return self._sqlkv_remote.name

    @property
    def sqlkv_generation(self) -> int:
        return self._sqlkv_remote.generation

    @property
    def sqlkv_txid(self) -> int:
        """The committed txid this connection last wrote or saw committed."""
        return self._sqlkv_remote.head_txid

    @property
    def sqlkv_readonly(self) -> bool:
        return False

    @property
    def sqlkv_fenced(self) -> bool:
        return self._sqlkv_remote.fenced

    @property
    def sqlkv_file(self) -> DbFile:
        """The main database file (its page cache, buffer and sizes), for tools and tests."""
        return self._sqlkv_vfs.db_file

    def sqlkv_head(self) -> Head:
        """The engine's current head of this database (one round trip)."""
        return self._sqlkv_remote.head()

    @property
    def sqlkv_known_head(self) -> Head | None:
        """The head this connection learned last (at its open or from its last commit),
        without a round trip: e.g. ``delta_count`` right after a commit landed."""
        return self._sqlkv_remote.known_head

    # ------------------------------------------------------------------ fencing guard

    def _install_tracer(self) -> None:
        """The guard as apsw's exec tracer when it has work to do, else no tracer at all."""
        needed = self._user_exec_trace is not None or self._sqlkv_remote.dead is not None
        base_exec_trace: Any = vars(apsw.Connection)["exec_trace"]
        with contextlib.suppress(apsw.ConnectionClosedError):
            base_exec_trace.__set__(self, self._guard if needed else None)

    def _guard(self, cursor: apsw.Cursor, sql: str, bindings: Any) -> bool:
        remote = self._sqlkv_remote
        if remote.dead is not None:
            raise remote.dead_error()
        user = self._user_exec_trace
        return True if user is None else bool(user(cursor, sql, bindings))

    @property
    def exec_trace(self) -> ExecTracer | None:
        return self._user_exec_trace

    @exec_trace.setter
    def exec_trace(self, tracer: ExecTracer | None) -> None:
        self._user_exec_trace = tracer
        self._install_tracer()

    def set_exec_trace(self, tracer: ExecTracer | None) -> None:
        self._user_exec_trace = tracer
        self._install_tracer()

    # ------------------------------------------------------------------ pragma guard

    def _authorize(
        self, op: int, arg1: str | None, arg2: str | None, db: str | None, trigger: str | None
    ) -> int:
        if op == apsw.SQLITE_PRAGMA and arg1 is not None and arg2 is not None:
            unsafe = UNSAFE_PRAGMAS.get(arg1.lower())
            if unsafe is not None and db in (None, "main") and unsafe[0](arg2):
                raise sqlite_error(apsw.SQLITE_AUTH, f"PRAGMA {arg1}={arg2} refused: {unsafe[1]}")
        user = self._user_authorizer
        return apsw.SQLITE_OK if user is None else user(op, arg1, arg2, db, trigger)

    @property
    def authorizer(self) -> Authorizer | None:
        return self._user_authorizer

    @authorizer.setter
    def authorizer(self, callable: Authorizer | None) -> None:
        self._user_authorizer = callable

    def set_authorizer(self, callable: Authorizer | None) -> None:
        self._user_authorizer = callable

    # ------------------------------------------------------------------ with conn:

    def __enter__(self) -> Connection:
        """A transaction (a savepoint, so blocks nest), as apsw's own ``with conn:``."""
        name = f'"_sqlkv-{self._sqlkv_savepoints}"'
        self.execute(f"SAVEPOINT {name}")
        self._sqlkv_savepoints += 1
        return self

    def __exit__(self, etype: type[BaseException] | None, *exc: object) -> Literal[False]:
        """Release the savepoint (the outermost one commits), or roll back to it.

        Done here rather than in apsw's C ``__exit__``: that one runs its ROLLBACK TO while
        the failed RELEASE's exception is still pending, and apsw's authorizer callback
        answers "deny" to any statement prepared with an exception pending, so a commit that
        failed (fenced, over quota, engine unreachable) surfaced as ``apsw.AuthError: not
        authorized`` and left the transaction open. Here the rollback runs after the
        exception was caught, and the commit's own error is what propagates.
        """
        self._sqlkv_savepoints -= 1
        name = f'"_sqlkv-{self._sqlkv_savepoints}"'
        if etype is None:
            try:
                self.execute(f"RELEASE SAVEPOINT {name}")
            except BaseException:
                self._rollback_savepoint(name)
                raise
            return False
        self._rollback_savepoint(name)
        return False

    def _rollback_savepoint(self, name: str) -> None:
        # SQLite may already have rolled the transaction back (a failed commit), and a dead
        # connection refuses every statement: either way the error to report is the first one
        for sql in (f"ROLLBACK TO SAVEPOINT {name}", f"RELEASE SAVEPOINT {name}"):
            try:
                self.execute(sql)
            except apsw.Error as exc:
                log.debug(
                    "with-block rollback step %s failed: %s: %s",
                    sql,
                    type(exc).__name__,
                    exc,
                    extra=failure_fields(exc, db=self.sqlkv_name, sql=sql),
                )

    # ------------------------------------------------------------------ lifetime

    def close(self, force: bool = False) -> None:
        if self._sqlkv_closed:
            return
        self._sqlkv_closed = True
        try:
            super().close(force)
        finally:
            self._leave_hint()
            self._sqlkv_vfs.unregister()
            _run_closers(self._sqlkv_closers)

    def _leave_hint(self) -> None:
        """Tell the engine which pages this connection read first, when they were not what
        its open returned (docs/open-and-preload.md); a failure only costs the next open."""
        remote = self._sqlkv_remote
        file = self._sqlkv_vfs.db_file
        pages = None if remote.dead else file.first_reads.hint(file.preloaded, remote.size_pages)
        if pages is None:
            return
        try:
            remote.save_hint(pages)
        except Exception as exc:
            log.debug(
                "preload hint not saved: %s: %s",
                type(exc).__name__,
                exc,
                extra=failure_fields(exc, db=self.sqlkv_name),
            )

    def __del__(self) -> None:
        # dropped without close(): stop what connect started for it (compaction thread,
        # store, VFS registration), as apsw closes the SQLite connection itself
        if not getattr(self, "_sqlkv_closed", True):
            with contextlib.suppress(Exception):
                self.close()


def _run_closers(closers: list[Callable[[], None]]) -> None:
    while closers:
        closers.pop()()


def preload_hints(config: VfsConfig) -> list[int]:
    """Page 1 onwards, up to ``preload_bytes`` (what a read-only snapshot asks for; an owner's
    open asks for nothing and gets page 1 and the database's learned hint instead)."""
    count = max(1, config.preload_bytes // PAGE_SIZE)
    return [p for p in range(1, count + 1) if p != LOCK_PAGE]


def connect_v2(
    name: str,
    engine: EngineApi,
    config: VfsConfig | None = None,
    *,
    closers: list[Callable[[], None]] | None = None,
) -> Connection:
    """Open (take over) database ``name`` through ``engine``; one round trip.

    ``closers`` run (last first) when the connection closes, or now if opening fails.
    """
    config = config or VfsConfig()
    config.validate()
    closers = closers if closers is not None else []
    if not isinstance(name, str) or not name:
        _run_closers(closers)
        raise ConfigError(f"database name must be a non-empty string, got {name!r}")
    try:
        remote = RemoteDb(engine, name, config, ClientCounters())
        try:
            opened = remote.open(())
        except Unreachable as exc:
            raise exc.cause from exc
        if opened.head.page_size != PAGE_SIZE:
            raise ConfigError(
                f"database {name!r} has {opened.head.page_size}-byte pages; "
                f"this client uses {PAGE_SIZE}"
            )
        vfs = VfsFile(DbFile(remote, config, opened.pages))
    except BaseException:
        _run_closers(closers)
        raise
    try:
        conn = Connection(vfs, remote, closers)
    except BaseException:
        vfs.unregister()
        _run_closers(closers)
        raise
    try:
        _apply_pragmas(conn, config)
    except BaseException:
        conn.close()
        raise
    return conn


def _apply_pragmas(conn: Connection, config: VfsConfig) -> None:
    for pragma, value, expect in PRAGMAS:
        rows = conn.execute(f"PRAGMA {pragma}={value}").fetchall()
        if expect is not None and (not rows or str(rows[0][0]).lower() != expect):
            raise ConfigError(f"PRAGMA {pragma}={value} did not apply (SQLite answered {rows})")
    # SQLite's pager cache as large as the VFS cache (never below SQLite's default), so a
    # warm database that fits never calls into the VFS; bounded with it (cache.py)
    limit_sqlite_heap()
    kib = max(SQLITE_DEFAULT_CACHE_KIB, config.cache_bytes // 1024)
    conn.execute(f"PRAGMA main.cache_size=-{kib}")
    row = conn.execute("PRAGMA page_size").fetchone()
    page_size = row[0] if row else None
    if page_size != PAGE_SIZE:
        raise ConfigError(
            f"database {conn.sqlkv_name!r} has {page_size}-byte pages; sqlkv uses {PAGE_SIZE}"
        )
