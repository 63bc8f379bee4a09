"""The subcommands. Each is one function taking the parsed arguments and returning an exit code."""

from __future__ import annotations

import argparse
import time

from sqlkv.cli import admin, migrate, retention, serve, shell, timetravel, transfer, verify
from sqlkv.cli.common import database_name


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    demo = sub.add_parser(
        "demo",
        help="create a database on the store, run a short workload, reopen it cold, "
        "and print what happened",
    )
    demo.add_argument(
        "--db", default="demo", type=database_name, help="database name (default: demo)"
    )
    demo.set_defaults(func=cmd_demo)
    serve.register(sub)
    migrate.register(sub)
    shell.register(sub)
    transfer.register(sub)
    admin.register(sub)
    verify.register(sub)
    timetravel.register(sub)
    retention.register(sub)


def cmd_demo(args: argparse.Namespace) -> int:
    """Create a database on the store, run a short workload, reopen it with cold caches."""
    from sqlkv.engine import Engine
    from sqlkv.store import open_store
    from sqlkv.vfs.v2 import connect_v2

    name = args.db
    store = open_store(args.store)
    with store:
        engine = Engine(store)
        print(f"store: {store.url}   database: {name!r}")

        start = time.perf_counter()
        conn = connect_v2(name, engine)
        conn.execute("DROP TABLE IF EXISTS orders")
        conn.execute(
            "CREATE TABLE orders(id INTEGER PRIMARY KEY, customer TEXT, amount REAL, note TEXT)"
        )
        for i in range(100):
            conn.execute(
                "INSERT INTO orders(customer, amount, note) VALUES (?, ?, ?)",
                (f"customer {i % 7}", i * 1.5, "autocommit insert"),
            )
        with conn:
            conn.executemany(
                "INSERT INTO orders(customer, amount, note) VALUES (?, ?, ?)",
                [(f"customer {i % 7}", i * 0.25, "x" * 200) for i in range(5_000)],
            )
        conn.execute("UPDATE orders SET amount = amount * 2 WHERE customer = 'customer 3'")
        (count,) = conn.execute("SELECT count(*) FROM orders").fetchone() or (0,)
        warm = conn.sqlkv_stats.snapshot()
        conn.close()
        print(
            f"write: {count} rows in {warm.commits} commits "
            f"({(time.perf_counter() - start) * 1000:.0f} ms): {warm.round_trips} round trips, "
            f"{warm.bytes_sent:,} bytes sent, {warm.get_pages_calls} page fetches"
        )

        start = time.perf_counter()
        before = engine.head(name)
        folded = engine.compact_until_done(name)
        print(
            f"compaction ({(time.perf_counter() - start) * 1000:.0f} ms): "
            f"{before.delta_count} deltas ({before.delta_bytes:,} bytes) folded into shards; "
            f"storage {before.storage_used:,} -> {folded.storage_used:,} bytes"
        )

        start = time.perf_counter()
        conn = connect_v2(name, engine)  # a new owner: caches start empty
        totals = conn.execute(
            "SELECT customer, count(*), round(sum(amount), 2) FROM orders "
            "GROUP BY customer ORDER BY customer LIMIT 3"
        ).fetchall()
        point = conn.execute("SELECT note FROM orders WHERE id = 42").fetchone()
        cold = conn.sqlkv_stats.snapshot()
        head = conn.sqlkv_head()
        conn.close()
        print(
            f"cold reopen and read ({(time.perf_counter() - start) * 1000:.0f} ms): "
            f"{cold.round_trips} round trips ({cold.get_pages_calls} page fetches after the "
            f"open), {cold.pages_preloaded} pages preloaded, {cold.pages_fetched} fetched, "
            f"cache hits {cold.cache_hits} / misses {cold.cache_misses}, "
            f"{cold.bytes_received:,} bytes received"
        )
        for customer, n, total in totals:
            print(f"  {customer}: {n} orders, {total}")
        print(f"  order 42: {point[0] if point else None!r}")
        print(
            f"stored: {head.storage_used:,} bytes for {head.db_size_pages} pages "
            f"(head txid {head.head_txid}, generation {head.generation})"
        )
    return 0
