"""Scenarios of the 3.12 ``autocommit`` attribute. The stdlib has it from Python 3.12 only,
so on older Pythons the reference is ``stdlib_autocommit.json``, recorded from the stdlib of
3.12 by ``record_stdlib.py``; this module imports only the standard library for that."""

from __future__ import annotations

from typing import Any

from differential import Trace


def _setup(t: Trace, **kwargs: Any) -> Any:
    conn = t.connect(**kwargs)
    conn.execute("CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, v TEXT)")
    return conn


def _reopen(t: Trace, conn: Any, label: str, **kwargs: Any) -> Any:
    conn.close()
    again = t.connect(**kwargs)
    t(label, lambda: again.execute("SELECT v FROM t ORDER BY id").fetchall())
    return again


def pep249_mode(t: Trace) -> None:
    conn = _setup(t, autocommit=False)
    t("autocommit", lambda: conn.autocommit)
    t.state("open at connect", conn)
    conn.execute("INSERT INTO t(v) VALUES ('a')")
    t("commit", conn.commit)
    t.state("reopened after commit", conn)
    conn.execute("INSERT INTO t(v) VALUES ('b')")
    t("rollback", conn.rollback)
    t.state("reopened after rollback", conn)
    conn.execute("INSERT INTO t(v) VALUES ('c')")
    t("script keeps the transaction", conn.executescript, "INSERT INTO t(v) VALUES ('d');")
    t.state("after script", conn)
    t("isolation_level ignored", lambda: conn.isolation_level)
    conn = _reopen(t, conn, "close rolled back", autocommit=False)
    with conn:
        conn.execute("INSERT INTO t(v) VALUES ('e')")
    t.state("after with", conn)
    conn = _reopen(t, conn, "with committed", autocommit=False)


def autocommit_mode(t: Trace) -> None:
    conn = _setup(t, autocommit=True)
    t.state("fresh", conn)
    conn.execute("INSERT INTO t(v) VALUES ('a')")
    t.state("insert commits itself", conn)
    t("commit does nothing", conn.commit)
    conn.execute("BEGIN")
    conn.execute("INSERT INTO t(v) VALUES ('b')")
    t("rollback does nothing", conn.rollback)
    t.state("still open", conn)
    conn.execute("ROLLBACK")
    with conn:
        conn.execute("INSERT INTO t(v) VALUES ('c')")
    t.state("with does nothing", conn)
    conn = _reopen(t, conn, "a and c", autocommit=True)


def switching_modes(t: Trace) -> None:
    conn = _setup(t)
    t("default", lambda: conn.autocommit)
    conn.execute("INSERT INTO t(v) VALUES ('a')")
    t.state("legacy open", conn)

    def set_mode(value: Any) -> Any:
        conn.autocommit = value
        return conn.autocommit

    t("to True commits", set_mode, True)
    t.state("after True", conn)
    t("to False begins", set_mode, False)
    t.state("after False", conn)
    conn.execute("INSERT INTO t(v) VALUES ('b')")
    t("to legacy", set_mode, t.db.LEGACY_TRANSACTION_CONTROL)
    t.state("after legacy", conn)
    t("commit in legacy", conn.commit)
    t("bad value", set_mode, "yes")
    t("bad connect value", t.connect, "other", autocommit=2)
    t("level None with autocommit False", set_mode, False)
    conn.isolation_level = None
    t.state("after level None", conn)
    conn = _reopen(t, conn, "rows")


AUTOCOMMIT_SCENARIOS = [pep249_mode, autocommit_mode, switching_modes]
