"""Store benchmark: the KV operations the engine makes, per store driver, one at a time.

Usage:
    python bench/bench_store.py [--drivers memory,embedded,lmdb,postgres,etcd] [--pg URL]
                                [--etcd URL] [--etcd-dir DIR] [--scale 1.0] [--dir DIR]

- Drivers are opened only through ``sqlkv.store.open_store(url)``: ``memory://``,
  ``file://DIR/embedded``, ``lmdb://DIR/lmdb`` and the PostgreSQL URL given by ``--pg`` or
  ``SQLKV_TEST_PG_URL`` (``scripts/pg-test-server`` starts a throwaway server). Without a
  URL, postgres is skipped with a message. Every key lives under a prefix unique to the
  run, cleared at the end; ``DIR`` (default: a temporary directory) is removed at the end
  unless given. etcd: the cluster given by ``--etcd`` or ``SQLKV_TEST_ETCD_URL``
  (``scripts/etcd-test-cluster`` starts a throwaway 3-member one); with ``--etcd-dir`` (or
  ``SQLKV_TEST_ETCD_DIR``, the script's directory) the ``read+set`` row is measured again
  with one follower stopped (SIGSTOP) and then with the leader stopped (an election).
- Workloads, each operation its own transaction through ``store.transact``:
  ``get 100 B`` and ``get 100 kB`` (random keys of 10,000 small / 60 large values),
  ``set 100 B`` (a blind write, one commit per set), ``read+set 100 B`` (read a key
  serializably, write it back: the engine's META update), ``range 1,000 keys``
  (1,000 x 100 B in one range read), ``commit 1 MB`` (10 x 100 kB, rotating over 30 keys,
  so space is reused) and ``commit 8 MB`` (80 x 100 kB), ``4 threads read+set`` (four
  threads updating their own keys at once: latency per operation, ops/s of all four).
  Values are random bytes (incompressible).
- ``--scale`` multiplies the number of operations (not their sizes); at 1.0 a driver takes
  about 10-20 s on a 2-CPU machine.
- After the workloads: the bytes the store holds on disk (embedded: the SQLite file and its
  WAL; LMDB: data.mdb), next to the live bytes the run left in the store.
- Space under churn (file stores only): 1,500 commits each rewrite 10 of 300 values of
  20-100 kB (about 18 MB live, 900 MB written); a snapshot stays open during the middle
  third, as a slow reader would. Reported: disk before the reader, at its peak, and at the
  end (store still open), with the commit latency of the whole run.

Columns: operations, ops/s (one at a time), median and p99 latency in ms, MB/s of value
bytes moved.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from sqlkv.errors import SqlkvError
from sqlkv.store import Store, Transaction, open_store, prefix_end

PG_URL_ENV = "SQLKV_TEST_PG_URL"
ETCD_URL_ENV = "SQLKV_TEST_ETCD_URL"
ETCD_DIR_ENV = "SQLKV_TEST_ETCD_DIR"
ALL_DRIVERS = ["memory", "embedded", "lmdb", "postgres", "etcd"]
SMALL, LARGE = 100, 100_000


@dataclass
class Row:
    what: str
    samples: list[float]  # seconds per operation
    bytes_per_op: int
    threads: int = 1

    def cells(self) -> list[str]:
        s = sorted(self.samples)
        total = sum(s) / self.threads  # wall time when threads ran side by side
        p99 = s[min(len(s) - 1, int(len(s) * 0.99))]
        return [
            self.what,
            str(len(s)),
            f"{len(s) / total:,.0f}",
            f"{statistics.median(s) * 1000:.3f}",
            f"{p99 * 1000:.3f}",
            f"{len(s) * self.bytes_per_op / total / 1e6:.1f}",
        ]


HEADER = ["operation", "ops", "ops/s", "median ms", "p99 ms", "MB/s"]


class Bench:
    def __init__(self, store: Store, scale: float) -> None:
        self.store = store
        self.scale = scale
        self.rng = random.Random(1)
        self.prefix = b"bench/" + uuid.uuid4().hex.encode() + b"/"

    def key(self, *parts: object) -> bytes:
        return self.prefix + b"/".join(str(p).encode() for p in parts)

    def n(self, base: int) -> int:
        return max(3, int(base * self.scale))

    def timed(self, n: int, op: Callable[[int], object]) -> list[float]:
        samples = []
        for i in range(n):
            t = time.perf_counter()
            op(i)
            samples.append(time.perf_counter() - t)
        return samples

    def load(self, items: dict[bytes, bytes], batch_bytes: int = 4_000_000) -> None:
        batch: dict[bytes, bytes] = {}
        for k, v in items.items():
            batch[k] = v
            if sum(map(len, batch.values())) >= batch_bytes:
                self.put(batch)
                batch = {}
        if batch:
            self.put(batch)

    def put(self, items: dict[bytes, bytes]) -> None:
        def fn(tr: Transaction) -> None:
            for k, v in items.items():
                tr.set(k, v)

        self.store.transact(fn)

    def run(self) -> list[Row]:
        st, rng = self.store, self.rng
        small = [self.key("s", f"{i:06d}") for i in range(10_000)]
        large = [self.key("l", f"{i:03d}") for i in range(60)]
        self.load({k: rng.randbytes(SMALL) for k in small})
        self.load({k: rng.randbytes(LARGE) for k in large})
        blobs = [rng.randbytes(LARGE) for _ in range(80)]
        rows = []

        picks = [rng.choice(small) for _ in range(self.n(5000))]
        rows.append(
            Row(
                "get 100 B",
                self.timed(len(picks), lambda i: st.transact(lambda tr: tr.get(picks[i]))),
                SMALL,
            )
        )
        picks = [rng.choice(large) for _ in range(self.n(1000))]
        rows.append(
            Row(
                "get 100 kB",
                self.timed(len(picks), lambda i: st.transact(lambda tr: tr.get(picks[i]))),
                LARGE,
            )
        )
        value = rng.randbytes(SMALL)
        rows.append(
            Row(
                "set 100 B",
                self.timed(
                    self.n(2000), lambda i: st.transact(lambda tr: tr.set(self.key("w", i), value))
                ),
                SMALL,
            )
        )
        rows.append(
            Row(
                "read+set 100 B",
                self.timed(self.n(2000), lambda i: self.read_set(self.key("meta"))),
                SMALL,
            )
        )
        ranges = [rng.randrange(0, 9000) for _ in range(self.n(300))]

        def range_read(i: int) -> None:
            rows_ = st.transact(lambda tr: tr.get_range(small[ranges[i]], small[ranges[i] + 1000]))
            assert len(rows_) == 1000

        rows.append(Row("range 1,000 keys", self.timed(len(ranges), range_read), 1000 * SMALL))

        def commit(count: int, slots: int) -> Callable[[int], None]:
            def op(i: int) -> None:
                def fn(tr: Transaction) -> None:
                    for j in range(count):
                        tr.set(self.key("big", count, (i % slots), j), blobs[j])

                st.transact(fn)

            return op

        rows.append(
            Row("commit 1 MB (10 x 100 kB)", self.timed(self.n(200), commit(10, 30)), 10 * LARGE)
        )
        rows.append(
            Row("commit 8 MB (80 x 100 kB)", self.timed(self.n(25), commit(80, 3)), 80 * LARGE)
        )
        rows.append(self.threaded(4, self.n(500)))
        return rows

    def read_set(self, key: bytes) -> None:
        def fn(tr: Transaction) -> None:
            old = tr.get(key) or b""
            tr.set(key, old[: SMALL - 8].ljust(SMALL - 8, b".") + os.urandom(8))

        self.store.transact(fn)

    def threaded(self, threads: int, per_thread: int) -> Row:
        samples: list[list[float]] = [[] for _ in range(threads)]
        errors: list[BaseException] = []

        def work(t: int) -> None:
            try:
                samples[t] = self.timed(per_thread, lambda i: self.read_set(self.key("thread", t)))
            except BaseException as exc:
                errors.append(exc)

        workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        if errors:
            raise errors[0]
        return Row(f"{threads} threads read+set", [x for s in samples for x in s], SMALL, threads)

    def churn(self, where: Path) -> tuple[Row, list[int]]:
        """Rewrite values under a long reader; the commit row and disk bytes at 3 points."""
        st, rng = self.store, random.Random(2)
        blob = rng.randbytes(LARGE)
        rounds = self.n(1500)
        reader: Transaction | None = None
        disk = [0, 0, 0]
        samples = []
        for r in range(rounds):
            if r == rounds // 3:
                disk[0] = disk_bytes(where)
                reader = st.begin()
                reader.get(self.key("churn", 0), snapshot=True)
            if r == 2 * rounds // 3 and reader is not None:
                reader.close()
            if r % 50 == 0:
                disk[1] = max(disk[1], disk_bytes(where))
            items = {
                self.key("churn", rng.randrange(300)): blob[: rng.randrange(20_000, LARGE)]
                for _ in range(10)
            }
            t = time.perf_counter()
            st.transact(lambda tr, items=items: [tr.set(k, v) for k, v in items.items()])
            samples.append(time.perf_counter() - t)
        disk[2] = disk_bytes(where)
        return Row("churn commit (10 x 20-100 kB)", samples, 6 * LARGE), disk

    def live_bytes(self) -> int:
        rows = self.store.transact(lambda tr: tr.get_range(self.prefix, prefix_end(self.prefix)))
        return sum(len(k) + len(v) for k, v in rows)

    def cleanup(self) -> None:
        self.store.transact(lambda tr: tr.clear_range(self.prefix, prefix_end(self.prefix)))


def disk_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def versions() -> list[str]:
    import apsw
    import lmdb

    out = [f"Python {platform.python_version()} ({platform.python_implementation()})"]
    out.append(f"SQLite {apsw.sqlite_lib_version()} (apsw {apsw.apsw_version()})")
    out.append(f"LMDB {'.'.join(map(str, lmdb.version()))} (py-lmdb {lmdb.__version__})")
    try:
        import psycopg

        out.append(f"psycopg {psycopg.__version__} (libpq {psycopg.pq.version()})")
    except ImportError:
        out.append("psycopg not installed")
    out.append(f"sqlkv {metadata.version('sqlkv')}")
    return out


def postgres_info(url: str) -> str:
    import psycopg

    with psycopg.connect(url) as conn:
        server = conn.execute("SHOW server_version").fetchone()
        fsync = conn.execute("SHOW fsync").fetchone()
        sync_commit = conn.execute("SHOW synchronous_commit").fetchone()
    host = url.rsplit("@", 1)[-1]
    return (
        f"PostgreSQL {server[0] if server else '?'} at {host} "
        f"(fsync={fsync[0] if fsync else '?'}, synchronous_commit="
        f"{sync_commit[0] if sync_commit else '?'})"
    )


DURABILITY = {
    "memory": "none (process memory)",
    "embedded": "WAL, synchronous=NORMAL: survives a killed process, not a power loss",
    "lmdb": "MDB_NOSYNC: survives a killed process, not a power loss",
    "postgres": "the server's settings (below)",
    "etcd": "Raft: a commit is fsynced on a majority of the 3 members before it is answered",
}


def etcd_member_stopped(url: str, scale: float, cluster_dir: Path) -> list[Row]:
    """``read+set 100 B`` while one follower, then the leader, is SIGSTOPped (a client
    with a 4 s timeout, so that it leaves a stopped member soon)."""
    import json
    import signal
    import urllib.request

    members = [line.split() for line in (cluster_dir / "members").read_text().splitlines()]

    def leader_name() -> str:
        for name, url, _ in members:
            with urllib.request.urlopen(
                urllib.request.Request(url + "/v3/maintenance/status", data=b"{}", method="POST"),
                timeout=2,
            ) as resp:
                answer = json.loads(resp.read())
            if str(answer.get("leader")) == str(answer["header"]["member_id"]):
                return str(name)
        raise RuntimeError("no etcd leader")

    store = open_store(f"{url}{'&' if '?' in url else '?'}timeout=4")
    bench = Bench(store, scale)
    rows = []
    for role in ("follower", "leader"):
        leader = leader_name()
        victim = leader if role == "leader" else next(m[0] for m in members if m[0] != leader)
        pid = int((cluster_dir / f"{victim}.pid").read_text())
        os.kill(pid, signal.SIGSTOP)
        try:
            samples = bench.timed(bench.n(300), lambda i: bench.read_set(bench.key("stopped")))
        finally:
            os.kill(pid, signal.SIGCONT)
        rows.append(Row(f"read+set 100 B, {role} stopped", samples, SMALL))
        time.sleep(3)  # the member catches up (and, for the leader, steps down)
    bench.cleanup()
    store.close()
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--drivers", default=",".join(ALL_DRIVERS))
    parser.add_argument("--pg", default=os.environ.get(PG_URL_ENV), help="PostgreSQL URL")
    parser.add_argument("--etcd", default=os.environ.get(ETCD_URL_ENV), help="etcd URL")
    parser.add_argument(
        "--etcd-dir",
        type=Path,
        default=os.environ.get(ETCD_DIR_ENV),
        help="scripts/etcd-test-cluster's directory (measures a stopped member)",
    )
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--dir", type=Path, help="where file stores go (default: a temp dir)")
    args = parser.parse_args(argv)
    drivers = [d.strip() for d in args.drivers.split(",") if d.strip()]
    unknown = set(drivers) - set(ALL_DRIVERS)
    if unknown or args.scale <= 0:
        print(
            f"error: unknown driver(s) {sorted(unknown)} or bad --scale; valid: {ALL_DRIVERS}",
            file=sys.stderr,
        )
        return 2
    if "postgres" in drivers and not args.pg:
        print(f"postgres: skipped (give --pg URL or set {PG_URL_ENV}; see scripts/pg-test-server)")
        drivers.remove("postgres")
    if "etcd" in drivers and not args.etcd:
        print(
            f"etcd: skipped (give --etcd URL or set {ETCD_URL_ENV}; see scripts/etcd-test-cluster)"
        )
        drivers.remove("etcd")

    where = args.dir or Path(tempfile.mkdtemp(prefix="sqlkv-bench-store-"))
    where.mkdir(parents=True, exist_ok=True)
    urls = {
        "memory": "memory://",
        "embedded": (where / "embedded").as_uri(),
        "lmdb": "lmdb://" + str((where / "lmdb").resolve()),
        "postgres": args.pg,
        "etcd": args.etcd,
    }

    print("# sqlkv store benchmark\n")
    for line in versions():
        print(f"- {line}")
    print(f"- {platform.platform()}, {platform.machine()}, {os.cpu_count()} CPUs")
    print(f"- file stores in {where.resolve()}")
    if "postgres" in drivers:
        print(f"- {postgres_info(args.pg)}")
    print(f"- drivers: {', '.join(drivers)}; scale {args.scale}; no injected latency")
    for d in drivers:
        print(f"- {d} durability: {DURABILITY[d]}")

    failed = False
    started = time.perf_counter()
    try:
        for kind in drivers:
            t = time.perf_counter()
            try:
                store = open_store(urls[kind])
            except SqlkvError as exc:
                print(f"\n## {kind}: cannot open: {exc}")
                failed = True
                continue
            try:
                bench = Bench(store, args.scale)
                rows = bench.run()
                if kind == "etcd" and args.etcd_dir:
                    rows += etcd_member_stopped(args.etcd, args.scale, Path(args.etcd_dir))
                live = bench.live_bytes()
                on_disk = disk_bytes(where / kind) if kind in ("embedded", "lmdb") else None
                bench.cleanup()
                churn = bench.churn(where / kind) if on_disk is not None else None
                bench.cleanup()
            finally:
                store.close()
            print(f"\n## {kind} ({time.perf_counter() - t:.0f} s)\n")
            print("| " + " | ".join(HEADER) + " |")
            print("|" + "---|" * len(HEADER))
            for row in rows:
                print("| " + " | ".join(row.cells()) + " |")
            disk = f"; on disk {on_disk / 1e6:.1f} MB" if on_disk is not None else ""
            print(f"\nlive data after the workloads {live / 1e6:.1f} MB{disk}")
            if churn is not None:
                row, (before, peak, end) = churn
                print(
                    f"\nspace under churn: on disk {before / 1e6:.0f} MB before the reader, "
                    f"{peak / 1e6:.0f} MB at its peak, {end / 1e6:.0f} MB at the end\n"
                )
                print("| " + " | ".join(HEADER) + " |")
                print("|" + "---|" * len(HEADER))
                print("| " + " | ".join(row.cells()) + " |")
    finally:
        if args.dir is None:
            shutil.rmtree(where, ignore_errors=True)
    print(f"\ntotal {time.perf_counter() - started:.0f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
