"""Transport errors are retried, lost commit answers are settled by commit_id, and a commit
is never applied twice nor half."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, cast

import apsw
import pytest
from vfs_support import integrity, rows

import sqlkv
from sqlkv.engine import Engine, EngineApi
from sqlkv.errors import CommitUnknown, ConnectionFenced, QuotaExceeded, TransportError
from sqlkv.store import MemoryStore
from sqlkv.vfs.v2 import Connection

FAST_RETRY = {"retry_attempts": 3, "retry_base_s": 0.0, "retry_max_s": 0.0}


class FlakyEngine:
    """Wraps an engine: ``fail[op] = n`` fails the next n calls of ``op`` with a
    TransportError before they reach the engine; ``lose[op] = n`` runs the next n calls and
    then loses their answers (CommitUnknown)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.fail: dict[str, int] = {}
        self.lose: dict[str, int] = {}
        self.calls: list[str] = []

    def __getattr__(self, op: str) -> Any:
        target = getattr(self.engine, op)

        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(op)
            if self.fail.get(op, 0) > 0:
                self.fail[op] -= 1
                raise TransportError(f"injected: {op} could not reach the engine")
            result = target(*args, **kwargs)
            if self.lose.get(op, 0) > 0:
                self.lose[op] -= 1
                raise CommitUnknown(f"injected: the answer to {op} was lost")
            return result

        return call


def _connect(flaky: FlakyEngine, **options: Any) -> Connection:
    return cast(Connection, sqlkv.connect("db", engine=cast(EngineApi, flaky), **options))


@pytest.fixture
def flaky(memory_store: MemoryStore) -> FlakyEngine:
    return FlakyEngine(Engine(memory_store))


@pytest.fixture
def conn(flaky: FlakyEngine) -> Iterator[Connection]:
    c = _connect(flaky, **FAST_RETRY)
    c.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)")
    yield c
    c.close()


def _count(engine: Engine) -> int:
    c = sqlkv.connect("db", engine=engine)
    try:
        assert integrity(c) == "ok"
        return int(c.execute("SELECT count(*) FROM t").fetchone()[0])  # type: ignore[index]
    finally:
        c.close()


def test_transport_errors_are_retried(conn: Connection, flaky: FlakyEngine) -> None:
    flaky.fail["commit"] = 2
    conn.execute("INSERT INTO t(v) VALUES ('a')")
    assert conn.sqlkv_stats.retries == 2
    assert _count(flaky.engine) == 1


def test_lost_commit_answer_is_applied_once(conn: Connection, flaky: FlakyEngine) -> None:
    flaky.lose["commit"] = 1
    conn.execute("INSERT INTO t(v) VALUES ('a')")
    conn.execute("INSERT INTO t(v) VALUES ('b')")
    assert rows(conn, "SELECT v FROM t") == [("a",), ("b",)]
    assert _count(flaky.engine) == 2


def test_lost_answers_until_retries_run_out_are_settled_by_head(
    conn: Connection, flaky: FlakyEngine
) -> None:
    flaky.lose["commit"] = 3  # every attempt lands-or-not unknown: head() tells
    conn.execute("INSERT INTO t(v) VALUES ('a')")
    conn.execute("INSERT INTO t(v) VALUES ('b')")
    assert _count(flaky.engine) == 2


def test_unreachable_engine_fails_the_commit_and_changes_nothing(
    conn: Connection, flaky: FlakyEngine
) -> None:
    conn.execute("INSERT INTO t(v) VALUES ('kept')")
    flaky.fail["commit"] = 3
    with pytest.raises(apsw.IOError, match="not applied"):
        conn.execute("INSERT INTO t(v) VALUES ('lost')")
    assert rows(conn, "SELECT v FROM t") == [("kept",)]
    conn.execute("INSERT INTO t(v) VALUES ('next')")  # the connection carries on
    assert rows(conn, "SELECT v FROM t ORDER BY id") == [("kept",), ("next",)]
    assert _count(flaky.engine) == 2


def test_unreachable_engine_for_reads_is_an_io_error(flaky: FlakyEngine) -> None:
    c = _connect(flaky, **FAST_RETRY)
    c.execute("CREATE TABLE t(v)")
    c.executemany("INSERT INTO t VALUES (randomblob(2000))", [()] * 400)
    c.close()
    cold = _connect(flaky, preload_bytes=0, cache_size=0, **FAST_RETRY)
    flaky.fail["get_pages"] = 3
    with pytest.raises(apsw.IOError, match="3 attempts"):
        cold.execute("SELECT count(*) FROM t").fetchall()
    assert rows(cold, "SELECT count(*) FROM t") == [(400,)]
    cold.close()


def test_lost_staged_commit_answer_is_applied_once(flaky: FlakyEngine) -> None:
    c = _connect(flaky, fast_path_bytes=64 * 1024, **FAST_RETRY)
    c.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)")
    flaky.lose["commit_finalize"] = 1
    flaky.fail["commit_stage"] = 1
    with c:
        c.executemany("INSERT INTO t(v) VALUES (?)", [("x" * 1000,)] * 500)
    assert c.sqlkv_stats.staged_commits == 1
    c.execute("INSERT INTO t(v) VALUES ('after')")
    c.close()
    assert _count(flaky.engine) == 501


def test_quota_refusal_is_sqlite_full_and_changes_nothing(memory_store: MemoryStore) -> None:
    from sqlkv.engine import EngineConfig

    engine = Engine(memory_store, EngineConfig(default_quota_bytes=200_000))
    c = sqlkv.connect("db", engine=engine)
    c.execute("CREATE TABLE t(v)")
    with pytest.raises(apsw.FullError, match="quota") as failure:
        c.execute("INSERT INTO t VALUES (randomblob(500000))")
    assert isinstance(failure.value.__cause__, QuotaExceeded)
    assert rows(c, "SELECT count(*) FROM t") == [(0,)]
    c.execute("INSERT INTO t VALUES (1)")
    c.close()
    c = sqlkv.connect("db", engine=engine)
    assert rows(c, "SELECT * FROM t") == [(1,)]
    c.close()


def test_settling_a_failed_commit_never_takes_the_database_back_from_a_new_owner(
    conn: Connection, flaky: FlakyEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn.execute("INSERT INTO t(v) VALUES ('kept')")
    owners: list[Connection] = []
    read_head = flaky.engine.head

    def head_then_a_new_owner_opens(db: str) -> Any:
        head = read_head(db)
        if not owners:  # another process takes the database over right after head()
            owners.append(cast(Connection, sqlkv.connect("db", engine=flaky.engine)))
        return head

    monkeypatch.setattr(flaky.engine, "head", head_then_a_new_owner_opens)
    flaky.fail["commit"] = 3
    with pytest.raises(ConnectionFenced):
        conn.execute("INSERT INTO t(v) VALUES ('lost')")
    assert conn.sqlkv_fenced
    new_owner = owners[0]
    new_owner.execute("INSERT INTO t(v) VALUES ('new owner')")  # still the owner
    assert not new_owner.sqlkv_fenced
    assert rows(new_owner, "SELECT v FROM t ORDER BY id") == [("kept",), ("new owner",)]
    new_owner.close()


def test_takeover_while_a_commit_is_failing_fences_the_connection(
    conn: Connection, flaky: FlakyEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn.execute("INSERT INTO t(v) VALUES ('kept')")
    owners: list[Connection] = []

    def commit_fails_and_a_new_owner_opens(*args: Any, **kwargs: Any) -> Any:
        if not owners:
            owners.append(cast(Connection, sqlkv.connect("db", engine=flaky.engine)))
        raise TransportError("injected: commit could not reach the engine")

    monkeypatch.setattr(flaky.engine, "commit", commit_fails_and_a_new_owner_opens)
    with pytest.raises(ConnectionFenced):  # not "cannot be reached": head() says who owns it
        conn.execute("INSERT INTO t(v) VALUES ('lost')")
    assert conn.sqlkv_fenced
    owners[0].close()


def test_commit_landing_late_while_it_is_settled_counts_as_applied(
    conn: Connection, flaky: FlakyEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn.execute("INSERT INTO t(v) VALUES ('kept')")
    real_commit, read_head = flaky.engine.commit, flaky.engine.head
    delayed: list[tuple[Any, Any]] = []

    def commit_is_delayed(*args: Any, **kwargs: Any) -> Any:
        if args[3]:  # the commit with pages (not the empty one that settles it)
            delayed.append((args, kwargs))
            raise TransportError("injected: the request is stuck on the way")
        return real_commit(*args, **kwargs)

    def head_then_the_delayed_copy_lands(db: str) -> Any:
        head = read_head(db)
        args, kwargs = delayed[0]
        real_commit(*args, **kwargs)
        return head

    monkeypatch.setattr(flaky.engine, "commit", commit_is_delayed)
    monkeypatch.setattr(flaky.engine, "head", head_then_the_delayed_copy_lands)
    conn.execute("INSERT INTO t(v) VALUES ('late')")  # it landed: success, applied once
    monkeypatch.undo()
    conn.execute("INSERT INTO t(v) VALUES ('next')")
    assert rows(conn, "SELECT v FROM t ORDER BY id") == [("kept",), ("late",), ("next",)]
    assert _count(flaky.engine) == 3
