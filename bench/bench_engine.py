"""Engine benchmark: commit latency and throughput by commit size, get_pages latency by batch
size, with store round trips and bytes per operation, for each store driver.

Usage:
    python bench/bench_engine.py [--drivers memory,embedded,lmdb,postgres] [--scale 1.0]

- Commits: 1 page, 256 pages and 8 MiB (2048 pages) through ``commit``; 50 MiB (12,800
  pages) through ``commit_stage`` x7 + ``commit_finalize``. Each size gets its own database.
- Reads: ``get_pages`` of 1, 16 and 256 consecutive pages at random places of a 4096-page
  database written in 256-page commits (warm PIDX cache, as an owner reads).
- Pages are half random bytes, half a repeated pattern (LZ4 about 2:1), like SQLite pages
  that are partly full.
- PostgreSQL is included when SQLKV_TEST_PG_URL is set (``scripts/pg-test-server``); it
  runs in a table of its own, dropped at the end. Embedded and LMDB stores live in a
  temporary directory, removed at the end.
- ``--scale`` multiplies the number of repetitions (not the sizes); at 1.0 the four drivers
  take about 30 s together on a 2-CPU machine (PostgreSQL most of it).

Columns: latency median and p99 (ms), operations/s and MB/s of raw page data (one
operation at a time), store round trips per operation (``StoreStats.round_trips``), bytes
sent to the store per operation (keys + values of writes, ``bytes_written``), and for
commits the growth of the database's stored bytes per operation (``storage_used``) / for
reads the bytes read from the store per operation.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from drivers import DRIVERS, drop_store, etcd_url, postgres_url, store_opener

from sqlkv.engine import Engine, EngineConfig
from sqlkv.store import Store

PAGE = 4096
MiB = 1024 * 1024
STAGE_BATCH = 2048  # pages per commit_stage call (8 MiB raw, ~4 MiB encoded)


def make_page(rng: random.Random) -> bytes:
    return rng.randbytes(PAGE // 2) + bytes(range(256)) * (PAGE // 512)


@dataclass
class Row:
    what: str
    samples: list[float]
    pages: int  # raw pages per operation
    round_trips: float
    sent: float
    third: float  # stored growth (commits) or bytes read (reads), per operation

    def cells(self) -> list[str]:
        s = sorted(self.samples)
        med = statistics.median(s)
        p99 = s[min(len(s) - 1, int(len(s) * 0.99))]
        total = sum(s)
        return [
            self.what,
            str(len(s)),
            f"{med * 1000:.2f}",
            f"{p99 * 1000:.2f}",
            f"{len(s) / total:.1f}",
            f"{len(s) * self.pages * PAGE / total / 1e6:.1f}",
            f"{self.round_trips:.1f}",
            _size(self.sent),
            _size(self.third),
        ]


def _size(n: float) -> str:
    for unit, scale in (("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n:.0f} B"


class Bench:
    def __init__(self, store: Store, seed: int = 1) -> None:
        self.store = store
        self.engine = Engine(store, EngineConfig())
        self.rng = random.Random(seed)
        self.pool = [make_page(self.rng) for _ in range(512)]

    def page(self) -> bytes:
        return self.pool[self.rng.randrange(len(self.pool))]

    def measure(self, what: str, n: int, pages: int, op: Callable[[], int]) -> Row:
        """Run ``op`` n times; it returns the stored-bytes growth or bytes read of one call."""
        before = self.store.stats.snapshot()
        samples, third = [], 0
        for _ in range(n):
            t = time.perf_counter()
            third += op()
            samples.append(time.perf_counter() - t)
        d = self.store.stats - before
        return Row(what, samples, pages, d.round_trips / n, d.bytes_written / n, third / n)

    def commits(self, name: str, what: str, n: int, pages: int) -> Row:
        head = self.engine.open(name).head
        gen, size = head.generation, max(pages, 1)
        state = {"head": head}
        batches = [{p: self.page() for p in range(1, pages + 1)} for _ in range(min(n, 3))]
        count = {"i": 0}
        staged = pages * PAGE > 8 * MiB

        def op() -> int:
            h = state["head"]
            batch = batches[count["i"] % len(batches)]
            count["i"] += 1
            if staged:
                txid = None
                for seq, lo in enumerate(range(1, pages + 1, STAGE_BATCH)):
                    part = {p: batch[p] for p in range(lo, min(lo + STAGE_BATCH, pages + 1))}
                    txid = self.engine.commit_stage(name, gen, txid, seq, part).txid
                assert txid is not None
                new = self.engine.commit_finalize(name, gen, h.head_txid, txid, size).head
            else:
                new = self.engine.commit(name, gen, h.head_txid, batch, size).head
            state["head"] = new
            return new.storage_used - h.storage_used

        return self.measure(what, n, pages, op)

    def reads(self, name: str, n: int, batch: int, size: int) -> Row:
        gen = self.engine.head(name).generation

        def op() -> int:
            first = self.rng.randint(1, size - batch + 1)
            before = self.store.stats.bytes_read
            pages = self.engine.get_pages(name, gen, range(first, first + batch)).pages
            assert len(pages) == batch and all(v is not None for v in pages.values())
            return self.store.stats.bytes_read - before

        self.engine.get_pages(name, gen, [1])  # warm the PIDX cache
        return self.measure(f"get_pages {batch} page{'s' * (batch > 1)}", n, batch, op)

    def read_db(self, name: str, size: int) -> None:
        head = self.engine.open(name).head
        for lo in range(1, size + 1, 256):
            batch = {p: self.page() for p in range(lo, min(lo + 256, size + 1))}
            head = self.engine.commit(name, head.generation, head.head_txid, batch, size).head


def run_driver(kind: str, where: Path, scale: float) -> list[Row]:
    store = store_opener(kind, where)()
    try:
        b = Bench(store)

        def reps(n: int) -> int:
            return max(2, round(n * scale))

        rows = [
            b.commits("c1", "commit 1 page", reps(300), 1),
            b.commits("c256", "commit 256 pages (1 MiB)", reps(60), 256),
            b.commits("c8m", "commit 2048 pages (8 MiB)", reps(10), 2048),
            b.commits("c50m", "stage x7 + finalize 12800 pages (50 MiB)", reps(3), 12800),
        ]
        size = 4096
        b.read_db("reads", size)
        rows += [
            b.reads("reads", reps(500), 1, size),
            b.reads("reads", reps(300), 16, size),
            b.reads("reads", reps(80), 256, size),
        ]
        return rows
    finally:
        drop_store(kind, store)
        store.close()


def versions() -> str:
    out = [f"python {platform.python_version()}"]
    for dist in ("sqlkv", "apsw", "lz4", "lmdb", "psycopg"):
        try:
            out.append(f"{dist} {metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            out.append(f"{dist} (not installed)")
    try:
        import apsw

        out.append(f"SQLite {apsw.sqlite_lib_version()}")
    except ImportError:
        pass
    return ", ".join(out)


def postgres_version(url: str) -> str:
    try:
        import psycopg

        with psycopg.connect(url, connect_timeout=5) as conn:
            row = conn.execute("show server_version").fetchone()
            return f"PostgreSQL {row[0] if row else '?'}"
    except Exception as exc:  # the bench still runs the other drivers
        return f"PostgreSQL version unknown ({type(exc).__name__})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--drivers", default=",".join(DRIVERS), help="comma-separated list")
    parser.add_argument("--scale", type=float, default=1.0, help="repetition multiplier")
    args = parser.parse_args(argv)
    drivers = [d.strip() for d in args.drivers.split(",") if d.strip()]
    unknown = set(drivers) - set(DRIVERS)
    if unknown:
        parser.error(f"unknown driver(s) {sorted(unknown)}; valid: {', '.join(DRIVERS)}")
    pg = postgres_url()
    if "postgres" in drivers and pg is None:
        drivers.remove("postgres")
        print("postgres: skipped (set SQLKV_TEST_PG_URL, see scripts/pg-test-server)")
    if "etcd" in drivers and etcd_url() is None:
        drivers.remove("etcd")
        print("etcd: skipped (set SQLKV_TEST_ETCD_URL, see scripts/etcd-test-cluster)")

    config = EngineConfig()
    print("# sqlkv engine benchmark\n")
    print(f"- {versions()}")
    print(f"- {platform.platform()}, {platform.machine()}, {os.cpu_count()} CPUs")
    if pg is not None and "postgres" in drivers:
        print(f"- {postgres_version(pg)} at {pg.split('@')[-1]}")
    print(f"- drivers: {', '.join(drivers)}; scale {args.scale}; no injected latency")
    print(
        f"- engine: max_delta_bytes {config.max_delta_bytes}, part_pages {config.part_pages}, "
        f"page {PAGE} B; pages half random, half pattern (LZ4 ~2:1)"
    )
    started = time.perf_counter()
    header = [
        "operation",
        "n",
        "median ms",
        "p99 ms",
        "ops/s",
        "MB/s",
        "round trips/op",
        "sent/op",
        "stored or read/op",
    ]
    with tempfile.TemporaryDirectory(prefix="sqlkv-bench-engine-") as tmp:
        for kind in drivers:
            t = time.perf_counter()
            rows = run_driver(kind, Path(tmp) / kind, args.scale)
            print(f"\n## {kind} ({time.perf_counter() - t:.0f} s)\n")
            print("| " + " | ".join(header) + " |")
            print("|" + "---|" * len(header))
            for row in rows:
                print("| " + " | ".join(row.cells()) + " |")
            sys.stdout.flush()
    print(f"\ntotal {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
