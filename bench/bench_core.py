"""Every goal of the core-path issue, measured in one run against its anchor.

Usage:
    python bench/bench_core.py [--quick] [--pg-url URL] [--only GROUP ...]

Anchors, measured in the same run (medians of interleaved repeats):
- plain SQLite WAL + synchronous=NORMAL: the same durability class as the embedded store
  (survives a killed process, not a power loss); DELETE + FULL is shown beside it;
- psycopg straight to the same PostgreSQL server, for the PostgreSQL goal
  (``--pg-url`` or ``$SQLKV_TEST_PG_URL``; without one those rows are left out);
- ``memory://?latency_ms=N`` (``MemoryStore(latency_s=...)``): N ms injected into every
  store operation, for the round-trip goals and the plot.

Groups (``--only``): small (autocommit inserts, 10k-row txn, 10% updates), scan (warm
scans, cold open, live deltas, learned preload), rtt (20 ms goals and the plot), pg,
scale (processes, server, open latency), compaction (250 commits/s on PostgreSQL).

Writes ``bench/results/core.md`` (environment + table) and ``bench/results/core.png``
(latency per operation against store round-trip time: sqlkv, plain SQLite, PostgreSQL).
``--quick`` scales sizes and durations down (about 1-2 minutes); its rows say so.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing as mp
import os
import random
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import apsw
import core_support as cs
from core_support import Row, median_ms, plain, timed

import sqlkv
from sqlkv.engine import Engine, EngineConfig
from sqlkv.errors import CompactionBehind
from sqlkv.store import MemoryStore, Store, open_store

PAYLOAD = "x" * 100
COLD_REPEATS = 25  # cold opens per median: each takes a few ms


def insert_rows(conn: apsw.Connection, n: int) -> None:
    for _ in range(n):
        conn.execute("INSERT INTO t(v) VALUES (?)", (PAYLOAD,))


def one_txn(conn: apsw.Connection, n: int) -> None:
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO t(v) VALUES (?)", ((PAYLOAD,) for _ in range(n)))
    conn.execute("COMMIT")


def fill(conn: apsw.Connection, mb: float, row_bytes: int = 1000) -> int:
    """Rows of ``row_bytes`` random bytes up to about ``mb`` MB, 20 MB per transaction."""
    conn.execute("CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, v)")
    rows = int(mb * 1e6 / (row_bytes + 40))
    done = 0
    while done < rows:
        n = min(rows - done, int(20e6 / row_bytes))
        conn.execute(
            "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ?) "
            "INSERT INTO t(v) SELECT randomblob(?) FROM c",
            (n, row_bytes),
        )
        done += n
    return rows


def scan(conn: apsw.Connection) -> None:
    conn.execute("SELECT sum(length(v)) FROM t").fetchall()


class Bench:
    def __init__(self, args: argparse.Namespace, where: Path) -> None:
        self.args, self.where, self.quick = args, where, args.quick
        self.rows: list[Row] = []
        self.curves: dict[str, dict[str, list[tuple[float, float]]]] = {}
        self.embedded = open_store(str(where / "embedded"))
        self.repeats = 3 if self.quick else 5

    def row(self, row: Row) -> None:
        self.rows.append(row)
        ratio = f" ratio {row.ratio:.2f}x" if row.ratio is not None else ""
        print(
            f"  {row.goal}: {cs.fmt(row.measured, row.unit)}{ratio} target {row.target} "
            f"{'met' if row.met else 'NOT met'}",
            flush=True,
        )

    def sqlkv(self, name: str, store: Store | None = None, **kw: object) -> apsw.Connection:
        return sqlkv.connect(name, store if store is not None else self.embedded, **kw)

    def fresh(self, kind: str) -> apsw.Connection:
        tag = f"{kind}_{uuid.uuid4().hex[:8]}"
        if kind == "sqlkv":
            conn = self.sqlkv(tag)
        else:
            conn = plain(self.where / f"{tag}.db", wal=kind == "wal")
        conn.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v)")
        return conn

    # ------------------------------------------------------------------ small commits

    def small(self) -> None:
        print("small commits (embedded store vs plain SQLite)", flush=True)
        kinds = ["wal", "delete", "sqlkv"]
        res: dict[str, dict[str, list[float]]] = {k: {} for k in kinds}
        updates_n = 20_000 if self.quick else 100_000
        for _ in range(self.repeats):
            for kind in kinds:
                r = res[kind]
                conn = self.fresh(kind)
                r.setdefault("ins", []).append(timed(lambda c=conn: insert_rows(c, 1000)))
                conn.close()
                conn = self.fresh(kind)
                r.setdefault("txn", []).append(timed(lambda c=conn: one_txn(c, 10_000)))
                one_txn(conn, updates_n - 10_000)
                sc = "UPDATE t SET v = v || '' WHERE id % 10 = 0"
                r.setdefault("scat", []).append(timed(lambda c=conn, s=sc: c.execute(s)))
                co = f"UPDATE t SET v = v || '' WHERE id <= {updates_n // 10}"
                r.setdefault("cont", []).append(timed(lambda c=conn, s=co: c.execute(s)))
                conn.close()
        scale = "" if updates_n == 100_000 else f" ({updates_n // 1000}k rows, --quick)"
        for key, goal, limit in [
            ("ins", "1,000 autocommit inserts", 3.0),
            ("txn", "one 10k-row transaction", 1.3),
            ("scat", f"scattered 10% UPDATE of 100k rows{scale}", 1.5),
            ("cont", f"contiguous 10% UPDATE of 100k rows{scale}", 3.0),
        ]:
            wal = median_ms(res["wal"][key])
            delete = median_ms(res["delete"][key])
            self.row(
                Row(
                    goal,
                    median_ms(res["sqlkv"][key]),
                    "ms",
                    wal,
                    "WAL/NORMAL",
                    f"<= {limit}x",
                    limit,
                    note=f"(DELETE/FULL {delete:.1f} ms)",
                )
            )

    # ------------------------------------------------------------------ scans and opens

    def scans(self) -> None:
        print("warm scans, cold opens, learned preload", flush=True)
        sizes = [2, 10, 40] if self.quick else [5, 50, 200]
        big = sizes[-1]
        for mb in sizes:
            path = self.where / f"scan{mb}.db"
            p = plain(path, wal=True)
            fill(p, mb)
            s = self.sqlkv(f"scan{mb}")
            fill(s, mb)
            scan(p), scan(s)  # warm both
            pt, st = [], []
            for _ in range(max(self.repeats, 7)):  # cheap, and sensitive to stalls
                pt.append(timed(lambda c=p: scan(c)))
                st.append(timed(lambda c=s: scan(c)))
            p.close(), s.close()
            self.row(
                Row(
                    f"warm full scan {mb} MB",
                    median_ms(st),
                    "ms",
                    median_ms(pt),
                    "WAL/NORMAL",
                    "<= 1.2x",
                    1.2,
                )
            )
        self.cold_open(big)
        self.preload(sizes[1])

    def _cold(self, name: str, rows: int, **kw: object) -> tuple[float, float]:
        """Median wall and CPU ms of a cold connect + point query + close (25 runs: one
        run is a few ms, and five of them moved the live-delta ratio by 0.3)."""
        rng = random.Random(7)
        samples, cpu = [], []
        for _ in range(COLD_REPEATS):
            key = rng.randint(1, rows)

            def go(key: int = key) -> None:
                c = self.sqlkv(name, **kw)
                c.execute("SELECT length(v) FROM t WHERE id = ?", (key,)).fetchall()
                c.close()

            start = time.thread_time()
            samples.append(timed(go))
            cpu.append(time.thread_time() - start)
        return median_ms(samples), median_ms(cpu)

    def cold_open(self, mb: int) -> None:
        name = f"scan{mb}"
        path = self.where / f"{name}.db"
        p = plain(path, wal=True)
        rows = p.execute("SELECT max(id) FROM t").fetchall()[0][0]
        p.close()
        rng = random.Random(7)
        plain_s, plain_cpu = [], []
        for _ in range(COLD_REPEATS):
            key = rng.randint(1, rows)

            def go(key: int = key) -> None:
                c = plain(path, wal=True)
                c.execute("SELECT length(v) FROM t WHERE id = ?", (key,)).fetchall()
                c.close()

            start = time.thread_time()
            plain_s.append(timed(go))
            plain_cpu.append(time.thread_time() - start)
        engine = Engine(self.embedded)
        engine.compact_until_done(name)
        self._cold(name, rows, compaction=False)  # the hint settles on point queries
        compacted, compacted_cpu = self._cold(name, rows, compaction=False)
        self.row(
            Row(
                f"cold open + point query, {mb} MB",
                compacted,
                "ms",
                median_ms(plain_s),
                "WAL/NORMAL open",
                "<= 3x",
                3.0,
                note=f"(CPU {compacted_cpu:.2f} vs {median_ms(plain_cpu):.2f} ms)",
            )
        )
        c = self.sqlkv(name, compaction=False)
        rng = random.Random(3)
        for _ in range(30):
            with c:
                for _ in range(5):
                    c.execute(
                        "UPDATE t SET v = randomblob(1000) WHERE id = ?", (rng.randint(1, rows),)
                    )
        c.close()
        deltas = engine.head(name).delta_count
        self._cold(name, rows, compaction=False)  # the hint the updates left settles
        live, live_cpu = self._cold(name, rows, compaction=False)
        self.row(
            Row(
                f"cold open + point query, {deltas} live deltas",
                live,
                "ms",
                compacted,
                "after compaction",
                "<= 1.2x",
                1.2,
                note=f"(CPU {live_cpu:.2f} vs {compacted_cpu:.2f} ms)",
            )
        )
        engine.compact_until_done(name)

    def preload(self, mb: int) -> None:
        name = f"scan{mb}"
        c = self.sqlkv(name, compaction=False)
        rows = c.execute("SELECT max(id) FROM t").fetchall()[0][0]
        rng = random.Random(11)
        keys = [rng.randint(1, rows) for _ in range(10)]
        for k in keys:
            c.execute("SELECT length(v) FROM t WHERE id = ?", (k,)).fetchall()
        c.close()
        c = self.sqlkv(name, compaction=False)
        for k in keys:
            c.execute("SELECT length(v) FROM t WHERE id = ?", (k,)).fetchall()
        calls = c.sqlkv_stats.round_trips  # type: ignore[attr-defined]
        c.close()
        self.row(
            Row(
                f"learned preload: reopen + 10 point queries, {mb} MB",
                calls,
                "engine calls",
                None,
                "",
                "<= 3 calls",
                3,
                kind="abs<=",
            )
        )

    # ------------------------------------------------------------------ round trips

    def rtt(self) -> None:
        print("injected store latency (memory store)", flush=True)
        rtts = [0, 5, 20] if self.quick else [0, 1, 2, 5, 10, 20]
        commit: dict[str, list[tuple[float, float]]] = {}
        read: dict[str, list[tuple[float, float]]] = {}
        # plain SQLite: no store, the same at every RTT
        p = plain(self.where / "rtt.db", wal=True)
        p.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v)")
        pc = median_ms([timed(lambda: insert_rows(p, 1)) for _ in range(20)])
        pr = median_ms(
            [timed(lambda: p.execute("SELECT v FROM t WHERE id=1").fetchall()) for _ in range(20)]
        )
        p.close()
        commit["plain SQLite WAL/NORMAL"] = [(r, pc) for r in rtts]
        read["plain SQLite WAL/NORMAL"] = [(r, pr) for r in rtts]
        for r in rtts:
            store = MemoryStore(latency_s=r / 1000)
            c = self.sqlkv("rtt", store)
            c.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v)")
            insert_rows(c, 1)
            cm = median_ms([timed(lambda c=c: insert_rows(c, 1)) for _ in range(self.repeats)])
            c.close()
            engine = Engine(store)
            gen = engine.open("rtt").head.generation
            gp = median_ms(
                [
                    timed(lambda e=engine, g=gen: e.get_pages("rtt", g, [2]))
                    for _ in range(self.repeats)
                ]
            )
            cold, ops = [], []
            for _ in range(self.repeats):

                def go(s: Store = store) -> None:
                    x = self.sqlkv("rtt", s, compaction=False)
                    x.execute("SELECT v FROM t WHERE id = 1").fetchall()
                    x.close()

                before = store.stats.snapshot()
                cold.append(timed(go))
                ops.append((store.stats - before).round_trips)
            commit.setdefault("sqlkv (memory store + RTT)", []).append((r, cm))
            read.setdefault("sqlkv get_pages (cache miss)", []).append((r, gp))
            read.setdefault("sqlkv cold open + point query", []).append((r, median_ms(cold)))
            if r == 20:
                for goal, value, limit in [
                    ("1-row commit at 20 ms store RTT", cm, 22),
                    ("get_pages at 20 ms store RTT", gp, 22),
                    ("cold open + first point query at 20 ms RTT", median_ms(cold), 45),
                ]:
                    self.row(
                        Row(goal, value, "ms", None, "", f"<= {limit} ms", limit, kind="abs<=")
                    )
                self.row(
                    Row(
                        "cold open + first point query + close: store operations",
                        max(ops),
                        "store ops",
                        None,
                        "",
                        "<= 2",
                        2,
                        kind="abs<=",
                    )
                )
        self.curves["1-row autocommit insert"] = commit
        self.curves["point read that misses every cache"] = read

    # ------------------------------------------------------------------ PostgreSQL

    def pg(self) -> None:
        url = self.args.pg_url
        if not url:
            print("no --pg-url / SQLKV_TEST_PG_URL: PostgreSQL rows left out", flush=True)
            return
        import psycopg

        from sqlkv.store.postgres import PostgresStore

        print("PostgreSQL store vs psycopg direct", flush=True)
        n = 200 if self.quick else 1000
        table = f"bench_core_{uuid.uuid4().hex[:8]}"
        store = PostgresStore(url, table=f"kv_{table}")
        direct, through = [], []
        try:
            with psycopg.connect(url, autocommit=True) as pgc:
                pgc.execute(f"CREATE TABLE {table}(id serial PRIMARY KEY, v text)")
                one = median_ms(
                    [
                        timed(
                            lambda: pgc.execute(f"INSERT INTO {table}(v) VALUES (%s)", (PAYLOAD,))
                        )
                        for _ in range(20)
                    ]
                )
                point = median_ms(
                    [
                        timed(
                            lambda: pgc.execute(
                                f"SELECT v FROM {table} WHERE id = %s", (1,)
                            ).fetchall()
                        )
                        for _ in range(20)
                    ]
                )
                for i in range(self.repeats):
                    direct.append(
                        timed(
                            lambda: [
                                pgc.execute(f"INSERT INTO {table}(v) VALUES (%s)", (PAYLOAD,))
                                for _ in range(n)
                            ]
                        )
                    )
                    c = self.sqlkv(f"pg{i}", store)
                    c.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v)")
                    through.append(timed(lambda c=c: insert_rows(c, n)))
                    c.close()
                pgc.execute(f"DROP TABLE {table}")
            # Store round trips per autocommit insert, compaction off (a count, not a time).
            c = self.sqlkv("pg_count", store, compaction=False)
            c.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v)")
            insert_rows(c, 2)  # the first commit after the open reads META
            before = store.stats.snapshot()
            insert_rows(c, 50)
            trips = (store.stats.snapshot() - before).round_trips / 50
            c.close()
            self.row(
                Row(
                    "store round trips per autocommit insert on PostgreSQL",
                    trips,
                    "trips",
                    None,
                    "",
                    "<= 1",
                    1,
                    kind="abs<=",
                )
            )
            self.row(
                Row(
                    f"{n:,} autocommit inserts on PostgreSQL",
                    median_ms(through),
                    "ms",
                    median_ms(direct),
                    "psycopg direct",
                    "<= 2x",
                    2.0,
                )
            )
            for panel, base in [
                ("1-row autocommit insert", one),
                ("point read that misses every cache", point),
            ]:
                curve = self.curves.get(panel)
                if curve is not None:  # PostgreSQL's own: one round trip per statement
                    rtts = [r for r, _ in next(iter(curve.values()))]
                    curve["PostgreSQL direct (model: loopback + 1 RTT)"] = [
                        (r, base + r) for r in rtts
                    ]
        finally:
            store.drop()
            store.close()

    # ------------------------------------------------------------------ scale

    def scale(self) -> None:
        print("scaling: processes, one server, many open databases", flush=True)
        secs = 3.0 if self.quick else 10.0
        url = str(self.where / "scale")
        one, one_cpu = run_procs(url, 1, secs)
        two, two_cpu = run_procs(url, 2, secs)
        self.row(
            Row(
                "commits/s over distinct databases, 2 processes vs 1",
                two,
                "commits/s",
                one,
                "1 process",
                ">= 1.6x",
                1.6,
                kind="ratio>=",
                note=f"(CPU per commit: {one_cpu:.0f} us in 1 process, {two_cpu:.0f} us in 2)",
            )
        )
        if self.args.pg_url:
            self.scale_pg(secs)
        served, client_us, server_us = run_server(self.where, secs)
        cores = len(os.sched_getaffinity(0))
        idle = cores * 1e6 / (client_us + server_us)
        self.row(
            Row(
                "commits/s through one `sqlkv serve`, 8 client threads",
                served,
                "commits/s",
                None,
                "",
                ">= 4,000/s",
                4000,
                kind="abs>=",
                note=(
                    f"(CPU per commit: client {client_us:.0f} us, server {server_us:.0f} us; "
                    f"{cores} idle cores would reach ~{idle:,.0f}/s)"
                ),
            )
        )
        lo, hi = (200, 2000) if self.quick else (1000, 10_000)
        (a, b), (apsw_a, apsw_b) = open_latency(lo, hi)
        self.row(
            Row(
                f"open latency (CPU) at {hi:,} vs {lo:,} open databases",
                b,
                "ms",
                a,
                f"at {lo:,}",
                "<= 1.2x",
                1.2,
                note=f"of which apsw's own open+close: {apsw_b:.3f} vs {apsw_a:.3f} ms",
            )
        )

    def scale_pg(self, secs: float) -> None:
        """The 2-processes-vs-1 goal on the PostgreSQL store (a table of its own)."""
        from sqlkv.store.postgres import PostgresStore

        table = f"kv_bench_scale_{uuid.uuid4().hex[:8]}"
        try:
            one, one_cpu = run_procs(self.args.pg_url, 1, secs, table)
            two, two_cpu = run_procs(self.args.pg_url, 2, secs, table)
        finally:
            store = PostgresStore(self.args.pg_url, table=table)
            store.drop()
            store.close()
        self.row(
            Row(
                "commits/s over distinct databases, 2 processes vs 1, PostgreSQL",
                two,
                "commits/s",
                one,
                "1 process",
                ">= 1.6x",
                1.6,
                kind="ratio>=",
                note=f"(CPU per commit: {one_cpu:.0f} us in 1 process, {two_cpu:.0f} us in 2)",
            )
        )

    # ------------------------------------------------------------------ compaction

    def compaction(self) -> None:
        url = self.args.pg_url
        if not url:
            return
        from sqlkv.store.postgres import PostgresStore

        secs = 10.0 if self.quick else 120.0
        print(f"compaction at 250 commits/s on PostgreSQL for {secs:.0f} s", flush=True)
        store = PostgresStore(url, table=f"kv_bench_core_{uuid.uuid4().hex[:8]}")
        try:
            c = self.sqlkv("steady", store)
            c.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v)")
            peak, behind, done = 0, 0, 0
            start = time.perf_counter()
            while (now := time.perf_counter()) - start < secs:
                wait = start + done / 250 - now
                if wait > 0:
                    time.sleep(wait)
                try:
                    c.execute("INSERT INTO t(v) VALUES (?)", (PAYLOAD,))
                except apsw.Error as exc:
                    if isinstance(exc.__cause__, CompactionBehind):
                        behind += 1
                    else:
                        raise
                done += 1
                known = c.sqlkv_known_head  # type: ignore[attr-defined]
                if known is not None:  # the head this commit landed: no round trip
                    peak = max(peak, known.delta_count)
            rate = done / (time.perf_counter() - start)
            c.close()
            note = f"({rate:.0f} commits/s for {secs:.0f} s, CompactionBehind {behind})"
            self.row(
                Row(
                    "live deltas under 250 commits/s on PostgreSQL",
                    peak,
                    "deltas",
                    None,
                    "",
                    "<= 64",
                    64,
                    kind="abs<=",
                    note=note,
                )
            )
        finally:
            store.drop()
            store.close()


# ---------------------------------------------------------------------- scale workers


def _open_scale_store(url: str, table: str | None) -> Store:
    if table is None:
        return open_store(url)
    from sqlkv.store.postgres import PostgresStore

    return PostgresStore(url, table=table)


def _proc_worker(
    url: str, table: str | None, tag: str, secs: float, start_at: float, out: mp.Queue
) -> None:
    store = _open_scale_store(url, table)
    engine = Engine(store, EngineConfig(), compaction=True)  # as sqlkv.connect builds it
    conns = []
    for i in range(4):
        c = sqlkv.connect(f"{tag}_{i}", engine=engine)
        c.execute("CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, v)")
        conns.append(c)
    time.sleep(max(0.0, start_at - time.time()))
    n, end = 0, time.time() + secs
    cpu = time.process_time()
    while time.time() < end:
        conns[n % 4].execute("INSERT INTO t(v) VALUES (?)", (PAYLOAD,))
        n += 1
    out.put((n, time.process_time() - cpu))
    for c in conns:
        c.close()
    engine.close()
    store.close()


def run_procs(url: str, procs: int, secs: float, table: str | None = None) -> tuple[float, float]:
    """(commits/s of ``procs`` processes together, CPU microseconds per commit); ``table``:
    the PostgreSQL table when ``url`` is a PostgreSQL server."""
    ctx = mp.get_context("spawn")
    q: mp.Queue = ctx.Queue()
    start_at = time.time() + 3.0
    tag = uuid.uuid4().hex[:6]
    ps = [
        ctx.Process(
            target=_proc_worker, args=(url, table, f"p{tag}_{procs}_{i}", secs, start_at, q)
        )
        for i in range(procs)
    ]
    for p in ps:
        p.start()
    done = [q.get(timeout=120) for _ in ps]
    for p in ps:
        p.join()
    n, cpu = sum(d[0] for d in done), sum(d[1] for d in done)
    return n / secs, cpu * 1e6 / max(1, n)


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of ``pid`` and its children now running (``sqlkv serve``'s
    workers), from /proc."""
    pids = [pid]
    with contextlib.suppress(OSError):
        pids += [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    total = 0.0
    for p in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def run_server(where: Path, secs: float) -> tuple[float, float, float]:
    """(commits/s of 8 client threads through one ``sqlkv serve`` with its default
    workers, client CPU us per commit, server CPU us per commit)."""
    from bench_server import start_server

    proc, url = start_server(str(where / "served"), where)
    counts = [0] * 8
    stop = threading.Event()

    def client(i: int) -> None:
        c = sqlkv.connect(f"srv{i}", engine=url)
        c.execute("CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, v)")
        barrier.wait()
        while not stop.is_set():
            c.execute("INSERT INTO t(v) VALUES (?)", (PAYLOAD,))
            counts[i] += 1
        c.close()

    barrier = threading.Barrier(9)
    threads = [threading.Thread(target=client, args=(i,)) for i in range(8)]
    try:
        for t in threads:
            t.start()
        barrier.wait()
        first, client_cpu, server_cpu = sum(counts), time.process_time(), _cpu_seconds(proc.pid)
        time.sleep(secs)
        n = sum(counts) - first
        client_cpu = time.process_time() - client_cpu
        server_cpu = _cpu_seconds(proc.pid) - server_cpu
        stop.set()
        for t in threads:
            t.join()
    finally:
        proc.terminate()
        proc.wait(30)
    n = max(1, n)
    return n / secs, client_cpu * 1e6 / n, server_cpu * 1e6 / n


def open_latency(lo: int, hi: int) -> tuple[tuple[float, float], tuple[float, float]]:
    """Median CPU ms (``thread_time``: the machine is shared) to open and close a database
    while ``lo`` / ``hi`` others are open; and the same for a bare ``apsw.Connection``
    (apsw's own bookkeeping of open connections grows with their number)."""
    engine = Engine(MemoryStore())
    held: list[apsw.Connection] = []

    def cpu(fn: Callable[[int], object]) -> float:
        samples = []
        for i in range(50):
            start = time.thread_time()
            fn(i)
            samples.append(time.thread_time() - start)
        return statistics.median(samples) * 1000

    def probe() -> tuple[float, float]:
        ours = cpu(lambda i: sqlkv.connect(f"probe{i}", engine=engine).close())
        return ours, cpu(lambda i: apsw.Connection(":memory:").close())

    try:
        while len(held) < lo:
            held.append(sqlkv.connect(f"held{len(held)}", engine=engine))
        a, apsw_a = probe()
        while len(held) < hi:
            held.append(sqlkv.connect(f"held{len(held)}", engine=engine))
        b, apsw_b = probe()
    finally:
        for c in held:
            c.close()
    return (a, b), (apsw_a, apsw_b)


# ---------------------------------------------------------------------- main

GROUPS = ["small", "scan", "rtt", "pg", "scale", "compaction"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="smaller sizes, shorter runs")
    ap.add_argument("--pg-url", default=os.environ.get("SQLKV_TEST_PG_URL"))
    ap.add_argument("--only", nargs="*", choices=GROUPS, default=GROUPS)
    ap.add_argument("--out", default=str(cs.RESULTS), help="directory for core.md/core.png")
    args = ap.parse_args()
    env = cs.environment(f"quick={args.quick}")
    print(env, flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bench_core_") as tmp:
        b = Bench(args, Path(tmp))
        try:
            for group in GROUPS:
                if group in args.only:
                    {
                        "small": b.small,
                        "scan": b.scans,
                        "rtt": b.rtt,
                        "pg": b.pg,
                        "scale": b.scale,
                        "compaction": b.compaction,
                    }[group]()
        finally:
            b.embedded.close()
    md = f"```\n{env}\n```\n\n{cs.table(b.rows)}\n"
    (out / "core.md").write_text(md)
    plotted = b.curves and cs.plot(b.curves, out / "core.png")
    print("\n" + cs.table(b.rows))
    print(f"\nwrote {out / 'core.md'}" + (f" and {out / 'core.png'}" if plotted else ""))


if __name__ == "__main__":
    main()
