"""Random sequences of statements and transaction calls give the stdlib's results, errors
and transaction state at every step (hypothesis draws the sequences)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from differential import Trace, record, stdlib_connect
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sqlkv.dbapi2 as dbapi2
from sqlkv.store import MemoryStore

STEPS = st.one_of(
    st.tuples(st.just("insert"), st.integers(0, 6)),
    st.tuples(st.just("update"), st.integers(0, 6)),
    st.tuples(st.just("delete"), st.integers(0, 6)),
    st.tuples(st.just("many"), st.integers(0, 3)),
    st.tuples(st.just("select"), st.integers(0, 6)),
    st.sampled_from(
        [
            ("commit",),
            ("rollback",),
            ("begin",),
            ("sql commit",),
            ("savepoint",),
            ("rollback to",),
            ("release",),
            ("script",),
            ("level None",),
            ("level IMMEDIATE",),
            ("level default",),
            ("with ok",),
            ("with error",),
        ]
    ),
)


def _play(steps: list[tuple[Any, ...]]) -> Any:
    def scenario(t: Trace) -> None:
        conn = t.connect()
        conn.execute("CREATE TABLE t(k INTEGER PRIMARY KEY, n INTEGER)")
        cur = conn.cursor()

        def with_block(fail: bool) -> None:
            with conn:
                conn.execute("INSERT INTO t(n) VALUES (-1)")
                if fail:
                    raise KeyError("fail")

        actions: dict[str, Any] = {
            "insert": lambda k: cur.execute("INSERT INTO t(k, n) VALUES (?, ?)", (k, k)),
            "update": lambda k: cur.execute("UPDATE t SET n = n + 1 WHERE k <= ?", (k,)),
            "delete": lambda k: cur.execute("DELETE FROM t WHERE k = ?", (k,)),
            "many": lambda k: cur.executemany(
                "INSERT OR REPLACE INTO t(k, n) VALUES (?, 0)", [(i,) for i in range(k)]
            ),
            "select": lambda k: cur.execute("SELECT k, n FROM t WHERE k >= ?", (k,)).fetchall(),
            "commit": conn.commit,
            "rollback": conn.rollback,
            "begin": lambda: conn.execute("BEGIN"),
            "sql commit": lambda: conn.execute("COMMIT"),
            "savepoint": lambda: conn.execute("SAVEPOINT s"),
            "rollback to": lambda: conn.execute("ROLLBACK TO s"),
            "release": lambda: conn.execute("RELEASE s"),
            "script": lambda: conn.executescript("INSERT INTO t(n) VALUES (100);"),
            "level None": lambda: setattr(conn, "isolation_level", None),
            "level IMMEDIATE": lambda: setattr(conn, "isolation_level", "IMMEDIATE"),
            "level default": lambda: setattr(conn, "isolation_level", ""),
            "with ok": lambda: with_block(False),
            "with error": lambda: with_block(True),
        }
        for i, (name, *args) in enumerate(steps):
            t(f"{i} {name}", actions[name], *args)
            t.state(f"{i}", conn, cur)
        conn.close()
        again = t.connect()
        t("committed", lambda: again.execute("SELECT k, n FROM t ORDER BY k").fetchall())

    return scenario


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=st.lists(STEPS, min_size=1, max_size=12))
def test_random_sequences_match_the_stdlib(
    steps: list[tuple[Any, ...]], tmp_path_factory: Any
) -> None:
    directory: Path = tmp_path_factory.mktemp("ref")
    scenario = _play(steps)
    reference = record(scenario, sqlite3, stdlib_connect(directory))
    store = MemoryStore()
    try:
        ours = record(scenario, dbapi2, lambda name, **kw: dbapi2.connect(name, store=store, **kw))
    finally:
        store.close()
    assert ours == reference
