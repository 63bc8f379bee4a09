"""Why opening a database gets slower with many open: apsw's own open + close, without sqlkv.

Usage:
    python bench/bench_apsw_close.py [N ...]   (default: 0 1000 10000)

apsw keeps every open ``Connection`` in one list of weak references (``apsw.connections()``).
``close()`` removes the connection's entry by scanning that list from the oldest connection
to its own; the connection's deallocation runs the same removal again, finds nothing (the
entry is gone) and so scans the whole list. Both are linear in the number of open
connections, so the newest connection's close + deallocation costs two full scans and the
oldest's one. The cyclic GC plays no part: it is disabled here, and ``gc.freeze()`` changes
nothing. CPU time (``thread_time``), median of 300; a ``:memory:`` database, no VFS.
"""

from __future__ import annotations

import gc
import statistics
import sys
import time

import apsw


def median_us(samples: list[float]) -> float:
    return statistics.median(samples) * 1e6


def measure(n: int, rounds: int = 300) -> str:
    held = [apsw.Connection(":memory:") for _ in range(n)]
    opened, closed, freed, closed_old, freed_old = [], [], [], [], []
    for _ in range(rounds):
        t0 = time.thread_time()
        conn = apsw.Connection(":memory:")
        t1 = time.thread_time()
        conn.close()
        t2 = time.thread_time()
        del conn
        t3 = time.thread_time()
        opened.append(t1 - t0)
        closed.append(t2 - t1)
        freed.append(t3 - t2)
        if held:  # the oldest open connection instead, replaced by a new one
            conn = held.pop(0)
            held.append(apsw.Connection(":memory:"))
            t1 = time.thread_time()
            conn.close()
            t2 = time.thread_time()
            del conn
            t3 = time.thread_time()
            closed_old.append(t2 - t1)
            freed_old.append(t3 - t2)
    line = (
        f"{n:6,d} open: open {median_us(opened):6.1f} us | newest: close "
        f"{median_us(closed):6.1f}, deallocation {median_us(freed):6.1f} us"
    )
    if held:
        line += (
            f" | oldest: close {median_us(closed_old):6.1f}, "
            f"deallocation {median_us(freed_old):6.1f} us"
        )
    for conn in held:
        conn.close()
    return line


def main() -> None:
    gc.disable()
    print(f"apsw {apsw.apsw_version()}, SQLite {apsw.sqlite_lib_version()}")
    for n in [int(a) for a in sys.argv[1:]] or [0, 1000, 10_000]:
        print(measure(n), flush=True)


if __name__ == "__main__":
    main()
