"""Fork benchmark: time, CPU and extra storage of ``Engine.fork`` by database size.

Usage:
    python bench/bench_fork.py [--sizes 10,100,1024] [--driver embedded] [--deltas 2]

For each size (MiB of SQLite pages): a source database is built directly in its folded
state (shards written through the engine's ``Ledger``, as compaction leaves a database),
plus ``--deltas`` commits of 256 pages each spread over the database (so the fork merges
some shards with newer copies and copies the others as they are); then ``Engine.fork``
copies it into a new database. Pages are half random bytes, half a repeated pattern (LZ4
about 2:1), like partly full SQLite pages.

Columns: wall seconds and process CPU seconds of the fork, store transactions and bytes
written by it (``StoreStats``), the source's and the fork's stored bytes
(``storage_used``): the fork's is the extra storage it costs, since fork copies; then the
wall and CPU seconds of ``fork(at=head - 1)`` (the state before the last commit, read
with ``read_at`` and encoded again). The load
average (``os.getloadavg``) is printed beside the numbers: the machine may be shared.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from drivers import drop_store, store_opener

from sqlkv.engine import Engine
from sqlkv.engine.blobs import encode_pages
from sqlkv.engine.ledger import Ledger
from sqlkv.store import Store, Transaction

PAGE = 4096
MiB = 1024 * 1024
SHARDS_PER_TX = 16


def make_page(rng: random.Random) -> bytes:
    return rng.randbytes(PAGE // 2) + bytes(range(256)) * (PAGE // 512)


def build_source(engine: Engine, name: str, mib: int, deltas: int, rng: random.Random) -> None:
    """A database of ``mib`` MiB, folded into shards, with ``deltas`` commits over it."""
    pages = mib * MiB // PAGE
    head = engine.open(name).head
    keys = engine.keys(name)
    shards = pages // 64 + 1

    def write(tr: Transaction, first: int) -> None:
        ledger = Ledger(tr, name, keys)
        h = ledger.read_head()
        written = 0
        for s in range(first, min(shards, first + SHARDS_PER_TX)):
            lo, hi = max(1, s * 64), min(pages, s * 64 + 63)
            data = encode_pages([(p, make_page(rng)) for p in range(lo, hi + 1)], 2, pages, PAGE)
            ledger.put_blob(partial(keys.shard_chunk, s), data)
            written += 1
        ledger.write_head(h.with_changes(db_size_pages=pages, shard_count=h.shard_count + written))

    for first in range(0, shards, SHARDS_PER_TX):
        engine.store.transact(lambda tr, f=first: write(tr, f))
    head = engine.open(name).head
    for _ in range(deltas):
        chosen = rng.sample(range(1, pages + 1), 256)
        head = engine.commit(
            name,
            head.generation,
            head.head_txid,
            {p: make_page(rng) for p in chosen},
            pages,
        ).head


def run(store: Store, mib: int, deltas: int) -> dict[str, float]:
    rng = random.Random(mib)
    engine = Engine(store)
    src, dst = f"fork-src-{mib}", f"fork-dst-{mib}"
    build_source(engine, src, mib, deltas, rng)
    before = store.stats.snapshot()
    wall, cpu = time.perf_counter(), time.process_time()
    head = Engine(store).fork(src, dst)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    used = store.stats - before
    at = engine.head(src).head_txid - 1  # before the last commit: read through read_at
    wall_at, cpu_at = time.perf_counter(), time.process_time()
    Engine(store).fork(src, dst + "-at", at=at)
    wall_at, cpu_at = time.perf_counter() - wall_at, time.process_time() - cpu_at
    return {
        "at_wall_s": wall_at,
        "at_cpu_s": cpu_at,
        "mib": mib,
        "wall_s": wall,
        "cpu_s": cpu,
        "transactions": used.transactions,
        "written_mib": used.bytes_written / MiB,
        "src_mib": engine.head(src).storage_used / MiB,
        "fork_mib": head.storage_used / MiB,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10,100", help="MiB, comma separated")
    parser.add_argument("--driver", default="embedded")
    parser.add_argument("--deltas", type=int, default=2)
    args = parser.parse_args()
    print(
        f"bench_fork: python {platform.python_version()}, driver {args.driver}, "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}"
    )
    print(
        f"{'MiB':>6} {'wall s':>8} {'CPU s':>7} {'txs':>5} {'written MiB':>12} "
        f"{'source MiB':>11} {'fork MiB':>9} {'--at wall s':>11} {'--at CPU s':>10}  load"
    )
    with tempfile.TemporaryDirectory(prefix="bench-fork-") as tmp:
        for mib in (int(s) for s in args.sizes.split(",")):
            opener = store_opener(args.driver, Path(tmp) / str(mib))
            store = opener()
            try:
                r = run(store, mib, args.deltas)
            finally:
                drop_store(args.driver, store)
                store.close()
            print(
                f"{r['mib']:>6} {r['wall_s']:>8.2f} {r['cpu_s']:>7.2f} {r['transactions']:>5} "
                f"{r['written_mib']:>12.1f} {r['src_mib']:>11.1f} {r['fork_mib']:>9.1f} "
                f"{r['at_wall_s']:>11.2f} {r['at_cpu_s']:>10.2f}  "
                f"{os.getloadavg()[0]:.1f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
