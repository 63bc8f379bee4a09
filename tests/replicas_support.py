"""Shared by the read-only connection tests and bench/bench_replicas.py: a writer workload
mirrored on a plain SQLite oracle (rows digest and ``.dump`` after every commit), and the
loop of a reader process that follows the head."""

from __future__ import annotations

import hashlib
import random
import sqlite3
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

SCHEMA = "CREATE TABLE t(k INTEGER PRIMARY KEY, v BLOB)"
ROWS_SQL = "SELECT k, v FROM t ORDER BY k"


def digest(rows: Iterable[Iterable[Any]]) -> str:
    h = hashlib.blake2b(digest_size=16)
    for row in rows:
        h.update(repr(tuple(row)).encode())
    return h.hexdigest()


@dataclass
class Oracle:
    """The plain SQLite database the writer mirrors, and what it held after each commit."""

    conn: sqlite3.Connection = field(default_factory=lambda: sqlite3.connect(":memory:"))
    digests: dict[int, str] = field(default_factory=dict)
    dumps: dict[int, list[str]] = field(default_factory=dict)

    def record(self, txid: int, *, dump: bool = False) -> None:
        self.digests[txid] = digest(self.conn.execute(ROWS_SQL))
        if dump:
            self.dumps[txid] = list(self.conn.iterdump())


def random_transaction(
    rng: random.Random, next_key: list[int]
) -> list[tuple[str, tuple[Any, ...]]]:
    """The statements of one writer transaction: inserts, updates, deletes of blobs."""
    out: list[tuple[str, tuple[Any, ...]]] = []
    for _ in range(rng.randint(1, 4)):
        roll = rng.random()
        if roll < 0.5 or next_key[0] < 20:
            out.append(
                ("INSERT INTO t VALUES (?, ?)", (next_key[0], rng.randbytes(rng.randint(20, 600))))
            )
            next_key[0] += 1
        elif roll < 0.85:
            k = rng.randrange(next_key[0])
            out.append(("UPDATE t SET v = ? WHERE k = ?", (rng.randbytes(rng.randint(20, 600)), k)))
        else:
            lo = rng.randrange(next_key[0])
            out.append(("DELETE FROM t WHERE k BETWEEN ? AND ?", (lo, lo + rng.randint(0, 5))))
    return out


def apply(
    execute: Callable[[str, tuple[Any, ...]], Any], statements: list[tuple[str, tuple[Any, ...]]]
) -> None:
    for sql, args in statements:
        execute(sql, args)


def reader_loop(store: str, name: str, stop: Any, results: Any, index: int) -> None:
    """A reader process: read transactions following the head until ``stop`` is set; puts
    ``(index, [(txid, digest), ...], counters dict, error or None)`` on ``results``."""
    import sqlkv
    from sqlkv.errors import SnapshotTooOld

    seen: list[tuple[int, str]] = []
    too_old = 0
    error = None
    conn = sqlkv.connect(name, store, readonly=True)
    try:
        while not stop.is_set():
            conn.execute("BEGIN")
            try:
                rows = list(conn.execute(ROWS_SQL))
                seen.append((conn.sqlkv_txid, digest(rows)))
            except SnapshotTooOld:
                too_old += 1  # a clear error, never wrong data; the test counts them
            finally:
                if not conn.getautocommit():  # SQLite rolls back after an I/O error
                    conn.execute("COMMIT")
    except BaseException as exc:  # reported to the test, which fails with it
        error = f"{type(exc).__name__}: {exc}"
    counters = conn.sqlkv_stats.as_dict()
    counters["too_old_transactions"] = too_old
    conn.close()
    results.put((index, seen, counters, error))
