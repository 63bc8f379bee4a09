"""Random SQL against sqlkv and plain SQLite side by side: after every step both hold the
same schema and rows, and sqlkv passes ``PRAGMA integrity_check``.

Steps: inserts (small rows and multi-page blobs), updates, deletes, transactions that
commit or roll back, savepoints, schema changes, VACUUM, and reopening the database with a
cold cache. SQLite's pager cache is kept tiny so that transactions spill pages to the VFS
before they end.
"""

from __future__ import annotations

from typing import Any

import apsw
import hypothesis.strategies as st
from hypothesis import HealthCheck, settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

import sqlkv
from sqlkv.store import MemoryStore
from sqlkv.vfs.v2 import Connection

TABLES = ("a", "b")


def _contents(conn: apsw.Connection) -> list[Any]:
    schema = [
        tuple(r)
        for r in conn.execute(
            "SELECT type, name, tbl_name, sql FROM sqlite_schema ORDER BY type, name"
        )
    ]
    out: list[Any] = [schema]
    for (name,) in conn.execute(
        "SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name"
    ).fetchall():
        out.append([tuple(r) for r in conn.execute(f'SELECT * FROM "{name}" ORDER BY rowid')])
    return out


class SqlkvMatchesSqlite(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.store = MemoryStore()
        self.ref = apsw.Connection(":memory:")
        self.conn = self._open()
        self.in_txn = False
        self.savepoints = 0
        self.extra_columns: dict[str, int] = dict.fromkeys(TABLES, 0)
        self.both("CREATE TABLE a(id INTEGER PRIMARY KEY, k INTEGER, v BLOB)")
        self.both("CREATE TABLE b(id INTEGER PRIMARY KEY, k INTEGER, v BLOB)")

    def _open(self) -> Connection:
        conn = sqlkv.connect("prop", self.store, cache_size="64 pages", preload_bytes=16384)
        conn.execute("PRAGMA cache_size=12")
        return conn

    def both(self, sql: str, bindings: tuple[Any, ...] = ()) -> None:
        errors: list[str | None] = []
        for conn in (self.ref, self.conn):
            try:
                conn.execute(sql, bindings).fetchall()
                errors.append(None)
            except apsw.Error as exc:
                errors.append(type(exc).__name__)
        assert errors[0] == errors[1], (sql, errors)

    # ------------------------------------------------------------------ data

    @rule(
        table=st.sampled_from(TABLES),
        rows=st.lists(st.tuples(st.integers(0, 50), st.integers(0, 6000)), min_size=1, max_size=30),
    )
    def insert(self, table: str, rows: list[tuple[int, int]]) -> None:
        for k, size in rows:
            self.both(
                f"INSERT INTO {table}(k, v) VALUES (?, zeroblob(?) || ?)", (k, size, k * size)
            )

    @rule(table=st.sampled_from(TABLES), mod=st.integers(1, 5), size=st.integers(0, 9000))
    def update(self, table: str, mod: int, size: int) -> None:
        self.both(
            f"UPDATE {table} SET v = zeroblob(?) || k, k = k + 1 WHERE k % ? = 0", (size, mod)
        )

    @rule(table=st.sampled_from(TABLES), mod=st.integers(1, 4), rem=st.integers(0, 3))
    def delete(self, table: str, mod: int, rem: int) -> None:
        self.both(f"DELETE FROM {table} WHERE k % ? = ?", (mod, rem % mod))

    # ------------------------------------------------------------------ transactions

    @precondition(lambda self: not self.in_txn)
    @rule()
    def begin(self) -> None:
        self.both("BEGIN")
        self.in_txn = True

    @precondition(lambda self: self.in_txn)
    @rule(commit=st.booleans())
    def end(self, commit: bool) -> None:
        self.both("COMMIT" if commit else "ROLLBACK")
        self.in_txn = False
        self.savepoints = 0

    @rule()
    def savepoint(self) -> None:
        self.savepoints += 1
        self.both(f"SAVEPOINT sp{self.savepoints}")

    @precondition(lambda self: self.savepoints > 0)
    @rule(release=st.booleans())
    def end_savepoint(self, release: bool) -> None:
        name = f"sp{self.savepoints}"
        if release:
            self.both(f"RELEASE {name}")
        else:
            self.both(f"ROLLBACK TO {name}")
            self.both(f"RELEASE {name}")
        self.savepoints -= 1

    # ------------------------------------------------------------------ schema and files

    @rule(table=st.sampled_from(TABLES))
    def create_index(self, table: str) -> None:
        self.both(f"CREATE INDEX IF NOT EXISTS {table}_k ON {table}(k)")

    @rule(table=st.sampled_from(TABLES))
    def drop_index(self, table: str) -> None:
        self.both(f"DROP INDEX IF EXISTS {table}_k")

    @rule(table=st.sampled_from(TABLES))
    def add_column(self, table: str) -> None:
        self.extra_columns[table] += 1
        self.both(f"ALTER TABLE {table} ADD COLUMN c{self.extra_columns[table]} DEFAULT 7")

    @rule(rows=st.integers(0, 40))
    def scratch_table(self, rows: int) -> None:
        self.both("DROP TABLE IF EXISTS scratch")
        self.both("CREATE TABLE scratch(x)")
        self.both(
            "INSERT INTO scratch WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 "
            "FROM s WHERE i < ?) SELECT zeroblob(3000) || i FROM s",
            (rows,),
        )

    @precondition(lambda self: not self.in_txn and self.savepoints == 0)
    @rule()
    def vacuum(self) -> None:
        self.both("VACUUM")

    @precondition(lambda self: not self.in_txn and self.savepoints == 0)
    @rule()
    def reopen(self) -> None:
        self.conn.close()
        self.conn = self._open()

    # ------------------------------------------------------------------ checks

    @invariant()
    def same_contents(self) -> None:
        assert _contents(self.conn) == _contents(self.ref)

    @invariant()
    def integrity_ok(self) -> None:
        assert self.conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]

    def teardown(self) -> None:
        self.conn.close()
        self.ref.close()
        self.store.close()


SqlkvMatchesSqlite.TestCase.settings = settings(
    max_examples=40,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_sqlkv_matches_sqlite = SqlkvMatchesSqlite.TestCase
