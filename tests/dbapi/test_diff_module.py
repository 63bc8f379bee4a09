"""Module-level interface, differentially against the stdlib ``sqlite3``: attributes and
constants, the exception hierarchy, ``Row``, ``Binary``, the date/time constructors,
adapters and converters (``detect_types``), ``adapt`` and ``complete_statement``."""

from __future__ import annotations

import datetime
import sqlite3
from collections.abc import Iterator

import pytest
from differential import PEP249, Compare, Trace

import sqlkv.dbapi2 as dbapi2


def test_module_attributes_match_the_stdlib() -> None:
    public = {n for n in dir(sqlite3) if not n.startswith("_")}
    missing = public - set(dir(dbapi2)) - {"collections", "datetime", "time", "dbapi2", "dump"}
    assert missing == set()
    for name in public:
        if name.startswith("SQLITE_") or name.startswith("PARSE_"):
            assert getattr(dbapi2, name) == getattr(sqlite3, name), name
    assert (dbapi2.apilevel, dbapi2.paramstyle, dbapi2.threadsafety) == ("2.0", "qmark", 3)
    assert dbapi2.sqlite_version_info >= (3, 35, 0)
    assert isinstance(dbapi2.version, str)
    assert dbapi2.LEGACY_TRANSACTION_CONTROL == -1


def test_exception_hierarchy_is_pep_249() -> None:
    for name in PEP249:
        ours, theirs = getattr(dbapi2, name), getattr(sqlite3, name)
        assert [c.__name__ for c in ours.__mro__ if c.__name__ in PEP249] == [
            c.__name__ for c in theirs.__mro__ if c.__name__ in PEP249
        ]
        conn_attr = getattr(dbapi2.Connection, name)
        assert conn_attr is ours


def test_constructors_match_the_stdlib() -> None:
    for name in ("Date", "Time", "Timestamp", "Binary"):
        assert getattr(dbapi2, name) is getattr(sqlite3, name)
    for name in ("DateFromTicks", "TimeFromTicks", "TimestampFromTicks"):
        assert getattr(dbapi2, name)(1_700_000_000) == getattr(sqlite3, name)(1_700_000_000)


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT 1",
        "SELECT 1;",
        "SELECT 'a;",
        "CREATE TRIGGER t AFTER INSERT ON x BEGIN SELECT 1;",
        "CREATE TRIGGER t AFTER INSERT ON x BEGIN SELECT 1; END;",
        "-- c\n",
        "",
        ";",
    ],
)
def test_complete_statement_matches_the_stdlib(sql: str) -> None:
    assert dbapi2.complete_statement(sql) == sqlite3.complete_statement(sql)


class Point:
    def __init__(self, x: float, y: float) -> None:
        self.x, self.y = x, y


class Conforming:
    def __conform__(self, protocol: object) -> str:
        return "conformed"


@pytest.fixture
def point_registered() -> Iterator[None]:
    """A Point adapter and converter, registered with both modules, removed after."""
    for db in (sqlite3, dbapi2):
        db.register_adapter(Point, lambda p: f"{p.x};{p.y}")
        db.register_converter("point", lambda b: tuple(float(v) for v in b.split(b";")))
    yield
    for db in (sqlite3, dbapi2):
        del db.adapters[(Point, db.PrepareProtocol)]
        del db.converters["POINT"]


def adapters_and_converters(t: Trace) -> None:
    db = t.db
    conn = t.connect(detect_types=db.PARSE_DECLTYPES | db.PARSE_COLNAMES)
    conn.execute("CREATE TABLE t(p point, d date, ts timestamp, n NUMERIC(10, 2), x)")
    when = datetime.datetime(2024, 2, 29, 12, 30, 45, 123456)
    t(
        "insert",
        conn.execute,
        "INSERT INTO t VALUES (?, ?, ?, ?, ?)",
        (Point(1, 2.5), when.date(), when, 3, Conforming()),
    )
    t("decltypes", lambda: conn.execute("SELECT p, d, ts, n, x FROM t").fetchone())
    t(
        "colnames",
        lambda: conn.execute('SELECT x AS "x [point]", d AS "d [timestamp]" FROM t').fetchone(),
    )
    t("colname description", lambda: conn.execute('SELECT 1 AS "a [int]", 2 AS "b"').description)
    t("no converter for NULL", lambda: conn.execute("SELECT CAST(NULL AS point)").fetchone())
    plain = t.connect("plain")
    t("no detect_types", lambda: plain.execute("SELECT ?, ?", (when, when.date())).fetchone())
    t("adapt", db.adapt, Point(3, 4))
    t("adapt conform", db.adapt, Conforming())
    t("adapt with alt", db.adapt, object(), db.PrepareProtocol, "alt")
    t("adapt fails", db.adapt, object())
    t("adapt int", db.adapt, 5)


def rows(t: Trace) -> None:
    conn = t.connect()
    conn.row_factory = t.db.Row
    cur = conn.execute("SELECT 1 AS a, 'x' AS b")
    row = cur.fetchone()
    t("construct", lambda: tuple(t.db.Row(cur, (5, 6))))
    t("construct bad", t.db.Row, cur, [5, 6])
    t("iterate", lambda: list(row))
    t("reversed index", lambda: row[-2])
    t("unequal", lambda: row == t.db.Row(cur, (1, "y")))
    t("not equal to tuple", lambda: row == (1, "x"))


@pytest.mark.parametrize("scenario", [rows], ids=lambda s: s.__name__)
def test_rows_behave_as_the_stdlib(compare: Compare, scenario: object) -> None:
    assert len(compare(scenario)) > 3  # type: ignore[arg-type]


def test_adapters_and_converters_behave_as_the_stdlib(
    compare: Compare, point_registered: None
) -> None:
    assert len(compare(adapters_and_converters)) > 5


def test_connect_arguments_behave_as_the_stdlib(compare: Compare) -> None:
    def scenario(t: Trace) -> None:
        conn = t(
            "all arguments",
            t.connect,
            "main",
            timeout=1.0,
            detect_types=0,
            isolation_level="IMMEDIATE",
            check_same_thread=True,
            cached_statements=10,
        )
        t("level", lambda: conn.isolation_level)
        t("bad detect_types", t.connect, "x", detect_types="no")

        class Mine(t.db.Connection):  # type: ignore[name-defined,misc]
            marker = "mine"

        mine = t("factory", t.connect, "f", factory=Mine)
        t("factory used", lambda: mine.marker)

    compare(scenario)
