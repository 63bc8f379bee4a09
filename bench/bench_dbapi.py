"""The DB-API layer's overhead: each §7 workload through ``sqlkv.connect`` (apsw) and
through ``sqlkv.dbapi2``, same store kind, same process, same run.

Usage:
    python bench/bench_dbapi.py [--scale small|full] [--only NAME ...] [--repeat N]
                                [--store memory|embedded]

The workloads are written against the apsw connection (``sqlkv.workloads``). The DB-API
run hands them ``DbapiAsApsw``: a ``sqlkv.dbapi2`` connection in autocommit mode
(``isolation_level=None``, so a statement outside a transaction commits on its own, as
on apsw) whose ``with`` block runs ``BEGIN`` ... ``commit()``/``rollback()``, and whose
``execute`` of a multi-statement script goes to ``executescript``. Every statement goes
through the DB-API cursor (parameter binding, type adaptation, row building).

Each workload runs ``--repeat`` times per mode on a fresh database (alternating modes);
the best run counts. Two clocks: wall time, and the CPU time of the thread running the
workload (``time.thread_time``), which leaves out what other processes on a shared
machine do to the wall clock; the layer's overhead is CPU work in that thread, so the
targets are judged on the CPU ratio (both are printed). Results are checked equal
between the modes. Targets (issue #12): within 10% on write workloads, 20% on point
reads. Output: environment, then a markdown table.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

from bench_workloads import environment

import sqlkv.dbapi2 as dbapi2
from sqlkv.client import connect
from sqlkv.store import MemoryStore, Store
from sqlkv.workloads import WORKLOADS, Scale, Workload

WRITES = {
    "insert_single",
    "insert_txn",
    "insert_txn_10k",
    "batch_insert",
    "bulk_update",
    "bulk_delete",
    "hot_row_updates",
    "large_payloads",
    "large_txn_500k",
    "large_txn_10m",
    "large_txn_50m",
}
POINT_READS = {"point_reads"}


class DbapiAsApsw:
    """The slice of the apsw connection the workloads use, over a DB-API connection."""

    def __init__(self, conn: dbapi2.Connection) -> None:
        self.conn = conn

    def execute(self, sql: str, params: Any = ()) -> Any:
        try:
            return self.conn.execute(sql, params)
        except dbapi2.ProgrammingError:
            if params or dbapi2.complete_statement(sql) is False:
                raise
            return self.conn.executescript(sql)

    def executemany(self, sql: str, seq: Any) -> Any:
        return self.conn.executemany(sql, seq)

    def __enter__(self) -> DbapiAsApsw:
        self.conn.execute("BEGIN")
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if kind is None:
            self.conn.commit()
        else:
            self.conn.rollback()

    def close(self) -> None:
        self.conn.close()


def _open_apsw(store: Store, name: str) -> Any:
    return connect(name, store)


def _open_dbapi(store: Store, name: str) -> Any:
    return DbapiAsApsw(dbapi2.connect(name, store=store, isolation_level=None))


OPENERS: dict[str, Callable[[Store, str], Any]] = {"apsw": _open_apsw, "dbapi2": _open_dbapi}


def _make_store(kind: str, where: Path) -> Store:
    if kind == "memory":
        return MemoryStore()
    from sqlkv.store.embedded import EmbeddedStore

    return EmbeddedStore(where / "embedded")


def measure(workload: Workload, mode: str, store_kind: str, where: Path, scale: Scale) -> Any:
    store = _make_store(store_kind, where)
    opener = OPENERS[mode]
    try:
        conn = opener(store, workload.name)
        try:
            if workload.setup is not None:
                workload.setup(conn, scale)
            start, cpu = time.perf_counter(), time.thread_time()
            if workload.cold:
                conn.close()
                conn = opener(store, workload.name)
            rows = workload.run(conn, scale)
            return time.perf_counter() - start, time.thread_time() - cpu, rows
        finally:
            conn.close()
    finally:
        store.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scale", choices=["small", "full"], default="small")
    parser.add_argument("--only", action="append", metavar="NAME", help="workload (repeatable)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--store", choices=["memory", "embedded"], default="memory")
    args = parser.parse_args(argv)
    scale = Scale.FULL if args.scale == "full" else Scale.SMALL
    names = args.only or list(WORKLOADS)
    unknown = [n for n in names if n not in WORKLOADS]
    if unknown:
        print(f"unknown workload(s) {unknown}; valid: {', '.join(WORKLOADS)}", file=sys.stderr)
        return 2
    print(environment(scale, []))
    print(f"- store: {args.store}; best of {args.repeat} runs per mode\n")
    print(
        "| workload | kind | apsw ms | dbapi2 ms | wall ratio "
        "| apsw CPU ms | dbapi2 CPU ms | CPU ratio | target |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---|")
    misses = mismatches = 0
    with tempfile.TemporaryDirectory(prefix="sqlkv-bench-dbapi-") as tmp:
        for name in names:
            workload = WORKLOADS[name]
            best: dict[str, float] = {}
            best_cpu: dict[str, float] = {}
            results: dict[str, Any] = {}
            for i in range(args.repeat):
                for mode in OPENERS:
                    where = Path(tmp) / f"{name}-{mode}-{i}"
                    where.mkdir()
                    seconds, cpu, rows = measure(workload, mode, args.store, where, scale)
                    best[mode] = min(best.get(mode, seconds), seconds)
                    best_cpu[mode] = min(best_cpu.get(mode, cpu), cpu)
                    results[mode] = [tuple(r) for r in rows] if rows else rows
            if results["apsw"] != results["dbapi2"]:
                mismatches += 1
                print(f"<!-- {name}: results differ -->", file=sys.stderr)
            ratio = best["dbapi2"] / best["apsw"]
            cpu_ratio = best_cpu["dbapi2"] / best_cpu["apsw"]
            kind, limit = (
                ("write", 1.10)
                if name in WRITES
                else ("point read", 1.20)
                if name in POINT_READS
                else ("other", None)
            )
            verdict = "-"
            if limit is not None:
                verdict = "ok" if cpu_ratio <= limit else f"MISS (> {limit})"
            misses += verdict.startswith("MISS")
            print(
                f"| {name} | {kind} | {best['apsw'] * 1000:.1f} | {best['dbapi2'] * 1000:.1f} "
                f"| {ratio:.2f} | {best_cpu['apsw'] * 1000:.1f} | {best_cpu['dbapi2'] * 1000:.1f} "
                f"| {cpu_ratio:.2f} | {verdict} |",
                flush=True,
            )
    if mismatches:
        print(f"{mismatches} result mismatches", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
