"""The DB-API layer's overhead: each §7 workload through ``sqlkv.connect`` (apsw) and
through ``sqlkv.dbapi2``, same store kind, same process, same run.

Usage:
    python bench/bench_dbapi.py [--scale small|full] [--only NAME ...] [--repeat N]
                                [--store both|memory|embedded] [--per-statement]

The workloads are written against the apsw connection (``sqlkv.workloads``). The DB-API
run hands them ``DbapiAsApsw``: a ``sqlkv.dbapi2`` connection in autocommit mode
(``isolation_level=None``, so a statement outside a transaction commits on its own, as
on apsw) whose ``with`` block runs ``BEGIN`` ... ``commit()``/``rollback()``. Its
``execute`` and ``executemany`` ARE the DB-API connection's bound methods (no frame of the
harness between the workload and the layer, as none is between the workload and apsw):
every statement goes through ``sqlkv.dbapi2`` (checks, the implicit-transaction rules,
parameter binding and adaptation, cursor state, row building). A multi-statement script
would fail there (the DB-API runs scripts with ``executescript``); no workload sends one.

Each workload runs ``--repeat`` pairs of runs (apsw and dbapi2 side by side, the order
alternating between pairs so that neither mode always runs first), each on a fresh
database, after a ``gc.collect()`` (no garbage of earlier runs collected inside the timed
part); a workload whose run takes under 50 ms gets four times the pairs. The best run of
each mode is shown, and the ratios of the pairs (min / median / max): a target is judged
on the median ratio of the pairs, on the view's clock (below). A pair runs under nearly
the same load, so its ratio is what the layer costs; the median discards the pairs a
burst of load hit on one side (on a loaded machine the best runs of the two modes come
from different moments, and their ratio moves by tens of percent). The spread shows how
far a run can be trusted: a miss that only the max shows is noise.
Two views, printed as two tables of the same run:

- ``embedded``: the store ``sqlkv.connect`` uses by default (a directory on local disk),
  judged on the wall clock: the workload as a user runs it, store and disk included;
- ``memory``: the in-process memory store, judged on the CPU time of the thread running
  the workload (``time.thread_time``): the stricter view, where nothing but SQLite and
  the layers above it costs time, and which other processes on a shared machine disturb
  least (the wall clock of a loaded machine moves by tens of percent between runs).

Both clocks are printed in both tables; results are checked equal between the modes.
``--per-statement`` first prints the µs of one point read and one INSERT on each
connection (memory store, CPU time): the layer's fixed cost per statement.
Targets (issue #12): within 10% on write workloads, 20% on point reads; other workloads
are shown without a target. Output: environment, load, then the tables in markdown.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
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
        # the layer's own bound methods: the workload calls sqlkv.dbapi2 directly
        self.execute = conn.execute
        self.executemany = conn.executemany

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
            # the same start for both modes: no garbage of earlier runs left for a
            # collection inside the timed part (the layer's own garbage still counts)
            gc.collect()
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


# the clock each view is judged on (see the module docstring)
VIEWS = {"embedded": "wall", "memory": "cpu"}


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f}, {five:.2f}, {fifteen:.2f} ({os.cpu_count()} CPUs)"


def _kind(name: str) -> tuple[str, float | None]:
    if name in WRITES:
        return "write", 1.10
    if name in POINT_READS:
        return "point read", 1.20
    return "other", None


# workloads whose first run is shorter than SHORT seconds get SHORT_FACTOR times the pairs
SHORT = 0.05
SHORT_FACTOR = 4


def paired(apsw: list[float], dbapi: list[float]) -> tuple[float, float, float]:
    """(best, median, worst) of the ratios of the pairs run side by side."""
    ratios = sorted(d / a for a, d in zip(apsw, dbapi, strict=True))
    return ratios[0], statistics.median(ratios), ratios[-1]


def run_view(store: str, names: list[str], scale: Scale, repeat: int, tmp: Path) -> tuple[int, int]:
    """One table: every workload on ``store``; returns (target misses, result mismatches)."""
    clock = VIEWS[store]
    judged = "wall clock" if clock == "wall" else "CPU time of the workload thread"
    print(
        f"\n### store `{store}`: judged on the {judged}; {repeat} interleaved pairs of runs "
        f"({repeat * SHORT_FACTOR} for runs under {SHORT * 1000:.0f} ms)\n"
    )
    print(f"- before: {_load()}\n")
    print(
        "| workload | kind | apsw ms | dbapi2 ms | wall ratio "
        "| apsw CPU ms | dbapi2 CPU ms | CPU ratio | pair ratios min/median/max | target (median) |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---|---|")
    misses = mismatches = 0
    for name in names:
        workload = WORKLOADS[name]
        wall: dict[str, list[float]] = {mode: [] for mode in OPENERS}
        cpu: dict[str, list[float]] = {mode: [] for mode in OPENERS}
        results: dict[str, Any] = {}
        pairs, i = repeat, 0
        while i < pairs:
            # the order alternates, so that neither mode always runs first (warm caches,
            # a load that grows or falls during the pair)
            for mode in list(OPENERS)[:: 1 if i % 2 == 0 else -1]:
                where = tmp / f"{store}-{name}-{mode}-{i}"
                where.mkdir()
                seconds, spent, rows = measure(workload, mode, store, where, scale)
                wall[mode].append(seconds)
                cpu[mode].append(spent)
                results[mode] = [tuple(r) for r in rows] if rows else rows
            if i == 0 and max(wall["apsw"][0], cpu["apsw"][0]) < SHORT:
                pairs = repeat * SHORT_FACTOR  # a short run: one preemption is a big share
            i += 1
        if results["apsw"] != results["dbapi2"]:
            mismatches += 1
            print(f"<!-- {store} {name}: results differ -->", file=sys.stderr)
        best = {mode: min(wall[mode]) for mode in OPENERS}
        best_cpu = {mode: min(cpu[mode]) for mode in OPENERS}
        ratio = best["dbapi2"] / best["apsw"]
        cpu_ratio = best_cpu["dbapi2"] / best_cpu["apsw"]
        samples = cpu if clock == "cpu" else wall
        low, mid, high = paired(samples["apsw"], samples["dbapi2"])
        kind, limit = _kind(name)
        verdict = "-"
        if limit is not None:
            judged_ratio = mid
            verdict = "ok" if judged_ratio <= limit else f"MISS (> {limit})"
        misses += verdict.startswith("MISS")
        print(
            f"| {name} | {kind} | {best['apsw'] * 1000:.1f} | {best['dbapi2'] * 1000:.1f} "
            f"| {ratio:.2f} | {best_cpu['apsw'] * 1000:.1f} | {best_cpu['dbapi2'] * 1000:.1f} "
            f"| {cpu_ratio:.2f} | {low:.2f} / {mid:.2f} / {high:.2f} | {verdict} |",
            flush=True,
        )
    print(f"\n- after: {_load()}; {misses} target(s) missed")
    return misses, mismatches


PER_STATEMENT_CALLS = 50_000
_POINT_READ = "SELECT id, name, amount FROM items WHERE id = ?"
_INSERT = "INSERT INTO items(name, category, amount, payload) VALUES (?, ?, ?, ?)"


def per_statement(calls: int = PER_STATEMENT_CALLS, repeat: int = 7) -> None:
    """µs per statement, apsw and dbapi2 on one memory store: a point read
    (``list(conn.execute(...))``) and an INSERT inside a transaction; best of ``repeat``
    runs of ``calls`` statements, CPU time of this thread."""
    import random

    store = MemoryStore()
    conns = {"apsw": connect("apsw", store), "dbapi2": dbapi2.connect("dbapi2", store=store)}
    for conn in conns.values():
        conn.execute(
            "CREATE TABLE items(id INTEGER PRIMARY KEY, name TEXT, category INTEGER, "
            "amount REAL, payload BLOB)"
        )
        conn.execute("BEGIN")
        for i in range(1, 1001):
            conn.execute(
                "INSERT INTO items VALUES (?, ?, ?, ?, ?)",
                (i, f"n{i}", i % 7, i * 1.5, b"x" * 100),
            )
        conn.execute("COMMIT")
    r = random.Random(1)
    keys = [(r.randint(1, 1050),) for _ in range(calls)]
    row = ("name", 1, 2.5, b"payload")

    def reads(conn: Any) -> None:
        execute = conn.execute
        for key in keys:
            list(execute(_POINT_READ, key))

    def inserts(conn: Any) -> None:
        execute = conn.execute
        execute("BEGIN")
        for _ in range(calls):
            execute(_INSERT, row)
        execute("ROLLBACK")

    print(f"\n### per statement (memory store, {repeat} interleaved pairs x {calls:,}, CPU time)\n")
    print(f"- before: {_load()}\n")
    print(
        "| statement | apsw µs | dbapi2 µs | dbapi2 - apsw µs | ratio "
        "| pair ratios min/median/max |"
    )
    print("|---|---:|---:|---:|---:|---|")
    for label, run in (("point read, rows listed", reads), ("INSERT in a transaction", inserts)):
        spent: dict[str, list[float]] = {mode: [] for mode in conns}
        for i in range(repeat):
            for mode in list(conns)[:: 1 if i % 2 == 0 else -1]:
                gc.collect()
                cpu = time.thread_time()
                run(conns[mode])
                spent[mode].append((time.thread_time() - cpu) / calls * 1e6)
        best = {mode: min(values) for mode, values in spent.items()}
        low, mid, high = paired(spent["apsw"], spent["dbapi2"])
        print(
            f"| {label} | {best['apsw']:.2f} | {best['dbapi2']:.2f} "
            f"| {best['dbapi2'] - best['apsw']:.2f} | {best['dbapi2'] / best['apsw']:.2f} "
            f"| {low:.2f} / {mid:.2f} / {high:.2f} |",
            flush=True,
        )
    for conn in conns.values():
        conn.close()
    store.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scale", choices=["small", "full"], default="small")
    parser.add_argument("--only", action="append", metavar="NAME", help="workload (repeatable)")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--store", choices=["both", *VIEWS], default="both")
    parser.add_argument(
        "--per-statement", action="store_true", help="first µs per statement (point read, insert)"
    )
    args = parser.parse_args(argv)
    scale = Scale.FULL if args.scale == "full" else Scale.SMALL
    names = args.only or list(WORKLOADS)
    unknown = [n for n in names if n not in WORKLOADS]
    if unknown:
        print(f"unknown workload(s) {unknown}; valid: {', '.join(WORKLOADS)}", file=sys.stderr)
        return 2
    stores = list(VIEWS) if args.store == "both" else [args.store]
    print(environment(scale, []))
    from sqlkv.dbapi2 import cursor

    built = getattr(cursor, "_speedups", None) is not None  # (older trees have no C code)
    print(
        "- sqlkv.dbapi2 hot paths: "
        + ("C (`_speedups`)" if built else "pure Python (`_speedups` not built or disabled)")
    )
    if args.per_statement:
        per_statement()
    mismatches = 0
    with tempfile.TemporaryDirectory(prefix="sqlkv-bench-dbapi-") as tmp:
        for store in stores:
            mismatches += run_view(store, names, scale, args.repeat, Path(tmp))[1]
    if mismatches:
        print(f"{mismatches} result mismatches", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
