"""The seeded workload of the chaos suite: random SQL transactions (inserts, updates,
deletes, schema changes, large transactions through staging, VACUUM) generated from a seed
and the schema the database has, and the comparison of two databases' contents.

Also the worker: ``python chaos_support.py TARGET DB OPS ACKS`` runs the pickled ops of one
round on sqlkv (TARGET: a store URL or ``sqlkv://`` servers), one transaction each, and
appends each op's index to ACKS after its commit returned. Exit 0 when done, 3 when fenced
by a takeover."""

from __future__ import annotations

import contextlib
import os
import pickle
import random
import sys
from dataclasses import dataclass, field
from typing import Any

Op = tuple[str, list[tuple[str, tuple[Any, ...]]]]  # (kind, statements)
FENCED_EXIT = 3


@dataclass
class Schema:
    """Tables and their columns, as the generator tracks them."""

    tables: dict[str, list[str]] = field(default_factory=dict)
    serial: int = 0


def schema_of(conn: Any) -> Schema:
    schema = Schema()
    for (name,) in conn.execute(
        "SELECT name FROM sqlite_master WHERE type='table' AND name LIKE 't%' ORDER BY name"
    ).fetchall():
        cols = [r[1] for r in conn.execute(f'PRAGMA table_info("{name}")').fetchall()]
        schema.tables[name] = cols
        schema.serial = max(schema.serial, int(name[1:]) + 1)
    return schema


def _value(rng: random.Random, big: bool = False) -> Any:
    kind = rng.randrange(4)
    if big:
        return rng.randbytes(100_000)
    if kind == 0:
        return rng.randrange(-(10**9), 10**9)
    if kind == 1:
        return "".join(rng.choice("abcdefghij0123456789") for _ in range(rng.randrange(40)))
    if kind == 2:
        return rng.randbytes(rng.randrange(3000))
    return None


def make_ops(seed: int, round_no: int, schema: Schema, count: int) -> list[Op]:
    """``count`` transactions for this round, valid for ``schema`` (which they update)."""
    rng = random.Random(seed * 1_000_003 + round_no)
    ops: list[Op] = []
    for _ in range(count):
        if not schema.tables or (len(schema.tables) < 4 and rng.random() < 0.08):
            name = f"t{schema.serial}"
            schema.serial += 1
            schema.tables[name] = ["a", "b", "c"]
            sql = f'CREATE TABLE "{name}"(a INTEGER PRIMARY KEY, b, c)'
            ops.append(("create", [(sql, ())]))
            continue
        name = rng.choice(sorted(schema.tables))
        cols = schema.tables[name]
        roll = rng.random()
        if roll < 0.40:
            rows = []
            for _ in range(rng.randint(1, 20)):
                values = tuple(_value(rng) for _ in cols[1:])
                marks = ", ".join("?" for _ in cols[1:])
                names = ", ".join(cols[1:])
                rows.append((f'INSERT INTO "{name}"({names}) VALUES ({marks})', values))
            ops.append(("insert", rows))
        elif roll < 0.55:
            sql = f'UPDATE "{name}" SET b = ?, c = coalesce(length(c), 0) + ? WHERE a % ? = ?'
            m = rng.randint(2, 7)
            ops.append(("update", [(sql, (_value(rng), 1, m, rng.randrange(m)))]))
        elif roll < 0.68:
            m = rng.randint(2, 5)
            sql = f'DELETE FROM "{name}" WHERE a % ? = ?'
            ops.append(("delete", [(sql, (m, rng.randrange(m)))]))
        elif roll < 0.74:
            col = f"x{len(cols)}"
            cols.append(col)
            ops.append(("alter", [(f'ALTER TABLE "{name}" ADD COLUMN {col}', ())]))
        elif roll < 0.78:
            index = f"i_{name}_{rng.randrange(10**6)}"
            sql = f'CREATE INDEX IF NOT EXISTS "{index}" ON "{name}"(b)'
            ops.append(("index", [(sql, ())]))
        elif roll < 0.82 and len(schema.tables) > 1:
            del schema.tables[name]
            ops.append(("drop", [(f'DROP TABLE "{name}"', ())]))
        elif roll < 0.86:
            ops.append(("vacuum", [("VACUUM", ())]))
        elif roll < 0.90:  # ~5 MB in one transaction: goes through commit_stage
            sql = f'INSERT INTO "{name}"(b) VALUES (?)'
            ops.append(("large", [(sql, (_value(rng, big=True),)) for _ in range(50)]))
        else:
            rows = [(f'INSERT INTO "{name}"(b) VALUES (?)', (_value(rng),)) for _ in range(5)]
            ops.append(("insert", rows))
    return ops


def apply_op(conn: Any, op: Op) -> None:
    """One op as one transaction (VACUUM outside any)."""
    kind, statements = op
    if kind == "vacuum":
        conn.execute("VACUUM")
        return
    conn.execute("BEGIN")
    try:
        for sql, params in statements:
            conn.execute(sql, params)
    except BaseException:
        if not conn.getautocommit():
            with contextlib.suppress(Exception):  # the first error is the one to report
                conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def contents(conn: Any) -> tuple[list[tuple[str, str]], dict[str, list[str]], int]:
    """(schema rows, each table's rows as sorted reprs, row count)."""
    schema = [
        (str(n), str(s))
        for n, s in conn.execute(
            "SELECT name, sql FROM sqlite_master WHERE name LIKE 't%' OR name LIKE 'i_%' "
            "ORDER BY name"
        ).fetchall()
    ]
    tables: dict[str, list[str]] = {}
    count = 0
    for name, _ in schema:
        if name.startswith("t"):
            rows = sorted(repr(tuple(r)) for r in conn.execute(f'SELECT * FROM "{name}"'))
            tables[name] = rows
            count += len(rows)
    return schema, tables, count


def worker(target: str, db: str, ops_path: str, acks_path: str) -> int:
    """Run the ops on ``target`` (a store URL, or ``sqlkv://`` engine servers). Through
    servers, an op that fails (the server was killed) is settled after reconnecting: each
    op also inserts its marker into ``_chaos_marks``, so a landed op is acknowledged and
    not run again, and one that did not land is run again."""
    import time

    import apsw

    import sqlkv
    from sqlkv.errors import ConnectionFenced

    remote = target.startswith("sqlkv://")

    def connect() -> Any:
        deadline = time.monotonic() + 60
        while True:
            try:
                if remote:
                    return sqlkv.connect(db, engine=target)
                return sqlkv.connect(db, store=target)
            except Exception:
                if not remote or time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    with open(ops_path, "rb") as f:
        ops: list[Op] = pickle.load(f)
    fd = os.open(acks_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    conn = connect()
    conn.execute("CREATE TABLE IF NOT EXISTS _chaos_marks(m TEXT)")
    index = 0
    while index < len(ops):
        kind, statements = ops[index]
        mark = f"{ops_path}:{index}"
        if kind != "vacuum":
            statements = [*statements, ("INSERT INTO _chaos_marks VALUES (?)", (mark,))]
        try:
            apply_op(conn, (kind, statements))
        except apsw.Error as exc:
            if isinstance(exc, ConnectionFenced):
                return FENCED_EXIT
            if not remote:
                raise
            with contextlib.suppress(Exception):
                conn.close()
            conn = connect()
            found = conn.execute("SELECT 1 FROM _chaos_marks WHERE m = ?", (mark,)).fetchall()
            if kind == "vacuum" or not found:
                continue  # it did not land (VACUUM changes no content): run it again
        os.write(fd, f"{index}\n".encode())
        index += 1
    conn.close()
    return 0


if __name__ == "__main__":
    sys.exit(worker(*sys.argv[1:5]))
