"""Takeover: a second owner fences the first; the first learns it at its next round trip."""

from __future__ import annotations

import apsw
import pytest
from vfs_support import Opener, integrity, rows

from sqlkv.errors import ConnectionFenced
from sqlkv.vfs.v2 import FENCED_MESSAGE


def test_second_connection_takes_over_and_first_is_fenced(open_db: Opener) -> None:
    first = open_db()
    first.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)")
    for i in range(5):
        first.execute("INSERT INTO t(v) VALUES (?)", (f"committed {i}",))
    first.execute("BEGIN")
    first.execute("INSERT INTO t(v) VALUES ('uncommitted')")

    second = open_db()  # the takeover

    with pytest.raises(apsw.IOError, match=FENCED_MESSAGE) as failure:
        first.execute("COMMIT")
    assert isinstance(failure.value, ConnectionFenced)
    assert first.sqlkv_fenced
    for sql in ("SELECT count(*) FROM t", "INSERT INTO t(v) VALUES ('x')", "SELECT 1"):
        with pytest.raises(ConnectionFenced, match=FENCED_MESSAGE):
            first.execute(sql).fetchall()

    assert rows(second, "SELECT v FROM t ORDER BY id") == [(f"committed {i}",) for i in range(5)]
    assert integrity(second) == "ok"
    second.execute("INSERT INTO t(v) VALUES ('after takeover')")
    assert second.sqlkv_generation > first.sqlkv_generation


def test_fenced_connection_fails_on_a_cache_miss(open_mem: Opener) -> None:
    first = open_mem(cache_size=0, preload_bytes=0)
    first.execute("CREATE TABLE t(v)")
    first.executemany("INSERT INTO t VALUES (randomblob(1000))", [()] * 500)
    first.execute("PRAGMA cache_size=0")
    open_mem()
    with pytest.raises(ConnectionFenced):
        first.execute("SELECT count(*) FROM t WHERE length(v) > 0").fetchall()
    with pytest.raises(ConnectionFenced):
        first.execute("SELECT 1").fetchall()


def test_user_exec_tracer_still_runs_alongside_the_fence_guard(open_mem: Opener) -> None:
    conn = open_mem()
    seen: list[str] = []

    def tracer(cursor: apsw.Cursor, sql: str, bindings: object) -> bool:
        seen.append(sql)
        return True

    conn.exec_trace = tracer
    conn.execute("SELECT 1").fetchall()
    assert conn.exec_trace is tracer
    assert seen == ["SELECT 1"]


def test_the_fencing_guard_costs_nothing_until_the_connection_is_fenced(open_mem: Opener) -> None:
    base_tracer = vars(apsw.Connection)["exec_trace"]
    first = open_mem()
    first.execute("CREATE TABLE t(v)")
    assert base_tracer.__get__(first) is None, "no per-statement tracer on a live connection"
    seen: list[str] = []
    first.exec_trace = lambda cursor, sql, bindings: seen.append(sql) or True
    first.execute("SELECT count(*) FROM t").fetchall()
    assert seen == ["SELECT count(*) FROM t"]  # the user's tracer still runs
    first.exec_trace = None
    assert base_tracer.__get__(first) is None
    open_mem()  # takes over
    with pytest.raises(ConnectionFenced):
        first.execute("INSERT INTO t VALUES (1)")
    assert base_tracer.__get__(first) is not None
    with pytest.raises(ConnectionFenced):
        first.execute("SELECT 1").fetchall()  # answered by SQLite alone, refused by the guard
