"""Transaction control, differentially against the stdlib ``sqlite3``: the legacy implicit
BEGIN before DML and every ``isolation_level``, commit and rollback, ``with conn:``, explicit
BEGIN/COMMIT, and the state (in_transaction, total_changes) after each step."""

from __future__ import annotations

import pytest
from differential import Compare, Trace


def _setup(t: Trace, **kwargs: object) -> object:
    conn = t.connect(**kwargs)
    conn.execute("CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, v TEXT UNIQUE)")
    return conn


def _reopen(t: Trace, conn: object, label: str, **kwargs: object) -> object:
    """Close ``conn`` (what it did not commit is lost) and record what a new connection
    sees. (sqlkv has one owner per database: a second connection would take it over.)"""
    conn.close()  # type: ignore[attr-defined]
    again = t.connect(**kwargs)
    t(label, lambda: again.execute("SELECT v FROM t ORDER BY id").fetchall())
    return again


def legacy_implicit_begin(t: Trace) -> None:
    conn = _setup(t)
    t("isolation_level default", lambda: conn.isolation_level)
    t.state("after DDL", conn)
    t("select does not begin", lambda: conn.execute("SELECT * FROM t").fetchall())
    t.state("after select", conn)
    conn.execute("INSERT INTO t(v) VALUES ('a')")
    t.state("insert begins", conn)
    conn.execute("CREATE TABLE u(x)")
    t.state("DDL inside the transaction", conn)
    t("rollback", conn.rollback)
    t.state("after rollback", conn)
    conn = _reopen(t, conn, "nothing committed")
    conn.execute("UPDATE t SET v = 'x'")
    t.state("update without rows begins", conn)
    t("commit", conn.commit)
    t("commit again", conn.commit)
    t("rollback with nothing open", conn.rollback)
    conn.execute("INSERT INTO t(v) VALUES ('b')")
    conn.execute("DELETE FROM t WHERE v = 'nothing'")
    t("commit b", conn.commit)
    t.state("after commit", conn)
    conn = _reopen(t, conn, "b committed")


@pytest.mark.parametrize("level", [None, "", "DEFERRED", "IMMEDIATE", "EXCLUSIVE", "deferred"])
def test_isolation_levels(compare: Compare, level: str | None) -> None:
    def scenario(t: Trace) -> None:
        conn = _setup(t, isolation_level=level)
        t("level", lambda: conn.isolation_level)
        conn.execute("INSERT INTO t(v) VALUES ('a')")
        t.state("after insert", conn)
        t("commit", conn.commit)
        t.state("after commit", conn)
        conn = _reopen(t, conn, "committed")

    compare(scenario)


def isolation_level_changes(t: Trace) -> None:
    conn = _setup(t)
    conn.execute("INSERT INTO t(v) VALUES ('a')")
    t.state("open", conn)

    def set_level(value: object) -> object:
        conn.isolation_level = value
        return conn.isolation_level

    t("set IMMEDIATE", set_level, "IMMEDIATE")
    t.state("still open", conn)
    t("set None commits", set_level, None)
    t.state("after None", conn)
    conn.execute("INSERT INTO t(v) VALUES ('b')")
    t.state("autocommit insert", conn)
    t("set bogus", set_level, "BOGUS")
    t("set int", set_level, 1)
    t("set lower", set_level, "exclusive")
    t("bad connect level", lambda: t.connect("x", isolation_level="NOPE"))
    conn = _reopen(t, conn, "rows")


def explicit_begin_commit(t: Trace) -> None:
    conn = _setup(t, isolation_level=None)
    t("begin", conn.execute, "BEGIN")
    t.state("after BEGIN", conn)
    conn.execute("INSERT INTO t(v) VALUES ('a')")
    t("nested begin", conn.execute, "BEGIN")
    t("commit statement", conn.execute, "COMMIT")
    t.state("after COMMIT", conn)
    t("commit outside", conn.execute, "COMMIT")
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("INSERT INTO t(v) VALUES ('b')")
    t("savepoint", conn.execute, "SAVEPOINT s")
    conn.execute("INSERT INTO t(v) VALUES ('c')")
    t("rollback to", conn.execute, "ROLLBACK TO s")
    t("release", conn.execute, "RELEASE s")
    t("rollback statement", conn.execute, "ROLLBACK")
    t.state("after ROLLBACK", conn)
    conn = _reopen(t, conn, "only a")


def context_manager(t: Trace) -> None:
    conn = _setup(t)
    with conn:
        conn.execute("INSERT INTO t(v) VALUES ('a')")
    t.state("after with", conn)
    conn = _reopen(t, conn, "a committed")

    def failing_block() -> None:
        with conn:
            conn.execute("INSERT INTO t(v) VALUES ('b')")
            raise KeyError("boom")

    t("exception in block", failing_block)
    t.state("after failed with", conn)

    def constraint_in_block() -> None:
        with conn:
            conn.execute("INSERT INTO t(v) VALUES ('c')")
            conn.execute("INSERT INTO t(v) VALUES ('a')")

    t("constraint in block", constraint_in_block)
    t.state("after constraint", conn)
    t("enter returns the connection", lambda: conn.__enter__() is conn)
    t("exit", conn.__exit__, None, None, None)
    t("does not close", lambda: conn.execute("SELECT count(*) FROM t").fetchone())
    with conn:
        pass
    t.state("empty block", conn)
    conn = _reopen(t, conn, "only a")


def deferred_constraint_at_commit(t: Trace) -> None:
    conn = t.connect()
    conn.executescript(
        "PRAGMA foreign_keys=ON;"
        "CREATE TABLE p(id INTEGER PRIMARY KEY);"
        "CREATE TABLE c(pid REFERENCES p(id) DEFERRABLE INITIALLY DEFERRED);"
    )

    def block() -> None:
        with conn:
            conn.execute("INSERT INTO c VALUES (5)")

    t("commit fails in with", block)
    t.state("after failed commit", conn)
    conn.execute("INSERT INTO c VALUES (6)")
    t("explicit commit fails", conn.commit)
    t.state("after explicit failure", conn)
    t("rollback", conn.rollback)
    t("rows", lambda: conn.execute("SELECT count(*) FROM c").fetchone())


def total_changes_counts(t: Trace) -> None:
    conn = _setup(t)
    conn.executemany("INSERT INTO t(v) VALUES (?)", [("a",), ("b",)])
    conn.execute("UPDATE t SET v = v || '!'")
    conn.execute("CREATE TRIGGER tr AFTER DELETE ON t BEGIN INSERT INTO t(v) VALUES ('gone'); END")
    conn.execute("DELETE FROM t WHERE v = 'a!'")
    t.state("after trigger", conn)
    conn.rollback()
    t.state("after rollback", conn)


SCENARIOS = [
    legacy_implicit_begin,
    isolation_level_changes,
    explicit_begin_commit,
    context_manager,
    deferred_constraint_at_commit,
    total_changes_counts,
]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.__name__)
def test_transactions_behave_as_the_stdlib(compare: Compare, scenario: object) -> None:
    events = compare(scenario)  # type: ignore[arg-type]
    assert len(events) > 3
