"""Connection methods, differentially against the stdlib ``sqlite3``: user functions,
aggregates, window functions, collations, the authorizer, progress handler and trace
callback, row and text factories, iterdump, backup between connections, interrupt and
blobopen, on success and error paths."""

from __future__ import annotations

import pytest
from differential import Compare, Trace


def _conn(t: Trace, **kwargs: object) -> object:
    conn = t.connect(**kwargs)
    conn.executescript(
        "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT, n INTEGER, b BLOB);"
        "INSERT INTO t(v, n, b) VALUES ('b', 2, x'0102'), ('A', 1, NULL), ('c', 3, zeroblob(4));"
    )
    return conn


def scalar_functions(t: Trace) -> None:
    conn = _conn(t)
    t("create", conn.create_function, "twice", 1, lambda x: x * 2)
    t("call", lambda: conn.execute("SELECT twice(n), twice(v) FROM t ORDER BY id").fetchall())
    t("deterministic", conn.create_function, "plus", 2, lambda a, b: a + b, deterministic=True)
    t("in index", conn.execute, "CREATE INDEX i ON t(plus(n, 1))")
    t("wrong arg count", conn.execute, "SELECT twice(1, 2)")
    t("raises", conn.create_function, "boom", 0, lambda: 1 / 0)
    t("call raising", conn.execute, "SELECT boom()")
    t("bad result", conn.create_function, "obj", 0, object)
    t("call bad result", conn.execute, "SELECT obj()")
    t("types in", conn.create_function, "kind", 1, lambda x: type(x).__name__)
    t(
        "kinds",
        lambda: conn.execute(
            "SELECT kind(1), kind(1.5), kind('x'), kind(x'00'), kind(NULL)"
        ).fetchone(),
    )
    t("returns blob", conn.create_function, "blob", 0, lambda: b"\x00\x01")
    t("blob", lambda: conn.execute("SELECT blob()").fetchone())
    t("remove", conn.create_function, "twice", 1, None)
    t("removed", conn.execute, "SELECT twice(1)")
    t("varargs", conn.create_function, "count_args", -1, lambda *a: len(a))
    t("call varargs", lambda: conn.execute("SELECT count_args(1, 2, 3)").fetchone())


class Sum:
    def __init__(self) -> None:
        self.total = 0

    def step(self, value: int) -> None:
        self.total += value

    def finalize(self) -> int:
        return self.total


class BadStep(Sum):
    def step(self, value: int) -> None:
        raise ValueError("step")


class BadFinal(Sum):
    def finalize(self) -> int:
        raise ValueError("final")


class BadInit(Sum):
    def __init__(self) -> None:
        raise ValueError("init")


class WindowSum(Sum):
    def value(self) -> int:
        return self.total

    def inverse(self, value: int) -> None:
        self.total -= value


class BadValue(WindowSum):
    def value(self) -> int:
        raise ValueError("value")


def aggregates(t: Trace) -> None:
    conn = _conn(t)
    t("create", conn.create_aggregate, "mysum", 1, Sum)
    t("call", lambda: conn.execute("SELECT mysum(n) FROM t").fetchone())
    t("empty group", lambda: conn.execute("SELECT mysum(n) FROM t WHERE 0").fetchone())
    for name, cls in [("badstep", BadStep), ("badfinal", BadFinal), ("badinit", BadInit)]:
        conn.create_aggregate(name, 1, cls)
        t(f"call {name}", conn.execute, f"SELECT {name}(n) FROM t")
    t("remove", conn.create_aggregate, "mysum", 1, None)
    t("removed", conn.execute, "SELECT mysum(n) FROM t")


def window_functions(t: Trace) -> None:
    conn = _conn(t)
    t("create", conn.create_window_function, "wsum", 1, WindowSum)
    sql = "SELECT n, wsum(n) OVER (ORDER BY n ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) FROM t"
    t("call", lambda: conn.execute(sql).fetchall())
    t("as aggregate", lambda: conn.execute("SELECT wsum(n) FROM t").fetchone())
    conn.create_window_function("bad", 1, BadValue)
    t("bad value", lambda: conn.execute(sql.replace("wsum", "bad")).fetchall())
    t("remove", conn.create_window_function, "wsum", 1, None)
    t("removed", conn.execute, sql)


def collations(t: Trace) -> None:
    conn = _conn(t)

    def reverse(a: str, b: str) -> int:
        return (a < b) - (a > b)

    t("create", conn.create_collation, "rev", reverse)
    t("order", lambda: conn.execute("SELECT v FROM t ORDER BY v COLLATE rev").fetchall())
    t(
        "nocase builtin",
        lambda: conn.execute("SELECT v FROM t ORDER BY v COLLATE NOCASE").fetchall(),
    )
    t("not callable", conn.create_collation, "x", 42)
    t("bad name", conn.create_collation, 42, reverse)
    t("remove", conn.create_collation, "rev", None)
    t("removed", conn.execute, "SELECT v FROM t ORDER BY v COLLATE rev")


def authorizer(t: Trace) -> None:
    conn = _conn(t)
    seen: list[object] = []

    def deny_n(action: int, arg1: object, arg2: object, db: object, source: object) -> int:
        if action == t.db.SQLITE_READ and arg2 == "n":
            return t.db.SQLITE_DENY
        if action == t.db.SQLITE_READ and arg2 == "b":
            return t.db.SQLITE_IGNORE
        if action == t.db.SQLITE_READ:
            seen.append((arg1, arg2))
        return t.db.SQLITE_OK

    t("set", conn.set_authorizer, deny_n)
    t("denied column", conn.execute, "SELECT n FROM t")
    t("ignored column", lambda: conn.execute("SELECT b FROM t ORDER BY id").fetchall())
    t("allowed", lambda: conn.execute("SELECT v FROM t ORDER BY id").fetchall())
    t("seen", lambda: sorted(set(seen)))  # type: ignore[arg-type]
    t("raising authorizer", conn.set_authorizer, lambda *a: 1 / 0)
    t("denied by exception", conn.execute, "SELECT 1")
    t("bad result", conn.set_authorizer, lambda *a: "yes")
    t("denied by bad result", conn.execute, "SELECT 1")
    t("clear", conn.set_authorizer, None)
    t("cleared", lambda: conn.execute("SELECT n FROM t ORDER BY id").fetchall())


def progress_and_interrupt(t: Trace) -> None:
    conn = _conn(t)
    calls: list[int] = []
    t("set", conn.set_progress_handler, lambda: calls.append(1), 1)
    t("runs", lambda: conn.execute("SELECT count(*) FROM t").fetchone())
    t("called", lambda: len(calls) > 0)
    t("aborting", conn.set_progress_handler, lambda: 1, 1)
    t("interrupted", conn.execute, "SELECT count(*) FROM t")
    t("raising", conn.set_progress_handler, lambda: 1 / 0, 1)
    t("interrupted by exception", conn.execute, "SELECT count(*) FROM t")
    t("clear", conn.set_progress_handler, None, 1)
    t("runs again", lambda: conn.execute("SELECT count(*) FROM t").fetchone())
    t("interrupt idle", conn.interrupt)
    t("usable after idle interrupt", lambda: conn.execute("SELECT 1").fetchone())
    conn.set_progress_handler(lambda: conn.interrupt(), 1)
    t("interrupt from handler", conn.execute, "SELECT count(*) FROM t")
    conn.set_progress_handler(None, 1)


def trace_callback(t: Trace) -> None:
    conn = _conn(t)
    traced: list[str] = []
    t("set", conn.set_trace_callback, traced.append)
    conn.execute("SELECT v FROM t WHERE n = ?", (2,))
    conn.execute("INSERT INTO t(v) VALUES (?)", ("it's",))
    conn.commit()
    conn.executemany("UPDATE t SET n = ? WHERE id = ?", [(7, 1), (8, 2)])
    conn.rollback()
    t("raising callback is ignored", conn.set_trace_callback, lambda sql: 1 / 0)
    t("still runs", lambda: conn.execute("SELECT 1").fetchone())
    t("clear", conn.set_trace_callback, None)
    conn.execute("SELECT 2")
    t.note("traced", traced)


def factories(t: Trace) -> None:
    conn = _conn(t)
    conn.row_factory = t.db.Row
    row = t("row", lambda: conn.execute("SELECT id, v AS Name FROM t WHERE id = 1").fetchone())
    t("by name", lambda: (row["id"], row["name"], row["NAME"], row[1], row[-1], row[0:2]))
    t("keys", row.keys)
    t("len", lambda: len(row))
    t("missing key", lambda: row["nope"])
    t("bad index", lambda: row[5])
    t("equal", lambda: row == conn.execute("SELECT id, v AS Name FROM t WHERE id = 1").fetchone())
    t("hashable", lambda: hash(row) == hash(tuple(row)) or True)
    cur = conn.cursor()
    t("cursor inherits", lambda: cur.row_factory is conn.row_factory)
    cur.row_factory = lambda c, r: {d[0]: v for d, v in zip(c.description, r, strict=True)}
    t("cursor factory", lambda: cur.execute("SELECT id, v FROM t WHERE id = 2").fetchone())
    conn.row_factory = None
    t("tuple again", lambda: conn.execute("SELECT id FROM t WHERE id = 1").fetchone())
    conn.text_factory = bytes
    t("bytes text", lambda: conn.execute("SELECT v, n FROM t WHERE id = 1").fetchone())
    conn.text_factory = lambda b: b.decode().upper()
    t("custom text", lambda: conn.execute("SELECT v FROM t ORDER BY id").fetchall())
    conn.text_factory = str
    t("str text", lambda: conn.execute("SELECT v FROM t WHERE id = 1").fetchone())
    t("cursor factory arg", lambda: type(conn.cursor(factory=t.db.Cursor)).__name__)
    t("bad cursor factory", conn.cursor, lambda c: 42)


def dump_and_backup(t: Trace) -> None:
    conn = _conn(t)
    conn.execute("CREATE VIEW vw AS SELECT v FROM t")
    conn.execute("CREATE INDEX tv ON t(v)")
    conn.execute("CREATE TRIGGER tr AFTER INSERT ON t BEGIN SELECT 1; END")
    conn.commit()
    t("iterdump", lambda: list(conn.iterdump()))
    target = t.connect("copy")
    progress: list[tuple[int, int, int]] = []
    t("backup", conn.backup, target, pages=1, progress=lambda *a: progress.append(a))
    t("progress", lambda: (len(progress) > 1, progress[-1][1]))
    t("copied", lambda: target.execute("SELECT v, n, b FROM t ORDER BY id").fetchall())
    t("copied schema", lambda: list(target.iterdump()))
    t("to itself", conn.backup, conn)
    t("bad target", conn.backup, 42)
    t("bad progress", conn.backup, target, progress=42)


def blobs(t: Trace) -> None:
    conn = _conn(t)
    conn.commit()
    blob = t("open", conn.blobopen, "t", "b", 3)
    t("len", len, blob)
    t("write", blob.write, b"ab")
    t("tell", blob.tell)
    t("seek", blob.seek, 0)
    t("read", blob.read)
    t("read past end", blob.read, 10)
    t("seek end", blob.seek, -1, 2)
    t("read 1", blob.read, 1)
    t("seek out of range", blob.seek, 10)
    t("write too long", blob.write, b"12345")
    t("index", lambda: blob[0])
    t("slice", lambda: blob[1:3])
    t("bad index", lambda: blob[10])
    t("negative index", lambda: blob[-1])
    t("stepped slice", lambda: blob[::2])
    t("empty slice", lambda: blob[3:1])
    t("negative slice", lambda: blob[-3:])
    t("set index", blob.__setitem__, 0, 0x7A)
    t("set slice", blob.__setitem__, slice(2, 4), b"yz")
    t("close", blob.close)
    t("closed read", blob.read)
    t("contents", lambda: conn.execute("SELECT b FROM t WHERE id = 3").fetchone())
    ro = conn.blobopen("t", "b", 1, readonly=True)
    t("readonly write", ro.write, b"x")
    ro.close()
    t("no such row", conn.blobopen, "t", "b", 99)
    t("no such column", conn.blobopen, "t", "nope", 1)

    def in_with() -> bytes:
        with conn.blobopen("t", "b", 1) as b:
            return bytes(b.read())

    t("with", in_with)


SCENARIOS = [
    scalar_functions,
    aggregates,
    window_functions,
    collations,
    authorizer,
    progress_and_interrupt,
    trace_callback,
    factories,
    dump_and_backup,
    blobs,
]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.__name__)
def test_connection_methods_behave_as_the_stdlib(compare: Compare, scenario: object) -> None:
    events = compare(scenario)  # type: ignore[arg-type]
    assert len(events) > 3


def test_the_stdlib_row_class_works_as_a_row_factory(memory_store: object) -> None:
    import sqlite3

    import sqlkv.dbapi2 as dbapi2

    conn = dbapi2.connect("db", store=memory_store)
    conn.row_factory = sqlite3.Row  # set by code that imports the stdlib module itself
    row = conn.execute("SELECT 1 AS a").fetchone()
    assert isinstance(row, dbapi2.Row) and row["A"] == 1
    conn.close()
