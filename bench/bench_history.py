"""History benchmark: what a retention window costs, and what reading past states costs.

Usage:
    python bench/bench_history.py [--commits 2000] [--window 3600]

One OLTP-like stream (the §7 mixed OLTP shape: a table of ~300-byte rows, each commit
updating 1-4 random rows and inserting one) runs through ``sqlkv.connect`` on a memory
store twice: without retention and with a window of ``--window`` seconds (every txid of the
run stays inside it). Compaction runs as the coordinator would (a pass once 16 deltas are
live). Reported, counted (not timed) unless said:

- stored bytes at the end (``storage_used``), the bytes kept only for past states
  (``sqlkv_history_retained_bytes``) and per commit;
- compaction: passes, CPU seconds (``time.process_time``) and bytes written to the store;
- reads: store operations and bytes read of ``read_at`` one commit behind the head, and of
  a whole-database read at a txid half-way back (the pages changed since take the history
  path), and of ``changes_since`` one commit behind.

Wall-clock numbers are noisy on a shared machine; the counts are exact.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import sqlkv
from sqlkv.engine import Engine, EngineConfig
from sqlkv.store import MemoryStore


def run(commits: int, window: float, seed: int = 7) -> dict[str, float]:
    rng = random.Random(seed)
    mem = MemoryStore()
    engine = Engine(mem, EngineConfig(retention_s=window))
    conn = sqlkv.connect("bench", engine=engine)
    conn.execute("create table t(id integer primary key, v text)")
    with conn:
        conn.executemany("insert into t values (?, ?)", [(i, "x" * 300) for i in range(5000)])
    engine.compact_until_done("bench")
    passes = 0
    cpu = 0.0
    written_by_compaction = 0
    txids = []
    for _i in range(commits):
        with conn:
            for _ in range(rng.randint(1, 4)):
                conn.execute(
                    "update t set v = ? where id = ?", (os.urandom(150).hex(), rng.randrange(5000))
                )
            conn.execute("insert into t(v) values (?)", ("y" * 300,))
        txids.append(engine.head("bench").head_txid)
        if engine.head("bench").delta_count >= 16:
            before_w, start = mem.stats.bytes_written, time.process_time()
            engine.compact_until_done("bench")
            cpu += time.process_time() - start
            written_by_compaction += mem.stats.bytes_written - before_w
            passes += 1
    conn.close()
    head = engine.head("bench")
    reg = engine.metrics.registry
    retained = reg.get_sample_value("sqlkv_history_retained_bytes") or 0.0

    def cost(call: object) -> tuple[int, int]:
        ops, read = len(mem.ops), mem.stats.bytes_read
        call()  # type: ignore[operator]
        return len(mem.ops) - ops, mem.stats.bytes_read - read

    mem_ops_on = MemoryStore(record_ops=True)  # reads are counted on a recording copy
    mem_ops_on.restore_state(mem.snapshot_state())
    mem, engine = mem_ops_on, Engine(mem_ops_on)
    pages = list(range(1, head.db_size_pages + 1))
    engine.read_at("bench", head.head_txid, [1])  # warm the PIDX cache
    near = cost(lambda: engine.read_at("bench", head.head_txid - 1, pages[:64]))
    mid = txids[len(txids) // 2]
    try:
        deep = cost(lambda: engine.read_at("bench", mid, pages))
    except sqlkv.errors.SnapshotTooOld:
        deep = (-1, -1)
    changes = cost(lambda: engine.changes_since("bench", head.head_txid - 1))
    return {
        "commits": commits,
        "storage_used": head.storage_used,
        "retained": retained,
        "per_commit": retained / commits,
        "passes": passes,
        "compaction_cpu_s": cpu,
        "compaction_written": written_by_compaction,
        "near_ops": near[0],
        "near_read": near[1],
        "deep_ops": deep[0],
        "deep_read": deep[1],
        "changes_ops": changes[0],
        "db_pages": head.db_size_pages,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--commits", type=int, default=2000)
    ap.add_argument("--window", type=float, default=3600.0)
    args = ap.parse_args()
    print(f"load: {os.getloadavg()}")
    rows = [
        ("no retention", run(args.commits, 0.0)),
        (f"window {args.window:g} s", run(args.commits, args.window)),
    ]
    keys = list(rows[0][1])
    print("metric".ljust(22) + "".join(name.rjust(18) for name, _ in rows))
    for k in keys:
        print(k.ljust(22) + "".join(f"{r[k]:18,.2f}" for _, r in rows))


if __name__ == "__main__":
    main()
