"""SQL that would silently lose commits, corrupt the database or lock it out is refused with a
message that says what to do; everything else about pragmas and ATTACH keeps working."""

from __future__ import annotations

import apsw
import pytest
from vfs_support import Opener, integrity, rows

UNSAFE_PRAGMAS = [
    "PRAGMA synchronous=OFF",  # SQLite never calls xSync: no commit reaches the engine
    "PRAGMA main.synchronous = 0",
    "PRAGMA journal_mode=WAL",  # commits stay in an in-memory WAL; the database stops opening
    "PRAGMA journal_mode=OFF",  # a spilled transaction cannot roll back (docs/design.md §5)
    "PRAGMA main.journal_mode=delete",
    "PRAGMA page_size=8192",  # with the next VACUUM the database stops opening
]


@pytest.mark.parametrize("sql", UNSAFE_PRAGMAS)
def test_pragmas_that_would_lose_commits_or_lock_the_database_out_are_refused(
    open_mem: Opener, sql: str
) -> None:
    conn = open_mem()
    with pytest.raises(apsw.AuthError, match="sqlkv"):
        conn.execute(sql).fetchall()
    conn.execute("CREATE TABLE t(x)")
    conn.execute("INSERT INTO t VALUES (1)")
    conn.execute("VACUUM")
    other = open_mem()  # a new owner, as after a crash of the first: every commit is there
    assert rows(other, "SELECT x FROM t") == [(1,)]
    assert integrity(other) == "ok"


@pytest.mark.parametrize(
    "sql",
    [
        "PRAGMA synchronous",
        "PRAGMA synchronous=NORMAL",
        "PRAGMA synchronous=FULL",
        "PRAGMA journal_mode",
        "PRAGMA journal_mode=memory",
        "PRAGMA temp.journal_mode=OFF",
        "PRAGMA page_size",
        "PRAGMA page_size=4096",
        "PRAGMA locking_mode=EXCLUSIVE",
        "PRAGMA cache_size=100",
    ],
)
def test_harmless_pragmas_still_run(open_mem: Opener, sql: str) -> None:
    conn = open_mem()
    conn.execute(sql).fetchall()
    conn.execute("CREATE TABLE t(x)")
    conn.execute("INSERT INTO t VALUES (1)")
    assert rows(open_mem(), "SELECT x FROM t") == [(1,)]


def test_attaching_a_file_is_refused_and_the_database_stays_intact(open_mem: Opener) -> None:
    conn = open_mem()
    conn.execute("CREATE TABLE t(x)")
    with pytest.raises(apsw.CantOpenError, match="ATTACH"):
        conn.execute("ATTACH 'other.db' AS o")
    for _ in range(50):
        conn.execute("INSERT INTO t VALUES (randomblob(500))")
    assert integrity(conn) == "ok"
    assert rows(open_mem(), "SELECT name FROM sqlite_master") == [("t",)]


def test_attaching_a_temporary_or_memory_database_still_works(open_mem: Opener) -> None:
    conn = open_mem()
    conn.execute("CREATE TABLE t(x)")
    conn.execute("ATTACH '' AS scratch")
    conn.execute("ATTACH ':memory:' AS mem")
    conn.execute("CREATE TABLE scratch.u(y)")
    conn.execute("CREATE TABLE mem.v(z)")
    conn.execute("INSERT INTO scratch.u VALUES (1)")
    conn.execute("INSERT INTO mem.v VALUES (2)")
    assert rows(conn, "SELECT y FROM scratch.u") == [(1,)]
    assert rows(conn, "SELECT z FROM mem.v") == [(2,)]
    assert rows(open_mem(), "SELECT name FROM sqlite_master") == [("t",)]


def test_user_authorizer_still_runs_alongside_the_pragma_guard(open_mem: Opener) -> None:
    conn = open_mem()
    seen: list[int] = []

    def authorizer(op: int, a1: str | None, a2: str | None, db: str | None, t: str | None) -> int:
        seen.append(op)
        return apsw.SQLITE_DENY if op == apsw.SQLITE_DELETE else apsw.SQLITE_OK

    conn.authorizer = authorizer
    assert conn.authorizer is authorizer
    conn.execute("CREATE TABLE t(x)")
    with pytest.raises(apsw.AuthError):
        conn.execute("DELETE FROM t")
    with pytest.raises(apsw.AuthError, match="sqlkv"):
        conn.execute("PRAGMA synchronous=OFF")
    assert apsw.SQLITE_CREATE_TABLE in seen
    conn.authorizer = None
    conn.execute("DELETE FROM t")
    with pytest.raises(apsw.AuthError, match="sqlkv"):
        conn.execute("PRAGMA synchronous=OFF")
