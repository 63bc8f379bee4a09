"""``sqlkv.dbapi2.connect(..., readonly=, at=)``: read-only connections behave as the
stdlib's ``mode=ro`` connections, error for error (docs/read-replicas.md)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from history_fake import history_engine

import sqlkv.dbapi2 as dbapi2


@pytest.fixture(params=["fake", "engine"])
def fake(request: pytest.FixtureRequest) -> Iterator[Any]:
    engine = history_engine(request.param)
    yield engine
    engine.close()


WRITES = [
    "INSERT INTO t VALUES (3)",
    "UPDATE t SET x = 0",
    "CREATE TABLE u(y)",
    "DROP TABLE t",
    "PRAGMA user_version = 1",
]


@pytest.mark.parametrize("sql", WRITES)
def test_a_write_raises_what_the_stdlib_raises_on_a_read_only_file(
    tmp_path: Path, fake: Any, sql: str
) -> None:
    path = tmp_path / "ro.db"
    with sqlite3.connect(path) as setup:
        setup.execute("CREATE TABLE t(x)")
    setup.close()
    stdlib = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    writer = dbapi2.connect("db", engine=fake)
    writer.execute("CREATE TABLE t(x)")
    reader = dbapi2.connect("db", engine=fake, readonly=True)
    with pytest.raises(sqlite3.OperationalError) as theirs:
        stdlib.execute(sql)
    with pytest.raises(dbapi2.OperationalError) as ours:
        reader.execute(sql)
    assert str(ours.value) == str(theirs.value) == "attempt to write a readonly database"
    assert ours.value.sqlite_errorname == theirs.value.sqlite_errorname == "SQLITE_READONLY"
    assert ours.value.sqlite_errorcode == theirs.value.sqlite_errorcode
    for conn in (stdlib, reader, writer):
        conn.close()


def test_a_pep249_transaction_reads_one_state_until_commit(fake: Any) -> None:
    writer = dbapi2.connect("db", engine=fake, autocommit=True)
    writer.execute("CREATE TABLE t(x)")
    writer.execute("INSERT INTO t VALUES (1)")
    reader = dbapi2.connect("db", engine=fake, readonly=True, autocommit=False)
    assert reader.execute("SELECT x FROM t").fetchall() == [(1,)]
    writer.execute("INSERT INTO t VALUES (2)")
    assert reader.execute("SELECT x FROM t").fetchall() == [(1,)]
    reader.commit()  # ends the read transaction: the next one reads the newest state
    assert reader.execute("SELECT x FROM t ORDER BY x").fetchall() == [(1,), (2,)]
    pinned = dbapi2.connect("db", engine=fake, at=3)
    assert pinned.execute("SELECT x FROM t").fetchall() == [(1,)]
    for conn in (pinned, reader, writer):
        conn.close()
