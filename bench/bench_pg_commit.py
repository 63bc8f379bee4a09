"""Where an autocommit 1-row insert's time goes on the PostgreSQL store, against psycopg's
own autocommit INSERT on the same server (docs/round-trips.md, "Where a PostgreSQL
commit's time goes").

    python bench/bench_pg_commit.py [--inserts 500] [--rounds 3] [--compaction]

Per commit: wall time; the main thread's CPU split by layer (SQLite + VFS, the engine, the
PostgreSQL driver, the call: array encoding and libpq's send and receive), the process's
CPU (compaction's threads are the difference); the CPU of the store's own backends (read
from /proc, so the server must run on this machine); the commit function's own time
(``track_functions``, set on the store's connections: needs a superuser); store round
trips. CPU times are what to compare on a loaded machine; wall times swing with the load.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import uuid
from collections.abc import Callable
from typing import Any

import psycopg

import sqlkv
from sqlkv.engine import engine as engine_module
from sqlkv.store import postgres, postgres_sql
from sqlkv.store.postgres import PostgresStore

PAYLOAD = "x" * 100
_TICKS = os.sysconf("SC_CLK_TCK")


def backend_cpu(pids: set[int]) -> float:
    """Seconds of CPU the backends ``pids`` used so far (user + system)."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / _TICKS


class Layers:
    """Thread CPU spent inside the wrapped methods, by layer."""

    def __init__(self) -> None:
        self.spent: dict[str, float] = {}
        self._undo: list[Callable[[], None]] = []

    def wrap(self, owner: Any, name: str, layer: str) -> None:
        real = getattr(owner, name)

        def timed(*args: Any, **kw: Any) -> Any:
            t = time.thread_time()
            try:
                return real(*args, **kw)
            finally:
                self.spent[layer] = self.spent.get(layer, 0.0) + time.thread_time() - t

        setattr(owner, name, timed)
        self._undo.append(lambda: setattr(owner, name, real))

    def restore(self) -> None:
        for undo in reversed(self._undo):
            undo()


def through_sqlkv(url: str, n: int, compaction: bool) -> dict[str, float]:
    layers = Layers()
    layers.wrap(engine_module.Engine, "commit", "engine")
    layers.wrap(postgres._PgSnapshot, "commit", "driver")
    layers.wrap(postgres._PgSnapshot, "close", "driver")
    layers.wrap(postgres_sql.CommitCall, "__call__", "call")
    table = f"kv_bench_pg_{uuid.uuid4().hex[:8]}"
    store = PostgresStore(url, table=table)
    function = postgres_sql.commit_function_name(table).as_string(None).strip('"')
    try:
        conn = sqlkv.connect("bench", store, compaction=compaction)
        conn.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v)")
        for _ in range(5):
            conn.execute("INSERT INTO t(v) VALUES (?)", (PAYLOAD,))
        for pooled in store._pool._idle:
            pooled.execute("SET track_functions = 'all'")

        def pids() -> set[int]:
            return {c.info.backend_pid for c in list(store._pool._idle)}

        before_pids = pids()
        layers.spent.clear()
        stats = store.stats.snapshot()
        server = backend_cpu(before_pids)
        proc, main, wall = time.process_time(), time.thread_time(), time.perf_counter()
        for _ in range(n):
            conn.execute("INSERT INTO t(v) VALUES (?)", (PAYLOAD,))
        wall, main = time.perf_counter() - wall, time.thread_time() - main
        proc = time.process_time() - proc
        time.sleep(0.3)  # compaction's connections back in the pool
        server = backend_cpu(before_pids | pids()) - server
        trips = (store.stats.snapshot() - stats).round_trips
        conn.close()
        store.close()
        time.sleep(1.2)  # backends report function statistics when idle, at most every second
        with psycopg.connect(url, autocommit=True) as admin:
            row = admin.execute(
                "SELECT calls, total_time FROM pg_stat_user_functions WHERE funcname = %s",
                (function,),
            ).fetchone()
    finally:
        layers.restore()
        dropper = PostgresStore(url, table=table)
        dropper.drop()
        dropper.close()
    spent = layers.spent
    engine, driver, call = (spent.get(k, 0.0) for k in ("engine", "driver", "call"))
    return {
        "wall": wall / n,
        "client process": proc / n,
        "sqlite + vfs": (main - engine) / n,
        "engine": (engine - driver) / n,
        "driver": (driver - call) / n,
        "call": call / n,
        "server backends": server / n,
        "function": row[1] / 1e3 / row[0] if row and row[0] else float("nan"),
        "round trips": trips / n,
    }


def direct(url: str, n: int) -> dict[str, float]:
    table = f"bench_pg_direct_{uuid.uuid4().hex[:8]}"
    insert = f"INSERT INTO {table}(v) VALUES (%s)"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE {table}(id serial PRIMARY KEY, v text)")
        try:
            for _ in range(20):
                conn.execute(insert, (PAYLOAD,))
            backend = {conn.info.backend_pid}
            server = backend_cpu(backend)
            proc, wall = time.process_time(), time.perf_counter()
            for _ in range(n):
                conn.execute(insert, (PAYLOAD,))
            wall, proc = time.perf_counter() - wall, time.process_time() - proc
            server = backend_cpu(backend) - server
        finally:
            conn.execute(f"DROP TABLE {table}")
    return {"wall": wall / n, "client process": proc / n, "server backends": server / n}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pg-url", default=os.environ.get("SQLKV_TEST_PG_URL"))
    ap.add_argument("--inserts", type=int, default=500)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--compaction", action="store_true", help="leave compaction on")
    args = ap.parse_args()
    if not args.pg_url:
        raise SystemExit("give --pg-url or set SQLKV_TEST_PG_URL")
    runs: dict[str, list[dict[str, float]]] = {"sqlkv": [], "psycopg": []}
    for _ in range(args.rounds):
        runs["sqlkv"].append(through_sqlkv(args.pg_url, args.inserts, args.compaction))
        runs["psycopg"].append(direct(args.pg_url, args.inserts))
    print(f"per commit, medians of {args.rounds} rounds of {args.inserts:,} inserts; {load()}")
    for arm, results in runs.items():
        print(f"{arm}:")
        for key in results[0]:
            value = statistics.median(r[key] for r in results)
            shown = f"{value:.2f}" if key == "round trips" else f"{value * 1e3:.3f} ms"
            print(f"  {key:16s} {shown}")


def load() -> str:
    return "load average " + " ".join(f"{x:.1f}" for x in os.getloadavg())


if __name__ == "__main__":
    main()
