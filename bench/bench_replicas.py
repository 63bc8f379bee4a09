"""Reader refresh cost: what a read-only connection that follows the head pays per read
transaction, against what re-reading without its page cache would cost.

Usage:
    python bench/bench_replicas.py [--mib 16] [--rounds 30] [--latency-ms 0]

A writer owns a database of ``--mib`` MiB (one table of 1 KiB rows) on a memory store
(``--latency-ms`` injects a store round-trip latency). A reader (``sqlkv.connect(name,
store, readonly=True)``, its own engine on the same store) scans the table once to warm
its cache. Then, per scenario, for ``--rounds`` rounds: the writer commits one transaction
that updates N rows spread over the table (N = 0, 1, 10, 100), and the reader runs one
read transaction (a point query, or a full scan). Reported per read transaction: engine
round trips of the refresh (``changes_since``) and of page misses (``read_at``), store
transactions, pages invalidated and fetched, bytes received, and the reader's CPU time
(``time.thread_time``). The last row is the baseline without the page cache: a new
read-only connection doing the same full scan (what dropping the cache costs).

Counts are exact; times are noisy on a shared machine (the output says the load).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from typing import Any

import apsw

import sqlkv
from sqlkv.store import MemoryStore

ROW_BYTES = 1024


@dataclass
class Row:
    scenario: str
    refresh_trips: float
    read_trips: float
    store_txns: float
    invalidated: float
    fetched: float
    kib_received: float
    cpu_ms: float


def _measure(
    name: str,
    reader: Any,
    store: MemoryStore,
    rounds: int,
    change: Callable[[], None],
    read: Callable[[], None],
) -> Row:
    totals = dict.fromkeys(("refresh", "read", "txn", "inv", "fetched", "bytes", "cpu"), 0.0)
    for _ in range(rounds):
        change()
        before, store_before = reader.sqlkv_stats.snapshot(), store.stats.snapshot()
        cpu = time.thread_time()
        read()
        totals["cpu"] += time.thread_time() - cpu
        spent = reader.sqlkv_stats - before
        totals["refresh"] += spent.refresh_round_trips
        totals["read"] += spent.round_trips - spent.refresh_round_trips
        totals["txn"] += (store.stats - store_before).transactions
        totals["inv"] += spent.pages_invalidated
        totals["fetched"] += spent.pages_fetched
        totals["bytes"] += spent.bytes_received
    n = float(rounds)
    return Row(
        name,
        totals["refresh"] / n,
        totals["read"] / n,
        totals["txn"] / n,
        totals["inv"] / n,
        totals["fetched"] / n,
        totals["bytes"] / n / 1024,
        totals["cpu"] / n * 1000,
    )


def run(mib: int, rounds: int, latency_ms: float) -> list[Row]:
    store = MemoryStore(latency_s=latency_ms / 1000)
    rows_count = mib * 1024 * 1024 // ROW_BYTES
    rng = random.Random(7)
    writer = sqlkv.connect("bench", store, compaction=False)
    writer.execute("CREATE TABLE t(k INTEGER PRIMARY KEY, v BLOB)")
    with writer:
        writer.executemany(
            "INSERT INTO t VALUES (?, randomblob(?))", ((k, ROW_BYTES) for k in range(rows_count))
        )
    reader = sqlkv.connect("bench", store, readonly=True)
    out: list[Row] = []
    with contextlib.closing(writer), contextlib.closing(reader):
        reader.execute("SELECT sum(length(v)) FROM t").fetchall()  # warm the cache

        def update(n: int) -> Callable[[], None]:
            def change() -> None:
                if n:
                    with writer:
                        for k in rng.sample(range(rows_count), n):
                            writer.execute(
                                "UPDATE t SET v = randomblob(?) WHERE k = ?", (ROW_BYTES, k)
                            )

            return change

        def point() -> None:
            reader.execute(
                "SELECT length(v) FROM t WHERE k = ?", (rng.randrange(rows_count),)
            ).fetchall()

        def scan() -> None:
            reader.execute("SELECT sum(length(v)) FROM t").fetchall()

        for n in (0, 1, 10, 100):
            out.append(
                _measure(f"{n} rows changed, point query", reader, store, rounds, update(n), point)
            )
        for n in (0, 10, 100):
            out.append(
                _measure(f"{n} rows changed, full scan", reader, store, rounds, update(n), scan)
            )

        def fresh_scan() -> None:
            with contextlib.closing(sqlkv.connect("bench", store, readonly=True)) as fresh:
                fresh.execute("SELECT sum(length(v)) FROM t").fetchall()
                totals_holder[0] = fresh.sqlkv_stats.snapshot()

        totals_holder: list[Any] = [None]
        store_before = store.stats.snapshot()
        cpu = time.thread_time()
        for _ in range(max(1, rounds // 10)):
            fresh_scan()
        n = float(max(1, rounds // 10))
        stats = totals_holder[0]
        out.append(
            Row(
                "no cache: new reader, full scan",
                0.0,
                float(stats.round_trips),
                (store.stats - store_before).transactions / n,
                0.0,
                float(stats.pages_fetched + stats.pages_preloaded),
                stats.bytes_received / 1024,
                (time.thread_time() - cpu) / n * 1000,
            )
        )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mib", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    args = parser.parse_args(argv)
    print("## Environment\n")
    print(
        f"- sqlkv {sqlkv.__version__}, Python {platform.python_version()}, "
        f"apsw {metadata.version('apsw')}, SQLite {apsw.sqlite_lib_version()}"
    )
    print(f"- {platform.platform()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}")
    print(
        f"- memory store, latency {args.latency_ms} ms; {args.mib} MiB table; "
        f"{args.rounds} rounds\n"
    )
    rows = run(args.mib, args.rounds, args.latency_ms)
    print(
        "| read transaction | refresh trips | read trips | store txns | pages invalidated "
        "| pages fetched | KiB received | reader CPU ms |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r.scenario} | {r.refresh_trips:.2f} | {r.read_trips:.2f} | {r.store_txns:.2f} "
            f"| {r.invalidated:.1f} | {r.fetched:.1f} | {r.kib_received:.1f} | {r.cpu_ms:.2f} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
