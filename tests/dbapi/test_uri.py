"""``connect(uri=True)``: SQLite's URI parameters on sqlkv databases, against the stdlib's
``sqlite3.connect("file:...", uri=True)`` on a file wherever the behaviour can match (the
exception class, message and SQLite error name), and sqlkv's refusals where it cannot
(docs/python-dbapi.md §1)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import sqlkv.dbapi2 as dbapi2
from sqlkv.errors import ConfigError, DatabaseNotFound
from sqlkv.store import MemoryStore

Outcome = tuple[str, str, str | None]


def _outcome(module: Any, open_: Callable[[], Any], sql: str | None) -> Outcome:
    """What opening (then running ``sql`` and committing) gave: ("ok", rows, None) or the
    DB-API class name, the message and the SQLite error name."""
    try:
        conn = open_()
        try:
            rows = conn.execute(sql).fetchall() if sql else []
            conn.commit()
        finally:
            conn.close()
    except module.Error as exc:
        name = type(exc).__name__ if module is sqlite3 else _pep249(exc)
        return name, str(exc), getattr(exc, "sqlite_errorname", None)
    return "ok", repr(rows), None


def _pep249(exc: BaseException) -> str:
    """The PEP 249 class of ``exc`` (a sqlkv dual class is e.g. ``X(OperationalError)``)."""
    for cls in type(exc).__mro__:
        if cls.__module__ == "sqlkv.dbapi2.exceptions":
            return cls.__name__
    raise AssertionError(f"{exc!r} is no DB-API error")


@pytest.fixture
def both(tmp_path: Path, memory_store: MemoryStore) -> Callable[[str, str | None], tuple[Any, Any]]:
    """``both(query, sql)``: the stdlib on ``file:<tmp>/db?query`` and sqlkv on
    ``file:db?query``, each database holding table ``t`` with one row (``missing``: none)."""
    with sqlite3.connect(tmp_path / "db") as setup:
        setup.execute("CREATE TABLE t(x)")
        setup.execute("INSERT INTO t VALUES (1)")
    setup.close()
    with dbapi2.connect("db", store=memory_store) as ours:
        ours.execute("CREATE TABLE t(x)")
        ours.execute("INSERT INTO t VALUES (1)")
    ours.close()

    def run(name_query: str, sql: str | None) -> tuple[Any, Any]:
        theirs = _outcome(
            sqlite3,
            lambda: sqlite3.connect(f"file:{tmp_path}/{name_query}", uri=True),
            sql,
        )
        mine = _outcome(
            dbapi2,
            lambda: dbapi2.connect(f"file:{name_query}", uri=True, store=memory_store),
            sql,
        )
        return theirs, mine

    return run


WRITE = "INSERT INTO t VALUES (2)"
READ = "SELECT x FROM t"


@pytest.mark.parametrize(
    ("name_query", "sql"),
    [
        ("db?mode=ro", WRITE),  # read-only: the stdlib's class, message and error name
        ("db?mode=ro", "CREATE TABLE u(y)"),
        ("db?mode=ro", READ),
        ("db?mode=ro&cache=private", WRITE),
        ("db?immutable=1", WRITE),
        ("db?immutable=yes", READ),
        ("db?mode=rw", WRITE),
        ("db?mode=rwc", WRITE),
        ("db?mode=ro&immutable=0", WRITE),
        ("db?nolock=1", WRITE),
        ("db?psow=0", WRITE),
        ("db#fragment", READ),
        ("db?mode=bogus", None),  # what SQLite's own URI parsing refuses, in its words
        ("db?cache=bogus", None),
    ],
)
def test_uri_parameters_behave_as_the_stdlibs(
    both: Callable[[str, str | None], tuple[Any, Any]], name_query: str, sql: str | None
) -> None:
    theirs, mine = both(name_query, sql)
    assert mine == theirs


@pytest.mark.parametrize("query", ["mode=ro", "mode=rw"])
def test_opening_a_missing_database_for_reading_or_writing_fails_as_in_the_stdlib(
    tmp_path: Path, memory_store: MemoryStore, query: str
) -> None:
    with pytest.raises(sqlite3.OperationalError, match="unable to open database file"):
        sqlite3.connect(f"file:{tmp_path}/missing?{query}", uri=True)
    with pytest.raises(dbapi2.OperationalError, match="unable to open database file") as ours:
        dbapi2.connect(f"file:missing?{query}", uri=True, store=memory_store)
    assert isinstance(ours.value, DatabaseNotFound)
    # nothing was created: the name is still free, and mode=rwc (the default) creates it
    with pytest.raises(dbapi2.OperationalError):
        dbapi2.connect("file:missing?mode=ro", uri=True, store=memory_store)
    dbapi2.connect("file:missing", uri=True, store=memory_store).close()
    dbapi2.connect("file:missing?mode=rw", uri=True, store=memory_store).close()


def test_a_read_only_uri_never_takes_the_database_over(memory_store: MemoryStore) -> None:
    owner = dbapi2.connect("db", store=memory_store, autocommit=True)
    owner.execute("CREATE TABLE t(x)")
    reader = dbapi2.connect("file:db?mode=ro", uri=True, store=memory_store)
    owner.execute("INSERT INTO t VALUES (1)")  # not fenced by the reader
    assert reader.execute("SELECT x FROM t").fetchall() == [(1,)]  # it follows the head
    assert reader.sqlkv_connection.sqlkv_readonly
    for conn in (reader, owner):
        conn.close()


@pytest.mark.parametrize(
    ("uri", "error", "words"),
    [
        ("file:db?vfs=unix", dbapi2.OperationalError, "no such vfs: unix"),
        ("file://elsewhere/db", dbapi2.OperationalError, "invalid uri authority: elsewhere"),
    ],
)
def test_what_sqlite_refuses_is_refused_with_its_words(
    tmp_path: Path, memory_store: MemoryStore, uri: str, error: type[Exception], words: str
) -> None:
    stdlib_uri = uri.replace("db", f"{tmp_path}/db").replace("vfs=unix", "vfs=nope")
    with pytest.raises(sqlite3.OperationalError):
        sqlite3.connect(stdlib_uri, uri=True)
    with pytest.raises(error, match=words) as refused:
        dbapi2.connect(uri, uri=True, store=memory_store)
    assert refused.value.sqlite_errorname == "SQLITE_ERROR"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("uri", "error", "words"),
    [
        ("file:db?cache=shared", dbapi2.NotSupportedError, "drop cache=shared"),
        ("file::memory:?cache=shared", dbapi2.NotSupportedError, "drop cache=shared"),
        ("file:db?mdoe=ro", dbapi2.OperationalError, "unknown parameter"),
        ("file:db?store=memory://", dbapi2.OperationalError, "connect\\(\\) arguments"),
        ("file:db?mode=ro&mode=rw", dbapi2.OperationalError, "more than once"),
        ("file:db?immutable=banana", dbapi2.OperationalError, "give 1 or 0"),
        ("file:data/app.db?mode=ro", dbapi2.OperationalError, "sqlkv import"),
    ],
)
def test_what_sqlkv_cannot_do_is_refused_with_what_to_do(
    memory_store: MemoryStore, uri: str, error: type[Exception], words: str
) -> None:
    with pytest.raises(error, match=words) as refused:
        dbapi2.connect(uri, uri=True, store=None if "memory:" in uri else memory_store)
    assert isinstance(refused.value, ConfigError)


def test_a_uri_mode_and_contradicting_keywords_are_refused(memory_store: MemoryStore) -> None:
    dbapi2.connect("db", store=memory_store).close()
    with pytest.raises(ConfigError, match="drop readonly=False"):
        dbapi2.connect("file:db?mode=ro", uri=True, store=memory_store, readonly=False)
    with pytest.raises(ConfigError, match="use mode=ro"):
        dbapi2.connect("file:db?mode=rw", uri=True, store=memory_store, readonly=True)
    with pytest.raises(ConfigError, match="use mode=ro"):
        dbapi2.connect("file:db", uri=True, store=memory_store, at=1)
    agreeing = dbapi2.connect("file:db?mode=ro", uri=True, store=memory_store, readonly=True)
    agreeing.close()


def test_memory_uris_are_private_memory_databases() -> None:
    for uri in ("file::memory:", "file:anything?mode=memory"):
        conn = dbapi2.connect(uri, uri=True)
        conn.execute("CREATE TABLE t(x)")
        other = dbapi2.connect(uri, uri=True)
        assert other.execute("SELECT * FROM sqlite_master").fetchall() == []
        for each in (other, conn):
            each.close()
