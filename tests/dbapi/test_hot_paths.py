"""The DB-API module's hot paths (a statement seen before, run on the thread of a connection
that checks threads: ``Connection._fast_thread``, ``statement.kinds``) against its general
path and against the stdlib: the same results, the same errors, whichever path a call takes.
The differential scenarios cover behaviour; these pin the conditions that switch paths."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from typing import Any

import pytest

import sqlkv.dbapi2 as dbapi2
from sqlkv.dbapi2 import statement, types
from sqlkv.store import MemoryStore


class Tagged(str):
    """A str subclass: apsw would bind it as a plain str unless adapted first."""


@pytest.fixture
def native_adapter() -> Iterator[None]:
    """Removes the adapters for ``Tagged`` the test registers, and restores the hot paths
    (so that later tests still run them)."""
    yield
    sqlite3.adapters.pop((Tagged, sqlite3.PrepareProtocol), None)
    dbapi2.adapters.pop((Tagged, dbapi2.PrepareProtocol), None)
    types.FLAGS.native_adapted = False
    statement.native_adapted = False


def _both(memory_store: MemoryStore, name: str, **kwargs: Any) -> list[Any]:
    return [
        sqlite3.connect(":memory:", **kwargs),
        dbapi2.connect(name, store=memory_store, **kwargs),
    ]


def test_an_adapter_for_a_native_type_applies_to_statements_cached_before(
    memory_store: MemoryStore, native_adapter: None
) -> None:
    stdlib, ours = _both(memory_store, "adapted")
    for conn in (stdlib, ours):
        conn.execute("CREATE TABLE t(v)")
        conn.execute("SELECT ?", ("warm",)).fetchone()  # cached: the hot path's from now on
        conn.execute("INSERT INTO t VALUES (?)", ("warm",))
    assert "SELECT ?" in statement.kinds
    for module in (sqlite3, dbapi2):
        module.register_adapter(Tagged, lambda value: "tagged:" + value)
    assert not statement.kinds
    results = []
    for conn in (stdlib, ours):
        cur = conn.cursor()
        results.append(
            [
                conn.execute("SELECT ?", (Tagged("a"),)).fetchone(),
                cur.execute("SELECT ?", (Tagged("b"),)).fetchone(),
                conn.execute("INSERT INTO t VALUES (?)", (Tagged("c"),)).rowcount,
                conn.executemany("INSERT INTO t VALUES (?)", [(Tagged("d"),)]).rowcount,
                conn.execute("SELECT v FROM t ORDER BY rowid").fetchall(),
            ]
        )
    assert results[1] == results[0]
    assert results[0][0] == ("tagged:a",)
    assert not statement.kinds  # nothing cached for the hot paths while the adapter exists
    for conn in (stdlib, ours):
        conn.close()


_SQL = "SELECT 1 UNION ALL SELECT 2"


def _calls(conn: Any, cur: Any) -> list[str]:
    """What each call of a connection and its cursor raised (or "no error")."""
    out = []
    for call in (
        lambda: conn.execute(_SQL),
        lambda: cur.execute(_SQL),
        cur.fetchone,
        lambda: next(cur),
    ):
        try:
            call()
            out.append("no error")
        except Exception as exc:
            out.append(type(exc).__name__)
    return out


def _checks(conn: Any) -> list[Any]:
    cur = conn.execute(_SQL)  # cached from here on
    seen: list[Any] = [cur.fetchone(), conn.execute(_SQL).fetchall()]
    caught: list[list[str]] = []
    thread = threading.Thread(target=lambda: caught.append(_calls(conn, cur)))
    thread.start()
    thread.join()
    seen.extend(caught)
    conn.close()
    seen.append(_calls(conn, cur))
    return seen


def test_closed_connection_and_wrong_thread_on_cached_statements(
    memory_store: MemoryStore,
) -> None:
    stdlib, ours = (_checks(conn) for conn in _both(memory_store, "checks"))
    assert ours == stdlib
    assert stdlib[2:] == [["ProgrammingError"] * 4, ["ProgrammingError"] * 4]


def test_threads_sharing_a_connection_take_turns_in_the_implicit_begin(
    memory_store: MemoryStore,
) -> None:
    """The stdlib races here (its implicit BEGIN and its commit are each a check-then-act
    across threads, so it fails about one run in five); sqlkv's connection makes each of
    them one step under its lock, so nothing fails and every row is there."""
    conn = dbapi2.connect("shared", store=memory_store, check_same_thread=False)
    conn.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, worker INTEGER, i INTEGER)")
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            cur = conn.cursor()
            for i in range(100):
                cur.execute("INSERT INTO t(worker, i) VALUES (?, ?)", (worker, i))
                conn.execute("SELECT count(*) FROM t WHERE worker = ?", (worker,)).fetchall()
                if i % 10 == 9:
                    conn.commit()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    conn.commit()
    assert errors == []
    assert conn.execute("SELECT worker, count(*) FROM t GROUP BY worker").fetchall() == [
        (w, 100) for w in range(4)
    ]
    conn.close()
