"""Compaction benchmark: fold throughput (MB/s of raw pages folded) and the latency of reading
one page from a delta versus from a shard.

Usage:
    python bench/bench_compaction.py [--store URL ...] [--pages N]

Each store gets a fresh database: N pages of SQLite-like table data committed in 256-page
commits, then folded by compaction passes until no delta is left. Store URLs default to
memory:// and an embedded store in a temporary directory.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time

from sqlkv.engine import Engine, EngineConfig
from sqlkv.store import open_store

PAGE = 4096


def table_page(pgno: int) -> bytes:
    rows = b"".join(
        b"%08d|user %d|user%d@example.com|%f;" % (i, i, i, i * 0.37)
        for i in range(pgno * 60, pgno * 60 + 60)
    )
    return (rows * 2)[:PAGE].ljust(PAGE, b"\0")


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def run(url: str, npages: int) -> dict[str, float]:
    store = open_store(url)
    engine = Engine(store, EngineConfig())
    name = f"bench-compaction-{time.time_ns()}"
    head = engine.open(name).head
    gen = head.generation
    for first in range(1, npages + 1, 256):
        pages = {p: table_page(p) for p in range(first, min(first + 256, npages + 1))}
        head = engine.commit(name, gen, head.head_txid, pages, npages).head
    probe = list(range(1, npages + 1, max(1, npages // 50)))
    delta_reads = []
    for p in probe:
        t = time.perf_counter()
        engine.get_pages(name, gen, [p])
        delta_reads.append(time.perf_counter() - t)
    t = time.perf_counter()
    passes = 0
    while True:
        out = engine.compact(name)
        passes += 1
        if out.head.delta_count == 0:
            break
    fold_s = time.perf_counter() - t
    shard_reads = []
    for p in probe:
        t = time.perf_counter()
        engine.get_pages(name, gen, [p])
        shard_reads.append(time.perf_counter() - t)
    stored = out.head.storage_used
    engine.close()
    store.close()
    return {
        "fold_mb_s": npages * PAGE / fold_s / 1e6,
        "passes": passes,
        "delta_read_ms": median_ms(delta_reads),
        "shard_read_ms": median_ms(shard_reads),
        "stored_ratio": stored / (npages * PAGE),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", action="append", help="store URL (repeatable)")
    parser.add_argument("--pages", type=int, default=4096)
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="sqlkv-bench-")
    urls = args.store or ["memory://", os.path.join(tmp, "embedded")]
    if not args.store and os.environ.get("SQLKV_TEST_PG_URL"):
        urls.append(os.environ["SQLKV_TEST_PG_URL"])
    print(f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} cores")
    print(f"pages {args.pages} x {PAGE} B = {args.pages * PAGE / 1e6:.1f} MB of table-like data\n")
    print(
        "| store | fold MB/s | passes | read from delta (ms) | read from shard (ms) | stored/raw |"
    )
    print("|---|---|---|---|---|---|")
    for url in urls:
        r = run(url, args.pages)
        shown = url.split("@")[-1] if "://" in url and "@" in url else url
        kind = shown if "://" in shown else "embedded (file)"
        print(
            f"| {kind} | {r['fold_mb_s']:.1f} | {r['passes']:.0f} | {r['delta_read_ms']:.2f} "
            f"| {r['shard_read_ms']:.2f} | {r['stored_ratio']:.2f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
