"""What the DB-API module does that the stdlib cannot show: what a name, a path and
``":memory:"`` mean, backups to plain SQLite files, sqlkv's safety authorizer staying in
front of the user's, and the sqlkv classes of errors."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

import sqlkv.dbapi2 as dbapi2
from sqlkv.errors import ConfigError, ConnectionFenced, SqlkvError
from sqlkv.store import MemoryStore


def test_memory_is_a_private_database_gone_at_close() -> None:
    first = dbapi2.connect(":memory:")
    first.execute("CREATE TABLE t(x)")
    first.execute("INSERT INTO t VALUES (1)")
    second = dbapi2.connect(":memory:")  # its own database: no takeover, no table
    assert second.execute("SELECT name FROM sqlite_master").fetchall() == []
    assert first.execute("SELECT x FROM t").fetchall() == [(1,)]
    first.close()
    second.close()
    assert dbapi2.connect("").execute("SELECT 1").fetchone() == (1,)


@pytest.mark.parametrize(
    "database", ["data/app.db", "app.db", "app.sqlite3", "/tmp/x", Path("app"), b"app"]
)
def test_a_file_path_is_refused_with_a_hint(database: object) -> None:
    with pytest.raises(dbapi2.OperationalError, match="sqlkv import") as refused:
        dbapi2.connect(database, store="memory://")
    assert isinstance(refused.value, ConfigError)


def test_memory_takes_no_store() -> None:
    with pytest.raises(ConfigError, match="private"):
        dbapi2.connect(":memory:", store="memory://")


def test_uri_names(memory_store: MemoryStore) -> None:
    conn = dbapi2.connect("file:orders?mode=rwc", uri=True, store=memory_store)
    conn.execute("CREATE TABLE t(x)")
    conn.commit()
    conn.close()
    again = dbapi2.connect("orders", store=memory_store)
    assert again.execute("SELECT count(*) FROM t").fetchone() == (0,)
    again.close()
    dbapi2.connect("file::memory:", uri=True).close()
    with pytest.raises(dbapi2.OperationalError, match="unknown parameter"):
        dbapi2.connect("file:x?store=y", uri=True)
    with pytest.raises(TypeError):
        dbapi2.connect(42)


def test_connect_failure_is_an_operational_error_of_its_sqlkv_class() -> None:
    with pytest.raises(dbapi2.OperationalError) as failed:
        dbapi2.connect("db", store="nope://x")
    assert isinstance(failed.value, ConfigError)


def _source(store: MemoryStore) -> dbapi2.Connection:
    conn = dbapi2.connect("src", store=store)
    conn.executescript(
        "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);"
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 300) "
        "INSERT INTO t(v) SELECT 'row ' || i FROM n;"
    )
    return conn


def test_backup_to_a_plain_sqlite_file(memory_store: MemoryStore, tmp_path: Path) -> None:
    conn = _source(memory_store)
    path = tmp_path / "copy.db"
    steps: list[int] = []
    conn.backup(str(path), pages=2, progress=lambda status, left, total: steps.append(left))
    conn.close()
    assert steps[-1] == 0 and len(steps) > 1
    plain = sqlite3.connect(path)
    assert plain.execute("SELECT count(*), max(v) FROM t").fetchone() == (300, "row 99")
    assert plain.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    plain.close()


def test_backup_into_a_stdlib_connection_and_between_sqlkv_databases(
    memory_store: MemoryStore,
) -> None:
    conn = _source(memory_store)
    plain = sqlite3.connect(":memory:")
    conn.backup(plain)
    assert plain.execute("SELECT count(*) FROM t").fetchone() == (300,)
    plain.close()
    target = dbapi2.connect("dst", store=memory_store)
    conn.backup(target)
    target.close()
    conn.close()
    reopened = dbapi2.connect("dst", store=memory_store)  # the copy is durable
    assert reopened.execute("SELECT count(*) FROM t").fetchone() == (300,)
    assert reopened.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    reopened.close()


def test_user_authorizer_runs_after_the_safety_authorizer(memory_store: MemoryStore) -> None:
    conn = dbapi2.connect("db", store=memory_store)
    seen: list[int] = []
    conn.set_authorizer(lambda action, *args: seen.append(action) or dbapi2.SQLITE_OK)
    with pytest.raises(dbapi2.DatabaseError, match="journal_mode"):
        conn.execute("PRAGMA journal_mode=WAL")  # refused by sqlkv even if the user allows it
    conn.execute("SELECT 1").fetchall()
    assert dbapi2.SQLITE_SELECT in seen
    conn.set_authorizer(None)
    with pytest.raises(dbapi2.DatabaseError, match="synchronous"):
        conn.execute("PRAGMA synchronous=OFF")  # clearing the user's leaves sqlkv's
    conn.close()


def test_a_fenced_connection_raises_operational_error_and_connection_fenced(
    memory_store: MemoryStore,
) -> None:
    first = dbapi2.connect("db", store=memory_store)
    first.execute("CREATE TABLE t(x)")
    first.commit()
    second = dbapi2.connect("db", store=memory_store)  # takes the database over
    with pytest.raises(ConnectionFenced) as fenced:
        first.execute("INSERT INTO t VALUES (1)")
        first.commit()
    assert isinstance(fenced.value, dbapi2.OperationalError)
    assert isinstance(fenced.value, SqlkvError)
    assert "open a new connection" in str(fenced.value)
    second.close()
    first.close()


def test_sqlkv_connection_is_the_apsw_connection_underneath(memory_store: MemoryStore) -> None:
    conn = dbapi2.connect("db", store=memory_store)
    conn.execute("CREATE TABLE t(x)")
    conn.execute("INSERT INTO t VALUES (1)")
    conn.commit()
    assert conn.sqlkv_connection.sqlkv_stats.commits >= 1
    with pytest.raises(dbapi2.NotSupportedError):
        conn.deserialize(b"")
    assert conn.serialize()[:16] == b"SQLite format 3\x00"
    conn.close()


def test_iterdump_filter_where_the_stdlib_has_it(memory_store: MemoryStore) -> None:
    import sys

    conn = dbapi2.connect("db", store=memory_store)
    conn.executescript("CREATE TABLE a(x); CREATE TABLE b(y); INSERT INTO b VALUES (1);")
    if sys.version_info >= (3, 13):
        assert not any("a(x)" in line for line in conn.iterdump(filter="b"))
    else:
        with pytest.raises(dbapi2.NotSupportedError, match=r"3\.13"):
            conn.iterdump(filter="b")
    assert any("a(x)" in line for line in conn.iterdump())
    conn.close()
