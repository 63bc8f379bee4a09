"""The workload API: ``Scale``, ``Workload``, timed runs, and the data every workload draws on.

A workload is SQL run through an ``apsw.Connection`` that returns the rows its queries
produced, so that two runs (plain SQLite and sqlkv, or two drivers) can be compared with
``==``. Data comes from seeded generators, so every run of a workload at a given scale
writes and reads exactly the same rows. No workload looks at page-level details (page
counts, file sizes, freelists): their results are the same whatever stores the pages.

A workload has an optional ``setup`` (build the data, not measured) and a ``run`` (the
measured part, which returns the results). ``cold=True`` means the benchmark must close
the database after ``setup`` and open it again before ``run``, so ``run`` starts with
empty caches; ``run`` relies only on what ``setup`` stored in the database, never on
connection state. ``timed_run`` does exactly that given a function that opens the
database; calling the workload itself runs both steps on one connection.
"""

from __future__ import annotations

import functools
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, ClassVar

import apsw

Rows = list[tuple[Any, ...]]
Step = Callable[[apsw.Connection, "Scale"], Rows]
Setup = Callable[[apsw.Connection, "Scale"], None]

SEED = 20_240_607


@dataclass(frozen=True)
class Scale:
    """How much data each workload touches. ``Scale.SMALL`` for tests, ``Scale.FULL`` per §7.

    Make other scales with ``dataclasses.replace(Scale.FULL, ...)``.
    """

    name: str
    single_inserts: int  # insert_single: autocommit INSERTs
    txn_inserts: int  # insert_txn: INSERTs in one transaction
    big_txn_inserts: int  # insert_txn_10k: INSERTs in one transaction
    batch_rows: int  # batch_insert: rows, in multi-row INSERTs of batch_size
    batch_size: int
    table_rows: int  # rows of the table that reads, updates, indexes and queries use
    point_reads: int
    scan_rows: int  # full_scan table
    range_queries: int
    bulk_rows: int  # bulk_update / bulk_delete
    hot_updates: int
    payload_rows: int  # large_payloads: autocommit INSERTs of payload_bytes each
    payload_bytes: int
    large_txn_bytes: tuple[int, int, int]  # large_txn_500k / _10m / _50m
    oltp_small: tuple[int, int]  # (accounts, transactions)
    oltp_large: tuple[int, int]
    json_docs: int
    small_tables: int
    growth_rounds: int
    churn_rounds: int
    regrow_cycles: int
    cold_db_bytes: int  # cold_start database size
    cold_scan_bytes: int  # cold_full_scan table size

    SMALL: ClassVar[Scale]
    FULL: ClassVar[Scale]


Scale.SMALL = Scale(
    name="small",
    single_inserts=50,
    txn_inserts=200,
    big_txn_inserts=500,
    batch_rows=500,
    batch_size=50,
    table_rows=1_000,
    point_reads=200,
    scan_rows=2_000,
    range_queries=20,
    bulk_rows=100,
    hot_updates=20,
    payload_rows=5,
    payload_bytes=50_000,
    large_txn_bytes=(50_000, 200_000, 500_000),
    oltp_small=(50, 100),
    oltp_large=(1_000, 50),
    json_docs=300,
    small_tables=20,
    growth_rounds=4,
    churn_rounds=8,
    regrow_cycles=2,
    cold_db_bytes=512 * 1024,
    cold_scan_bytes=512 * 1024,
)

Scale.FULL = Scale(
    name="full",
    single_inserts=1_000,
    txn_inserts=1_000,
    big_txn_inserts=10_000,
    batch_rows=10_000,
    batch_size=100,
    table_rows=10_000,
    point_reads=1_000,
    scan_rows=100_000,
    range_queries=100,
    bulk_rows=1_000,
    hot_updates=100,
    payload_rows=200,
    payload_bytes=50_000,
    large_txn_bytes=(500_000, 10_000_000, 50_000_000),
    oltp_small=(100, 1_000),
    oltp_large=(10_000, 1_000),
    json_docs=10_000,
    small_tables=200,
    growth_rounds=20,
    churn_rounds=50,
    regrow_cycles=5,
    cold_db_bytes=50 * 1024 * 1024,
    cold_scan_bytes=50 * 1024 * 1024,
)


@dataclass(frozen=True)
class Workload:
    """One §7 workload: ``setup`` (optional, not measured) then ``run`` (measured).

    ``cold``: reopen the database between the two (``run`` must start with cold caches).
    Calling the workload runs both on one connection and returns ``run``'s rows.
    """

    name: str
    summary: str
    run: Step
    setup: Setup | None = None
    cold: bool = False

    def __call__(self, conn: apsw.Connection, scale: Scale) -> Rows:
        if self.setup is not None:
            self.setup(conn, scale)
        return self.run(conn, scale)


@dataclass
class WorkloadRun:
    """What ``timed_run`` measured. ``conn`` is the connection ``run`` used, still open."""

    workload: str
    rows: Rows
    setup_s: float
    run_s: float
    conn: apsw.Connection


def timed_run(
    workload: Workload, connect: Callable[[], apsw.Connection], scale: Scale
) -> WorkloadRun:
    """Open with ``connect()``, set up, reopen if the workload is cold, and time ``run``.

    The caller closes ``result.conn``.
    """
    conn = connect()
    start = time.perf_counter()
    if workload.setup is not None:
        workload.setup(conn, scale)
    setup_s = time.perf_counter() - start
    if workload.cold:
        conn.close()
        conn = connect()
    start = time.perf_counter()
    rows = workload.run(conn, scale)
    return WorkloadRun(workload.name, rows, setup_s, time.perf_counter() - start, conn)


# --------------------------------------------------------------------------- data


def rng(salt: int) -> random.Random:
    """A generator seeded for one workload step: the same numbers on every run."""
    return random.Random(SEED * 1_000 + salt)


@functools.cache
def _corpus() -> str:
    words = [
        "".join(r.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(r.randint(2, 9)))
        for r in [random.Random(SEED)]
        for _ in range(2_000)
    ]
    r = random.Random(SEED + 1)
    return " ".join(r.choice(words) for _ in range(64_000))


def text(r: random.Random, n: int) -> str:
    """``n`` characters of word-like ASCII text (compressible, like real data)."""
    corpus = _corpus()
    out = []
    while n > 0:
        take = min(n, 4_096)
        start = r.randrange(len(corpus) - take)
        out.append(corpus[start : start + take])
        n -= take
    return "".join(out)


def name(r: random.Random) -> str:
    return text(r, 12).strip().replace(" ", "-")


ITEMS_SCHEMA = (
    "CREATE TABLE items(id INTEGER PRIMARY KEY, name TEXT NOT NULL, "
    "category INTEGER NOT NULL, amount REAL NOT NULL, payload TEXT NOT NULL)"
)
ITEMS_INSERT = "INSERT INTO items(id, name, category, amount, payload) VALUES (?, ?, ?, ?, ?)"
CATEGORIES = 50


def item_rows(
    r: random.Random, count: int, *, first_id: int = 1, payload: int = 100
) -> list[tuple[int, str, int, float, str]]:
    """``count`` rows for the ``items`` table with ids from ``first_id``."""
    return [
        (
            first_id + i,
            name(r),
            r.randrange(CATEGORIES),
            round(r.uniform(0, 1_000), 2),
            text(r, payload),
        )
        for i in range(count)
    ]


def create_items(conn: apsw.Connection, rows: Iterable[tuple[Any, ...]]) -> None:
    """Create ``items`` and fill it with ``rows`` in one transaction."""
    with conn:
        conn.execute(ITEMS_SCHEMA)
        conn.executemany(ITEMS_INSERT, rows)


def fill_items(conn: apsw.Connection, total_bytes: int, *, payload: int = 1_000) -> None:
    """Create ``items`` holding about ``total_bytes`` of payload, 10,000 rows per transaction."""
    r = rng(9_001)
    count = max(1, total_bytes // payload)
    conn.execute(ITEMS_SCHEMA)
    for first in range(0, count, 10_000):
        with conn:
            conn.executemany(
                ITEMS_INSERT,
                item_rows(r, min(10_000, count - first), first_id=first + 1, payload=payload),
            )


def query(conn: apsw.Connection, sql: str, bindings: tuple[Any, ...] = ()) -> Rows:
    """Every row of one query, as tuples."""
    return [tuple(row) for row in conn.execute(sql, bindings)]


def items_summary(conn: apsw.Connection, table: str = "items") -> Rows:
    """Counts, sums and extremes of an items-shaped table: equal when the contents are."""
    return query(
        conn,
        f"SELECT count(*), coalesce(sum(id), 0), total(amount), sum(length(payload)), "
        f"min(name), max(name), total(category) FROM {table}",
    )


# --------------------------------------------------------------------------- checks


def dump(conn: apsw.Connection) -> str:
    """The database as SQL text (the shell's ``.dump``), without its header comment.

    The header names the date, the file and the user; it is dropped (up to the first
    blank line) so that two equal databases give equal text.
    """
    import io

    import apsw.shell

    out = io.StringIO()
    shell = apsw.shell.Shell(stdout=out, stderr=io.StringIO(), db=conn)
    shell.process_command(".dump")  # type: ignore[no-untyped-call]
    text = out.getvalue()
    header, sep, body = text.partition("\n\n")
    if sep and all(line.startswith("--") for line in header.splitlines()):
        return body
    return text


def integrity_ok(conn: apsw.Connection) -> bool:
    """True when ``PRAGMA integrity_check`` answers exactly ``ok`` (False if it cannot run)."""
    try:
        return query(conn, "PRAGMA integrity_check") == [("ok",)]
    except (apsw.CorruptError, apsw.NotADBError):
        return False
