"""Server benchmark: commit and get_pages latency and throughput over loopback TCP, with 1
and 8 concurrent clients, against the in-process ``Engine`` on the same kind of store.

Usage:
    python bench/bench_server.py [--store embedded|postgres] [--ops 1.0]

- ``network``: a ``sqlkv serve`` process (compaction on) on 127.0.0.1; each client is a
  thread with its own ``RemoteEngine`` (one persistent connection).
- ``in-process``: one ``Engine`` (compaction on) shared by the client threads, on a
  separate store of the same kind.
- Each client owns one database of 256 pages. Operations: ``commit`` of 1 and 16 pages
  (with a commit id, as the VFS sends them), ``get_pages`` of 1 and 16 consecutive pages
  at random places.
- ``--store postgres`` needs SQLKV_TEST_PG_URL (``scripts/pg-test-server``); the default
  is the embedded store, in temporary directories removed at the end.
- ``--ops`` scales the number of operations per client. At 1.0 the run takes about
  30 s on a 2-CPU machine.

Columns: latency median and p99 in ms (per operation, as a client sees it), and the
throughput of all clients together (operations per second of wall time). Client threads
share one Python process (and its GIL), so 8 clients measure the server's concurrency
plus the client process's overhead.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

from sqlkv.engine import Engine, EngineConfig
from sqlkv.engine.api import EngineApi
from sqlkv.server import RemoteEngine
from sqlkv.store import open_store

PAGE = 4096
DB_PAGES = 256
HOST = "127.0.0.1"


def make_page(rng: random.Random) -> bytes:
    return rng.randbytes(PAGE // 2) + bytes(range(256)) * (PAGE // 512)


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def start_server(store: str, where: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    log = (where / "server.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "sqlkv.server", "--store", store, "--listen", f"{HOST}:{port}"],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=where,
    )
    url = f"sqlkv://{HOST}:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with RemoteEngine(url, attempts=1, connect_timeout=1) as probe:
                probe.health()
            return proc, url
        except Exception:
            if proc.poll() is not None:
                break
            time.sleep(0.05)
    proc.kill()
    raise SystemExit(f"the server did not start; see {where / 'server.log'}")


class Client:
    """One owner of one database: it knows its generation and head."""

    def __init__(self, engine: EngineApi, db: str, rng: random.Random) -> None:
        self.engine, self.db, self.rng = engine, db, rng
        opened = engine.open(db)
        self.gen, self.head = opened.head.generation, opened.head.head_txid
        pages = {p: make_page(rng) for p in range(1, DB_PAGES + 1)}
        self.head = engine.commit(
            db, self.gen, self.head, pages, DB_PAGES, commit_id=os.urandom(16)
        ).head.head_txid

    def commit(self, n: int) -> None:
        first = self.rng.randint(1, DB_PAGES - n + 1)
        pages = {p: make_page(self.rng) for p in range(first, first + n)}
        result = self.engine.commit(
            self.db, self.gen, self.head, pages, DB_PAGES, commit_id=os.urandom(16)
        )
        self.head = result.head.head_txid

    def read(self, n: int) -> None:
        first = self.rng.randint(1, DB_PAGES - n + 1)
        self.engine.get_pages(self.db, self.gen, range(first, first + n))


def run(
    clients: list[Client], op: Callable[[Client], None], per_client: int
) -> tuple[list[float], float]:
    """Run ``op`` ``per_client`` times in each client's thread: (latencies, wall seconds)."""
    latencies: list[list[float]] = [[] for _ in clients]
    barrier = threading.Barrier(len(clients) + 1)
    errors: list[BaseException] = []

    def work(i: int) -> None:
        barrier.wait()
        try:
            for _ in range(per_client):
                t = time.perf_counter()
                op(clients[i])
                latencies[i].append(time.perf_counter() - t)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(clients))]
    for t in threads:
        t.start()
    barrier.wait()
    start = time.perf_counter()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    if errors:
        raise errors[0]
    return [x for lat in latencies for x in lat], wall


def p99(xs: list[float]) -> float:
    ordered = sorted(xs)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


OPS: list[tuple[str, Callable[[Client], None], int]] = [
    ("commit 1 page", lambda c: c.commit(1), 1000),
    ("commit 16 pages", lambda c: c.commit(16), 500),
    ("get_pages 1", lambda c: c.read(1), 3000),
    ("get_pages 16", lambda c: c.read(16), 1500),
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--store", choices=["embedded", "postgres"], default="embedded")
    parser.add_argument("--ops", type=float, default=1.0, help="scale of operations per client")
    args = parser.parse_args(argv)
    if args.store == "postgres" and not os.environ.get("SQLKV_TEST_PG_URL"):
        print("--store postgres needs SQLKV_TEST_PG_URL (scripts/pg-test-server)", file=sys.stderr)
        return 2

    print("# sqlkv server benchmark\n")
    print(f"- python {platform.python_version()} on {platform.platform()}, {os.cpu_count()} CPUs")
    print(f"- sqlkv {metadata.version('sqlkv')}, store: {args.store}, transport: loopback TCP")
    print("- server: `sqlkv serve` subprocess, compaction on; in-process: `Engine`, compaction on")
    print(f"- clients: threads, one database of {DB_PAGES} pages each; ops scale {args.ops}\n")

    with tempfile.TemporaryDirectory(prefix="sqlkv-bench-server-") as tmp:
        where = Path(tmp)
        if args.store == "postgres":
            store_local = store_remote = os.environ["SQLKV_TEST_PG_URL"]
        else:
            store_local, store_remote = str(where / "local"), str(where / "remote")
        proc, url = start_server(store_remote, where)
        store = open_store(store_local)
        engine = Engine(store, EngineConfig(), compaction=True)
        remotes: list[RemoteEngine] = []
        tag = uuid.uuid4().hex[:8]
        rows: list[str] = []
        try:
            for n_clients in (1, 8):
                modes: dict[str, list[Client]] = {"in-process": [], "network": []}
                for i in range(n_clients):
                    rng = random.Random(i)
                    modes["in-process"].append(Client(engine, f"b{tag}-{n_clients}-{i}", rng))
                    remote = RemoteEngine(url)
                    remotes.append(remote)
                    modes["network"].append(Client(remote, f"b{tag}-{n_clients}-{i}", rng))
                for name, op, count in OPS:
                    per_client = max(5, int(count * args.ops / (1 if n_clients == 1 else 3)))
                    for mode, clients in modes.items():
                        lat, wall = run(clients, op, per_client)
                        rows.append(
                            f"| {name} | {n_clients} | {mode} | "
                            f"{statistics.median(lat) * 1000:.3f} | {p99(lat) * 1000:.3f} | "
                            f"{len(lat) / wall:,.0f} |"
                        )
                        print(f"  done: {name}, {n_clients} client(s), {mode}", file=sys.stderr)
        finally:
            for r in remotes:
                r.close()
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
            engine.close()
            store.close()
        print("| operation | clients | mode | median ms | p99 ms | ops/s |")
        print("|---|---|---|---|---|---|")
        for row in rows:
            print(row)
    return 0


if __name__ == "__main__":
    sys.exit(main())
