"""What verified reads cost, in CPU time (robust on a machine shared with other jobs).

Usage:
    PYTHONPATH=src python bench/bench_verified_reads.py [--pages N] [--repeat R]

On a memory store: N pages (table-like, a quarter incompressible) committed in 256-page
commits; then, each measured as process CPU time and the best of R rounds:
- ``cold read, deltas``: a new engine (empty caches) opens the database and reads every
  page through ``get_pages`` 256 at a time, as a cold scan does while the pages are still
  in deltas;
- ``fold``: compaction passes until no delta is left;
- ``cold read, shards``: the same read after folding.
It uses only the public engine API, so the same file measures a checkout from before
verified reads (point PYTHONPATH at its ``src``) for a before/after comparison.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import sys
import time
from collections.abc import Callable

from sqlkv.engine import Engine
from sqlkv.store import MemoryStore

PAGE = 4096


def table_page(pgno: int, rng: random.Random) -> bytes:
    if pgno % 4 == 0:
        return rng.randbytes(PAGE)
    rows = b"".join(
        b"%08d|user %d|user%d@example.com|%f;" % (i, i, i, i * 0.37)
        for i in range(pgno * 60, pgno * 60 + 60)
    )
    return (rows * 2)[:PAGE].ljust(PAGE, b"\0")


def cpu(fn: Callable[[], object]) -> float:
    start = time.process_time()
    fn()
    return time.process_time() - start


def one_round(npages: int) -> dict[str, float]:
    rng = random.Random(1)
    store = MemoryStore()
    engine = Engine(store)
    head = engine.open("db").head
    for first in range(1, npages + 1, 256):
        pages = {p: table_page(p, rng) for p in range(first, min(first + 256, npages + 1))}
        head = engine.commit("db", head.generation, head.head_txid, pages, npages).head

    def read_all() -> None:
        reader = Engine(store)  # a new process, empty caches: opens (takes over), then reads
        generation = reader.open("db", preload_bytes=0).head.generation
        for first in range(1, npages + 1, 256):
            reader.get_pages("db", generation, list(range(first, min(first + 256, npages + 1))))

    out = {"cold read, deltas": cpu(read_all)}
    out["fold"] = cpu(lambda: engine.compact_until_done("db"))
    out["cold read, shards"] = cpu(read_all)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=4096)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    import sqlkv.engine as eng

    print(f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} cores")
    print(f"sqlkv engine from {os.path.dirname(eng.__file__)}")
    print(f"pages {args.pages} x {PAGE} B, best of {args.repeat} rounds, CPU seconds\n")
    best: dict[str, float] = {}
    for _ in range(args.repeat):
        for k, v in one_round(args.pages).items():
            best[k] = min(v, best.get(k, v))
    mb = args.pages * PAGE / 1e6
    print("| operation | CPU ms | MB/s of raw pages |")
    print("|---|---:|---:|")
    for k, v in best.items():
        print(f"| {k} | {v * 1000:.0f} | {mb / v:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
