"""A commit that fails (fenced, over quota, engine unreachable) raises its own error class
through ``with conn:``, an explicit BEGIN/COMMIT and an autocommit statement, on the apsw
connection of ``sqlkv.connect`` and on the DB-API connection, and changes nothing.

(apsw's own ``with conn:`` used to report ``apsw.AuthError: not authorized`` instead: its
C ``__exit__`` ran ROLLBACK TO with the commit's exception pending, which apsw's authorizer
hook denies. ``vfs.v2.connection.Connection.__exit__`` now does it in Python.)
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any, cast

import apsw
import pytest

import sqlkv
import sqlkv.dbapi2 as dbapi2
from sqlkv.engine import Engine, EngineApi, EngineConfig
from sqlkv.errors import ConnectionFenced, QuotaExceeded, SqlkvError, TransportError
from sqlkv.store import MemoryStore

FAST_RETRY = {"retry_attempts": 2, "retry_base_s": 0.0, "retry_max_s": 0.0}
SMALL_ROW = "INSERT INTO t(v) VALUES ('kept')"
BIG_ROW = "INSERT INTO t(v) VALUES (randomblob(500000))"


class CommitsDown:
    """An engine whose commits carrying pages fail with ``TransportError`` while ``down``
    (``head`` and the empty commit that settles a failed one still get through, unless
    ``all_commits``: then the outcome cannot be settled and the connection gives up)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.down = False
        self.all_commits = False

    def __getattr__(self, op: str) -> Any:
        target = getattr(self.engine, op)

        def call(*args: Any, **kwargs: Any) -> Any:
            writes = op in ("commit", "commit_stage") and (args[3] or self.all_commits)
            if self.down and writes:
                raise TransportError(f"injected: {op} could not reach the engine")
            return target(*args, **kwargs)

        return call


class Case:
    """One database, one failure, one kind of connection."""

    def __init__(self, failure: str, kind: str, store: MemoryStore) -> None:
        quota = 200_000 if failure == "quota" else 0
        self.engine = CommitsDown(Engine(store, EngineConfig(default_quota_bytes=quota)))
        self.failure, self.kind = failure, kind
        self.opened: list[Any] = []
        self.conn = self.open(autocommit=False)
        self.conn.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v)")
        self.conn.execute(SMALL_ROW)

    def open(self, autocommit: bool) -> Any:
        engine = cast(EngineApi, self.engine)
        if self.kind == "apsw":
            conn: Any = sqlkv.connect("db", engine=engine, **FAST_RETRY)
        else:
            conn = dbapi2.connect("db", engine=engine, autocommit=True, **FAST_RETRY)
            if not autocommit:
                conn.autocommit = dbapi2.LEGACY_TRANSACTION_CONTROL
        self.opened.append(conn)
        return conn

    def arm(self) -> str:
        """Make the next commit fail; the write statement that will fail to commit."""
        if self.failure == "fenced":
            self.open(autocommit=True)  # another owner takes the database over
        elif self.failure.startswith("unreachable"):
            self.engine.down = True
            self.engine.all_commits = self.failure == "unreachable, unsettled"
        return BIG_ROW if self.failure == "quota" else "INSERT INTO t(v) VALUES ('lost')"

    def expected(self) -> tuple[type[BaseException], type[BaseException]]:
        """(the sqlkv class, the binding's class) the failed commit must be."""
        sqlkv_class: type[BaseException] = {
            "fenced": ConnectionFenced,
            "quota": QuotaExceeded,
            "unreachable": TransportError,
            "unreachable, unsettled": TransportError,
        }[self.failure]
        binding: type[BaseException]
        if self.kind == "dbapi":
            binding = dbapi2.OperationalError
        else:
            binding = apsw.FullError if self.failure == "quota" else apsw.IOError
        return sqlkv_class, binding

    def committed(self) -> list[Any]:
        """The rows a new owner sees (after the failure is healed)."""
        self.engine.down = False
        fresh = sqlkv.connect("db", engine=cast(EngineApi, self.engine))
        try:
            return [tuple(r) for r in fresh.execute("SELECT v FROM t ORDER BY id")]
        finally:
            fresh.close()

    def close(self) -> None:
        for conn in reversed(self.opened):
            with contextlib.suppress(apsw.Error, SqlkvError):
                conn.close()


def through_with(case: Case, write: str) -> None:
    with case.conn:
        case.conn.execute(write)


def through_begin_commit(case: Case, write: str) -> None:
    case.conn.execute("BEGIN")
    case.conn.execute(write)
    case.conn.execute("COMMIT")


def through_autocommit(case: Case, write: str) -> None:
    if case.kind == "dbapi":
        case.conn.autocommit = True
    case.conn.execute(write)


PATHS: list[Callable[[Case, str], None]] = [through_with, through_begin_commit, through_autocommit]


@pytest.fixture(params=["apsw", "dbapi"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def store() -> Iterator[MemoryStore]:
    store = MemoryStore()
    yield store
    store.close()


@pytest.mark.parametrize("failure", ["fenced", "quota", "unreachable", "unreachable, unsettled"])
@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.__name__)
def test_a_failed_commit_raises_its_own_class(
    failure: str, path: Callable[[Case, str], None], kind: str, store: MemoryStore
) -> None:
    case = Case(failure, kind, store)
    try:
        if kind == "dbapi":
            case.conn.commit()
        write = case.arm()
        sqlkv_class, binding = case.expected()
        with pytest.raises(sqlkv_class) as failed:
            path(case, write)
        assert isinstance(failed.value, binding), type(failed.value).__mro__
        assert not isinstance(failed.value, apsw.AuthError)
        assert case.committed() == [("kept",)]
        if failure in ("quota", "unreachable"):  # the connection carries on
            assert not case.conn.in_transaction
            case.conn.execute("SELECT count(*) FROM t").fetchall()
    finally:
        case.close()


def test_dbapi_error_keeps_the_sqlkv_attributes(store: MemoryStore) -> None:
    case = Case("quota", "dbapi", store)
    try:
        case.conn.commit()
        case.arm()
        with pytest.raises(QuotaExceeded) as failed, case.conn:
            case.conn.execute(BIG_ROW)
        assert failed.value.quota == 200_000  # type: ignore[attr-defined]
        assert "quota" in str(failed.value)
        assert failed.value.sqlite_errorname == "SQLITE_FULL"  # type: ignore[attr-defined]
    finally:
        case.close()


def test_nested_with_blocks_still_nest_on_the_apsw_connection(store: MemoryStore) -> None:
    conn = sqlkv.connect("db", store)
    conn.execute("CREATE TABLE t(v)")
    with conn:
        conn.execute("INSERT INTO t VALUES (1)")
        with pytest.raises(KeyError), conn:
            conn.execute("INSERT INTO t VALUES (2)")
            raise KeyError("inner block fails")
        assert conn.in_transaction
    assert not conn.in_transaction
    assert [tuple(r) for r in conn.execute("SELECT v FROM t")] == [(1,)]
    conn.close()
