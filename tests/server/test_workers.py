"""``sqlkv serve --workers N``: one port, N worker processes on one store. Two clients
served by different workers of one database are fenced exactly as on two nodes; a killed
worker is replaced; SIGTERM drains every worker; the metrics endpoint sums the workers;
a memory store (one process) refuses more than one worker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from server_support import ServerFactory, ServerProc

from sqlkv.errors import FenceMismatch
from sqlkv.server import RemoteEngine
from sqlkv.server.metrics_merge import merge_expositions

PAGE = 4096
TWO = ("--workers", "2")


def worker_of(engine: RemoteEngine) -> str:
    """The node name (``NAME/wI``) of the worker that serves ``engine``'s connection."""
    engine.health()
    (conn,) = [c for conns in engine._idle.values() for c in conns]
    return conn.server


def on_two_workers(
    server: ServerProc, stall_timeout: float = 0.5
) -> tuple[RemoteEngine, RemoteEngine]:
    """Two clients, each with one connection, served by different workers."""
    first = RemoteEngine(server.url, token="t", pool_size=1, stall_timeout=stall_timeout)
    for _ in range(8):
        second = RemoteEngine(server.url, token="t", pool_size=1, stall_timeout=stall_timeout)
        if worker_of(second) != worker_of(first):
            return first, second
        second.close()
    raise AssertionError("the supervisor gave every connection to the same worker")


def wait_for(check: object, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(check) and check():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_clients_on_two_workers_of_one_database_are_fenced(
    servers: ServerFactory, shared_store: str, db: str
) -> None:
    server = servers(shared_store, token="t", extra=TWO)
    assert len(server.workers()) == 2
    a, b = on_two_workers(server)
    with a, b:
        assert worker_of(a).endswith(("/w0", "/w1")) and worker_of(a) != worker_of(b)
        old = a.open(db).head
        done = a.commit(db, old.generation, old.head_txid, {1: b"a" * PAGE}, 1)
        new = b.open(db).head  # a takeover through the other worker: a new generation
        assert new.generation > old.generation and new.head_txid == done.head.head_txid
        with pytest.raises(FenceMismatch):  # the old owner's next commit is refused
            a.commit(db, old.generation, done.head.head_txid, {1: b"x" * PAGE}, 1)
        b.commit(db, new.generation, new.head_txid, {1: b"b" * PAGE}, 1)
        assert a.get_pages(db, new.generation, [1]).pages == {1: b"b" * PAGE}


def test_a_killed_worker_is_replaced(servers: ServerFactory, store_dir: str) -> None:
    server = servers(store_dir, token="t", extra=TWO)
    first = server.workers()
    assert len(first) == 2
    os.kill(first[0], signal.SIGKILL)
    wait_for(
        lambda: len(server.workers()) == 2 and first[0] not in server.workers(),
        "a new worker in place of the killed one",
    )
    assert server.metric("sqlkv_serve_worker_restarts_total") == 1
    assert server.metric("sqlkv_serve_workers_up") == 2
    names = set()
    for _ in range(4):  # both workers serve again, the new one included
        with RemoteEngine(server.url, token="t", pool_size=1) as engine:
            names.add(worker_of(engine))
            head = engine.open("after-kill").head
            engine.commit("after-kill", head.generation, head.head_txid, {1: bytes(PAGE)}, 1)
    assert len(names) == 2
    assert "worker 0 (pid" in server.output() and "exited with status -9" in server.output()


def test_sigterm_drains_every_worker(servers: ServerFactory, store_dir: str) -> None:
    server = servers(store_dir, token="t", extra=(*TWO, "--test-request-delay", "1.0"))
    workers = server.workers()
    # a draining server accepts no probe: a long stall_timeout keeps the clients waiting
    a, b = on_two_workers(server, stall_timeout=10.0)
    heads = {e: e.open(f"drain-{i}").head for i, e in enumerate((a, b))}
    results: list[object] = []

    def commit(engine: RemoteEngine, db: str) -> None:
        head = heads[engine]
        try:
            results.append(engine.commit(db, head.generation, head.head_txid, {1: bytes(PAGE)}, 1))
        except Exception as exc:  # collected: the assertion below names it
            results.append(exc)

    threads = [
        threading.Thread(target=commit, args=(e, f"drain-{i}")) for i, e in enumerate((a, b))
    ]
    for t in threads:
        t.start()
    time.sleep(0.5)  # both commits are running on their workers
    server.stop()
    for t in threads:
        t.join(30)
    assert server.proc.wait(60) == 0
    assert len(results) == 2 and all(not isinstance(r, Exception) for r in results), results
    for pid in workers:
        assert (
            not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()
        )
    out = server.output()
    assert "[w0]: stopped" in out and "[w1]: stopped" in out
    assert "Traceback" not in out
    a.close()
    b.close()


def test_metrics_sum_the_workers(servers: ServerFactory, store_dir: str) -> None:
    server = servers(store_dir, token="t", extra=TWO)
    a, b = on_two_workers(server)
    with a, b:
        for engine in (a, b):
            engine.open("metrics")
    total = server.metric("sqlkv_server_requests_total", type="OPEN")
    per_worker = [
        server.metric_of(f"worker={i}", "sqlkv_server_requests_total", type="OPEN")
        for i in range(2)
    ]
    assert total == 2 and per_worker == [1, 1]
    assert server.metric("sqlkv_serve_workers") == 2


def test_merged_exposition_adds_counters_and_keeps_the_earliest_start() -> None:
    one = (
        '# HELP c_total A counter\n# TYPE c_total counter\nc_total{type="x"} 2.0\n'
        "# HELP process_start_time_seconds Start\n# TYPE process_start_time_seconds gauge\n"
        "process_start_time_seconds 100.0\n"
    )
    two = one.replace("2.0", "3.0").replace("100.0", "90.0")
    merged = merge_expositions([one, two])
    assert 'c_total{type="x"} 5.0' in merged
    assert "process_start_time_seconds 90.0" in merged


def test_a_memory_store_refuses_two_workers(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "sqlkv.server", "--store", "memory://", *TWO],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2, proc.stderr
    assert "--workers 2 needs a store several processes can share" in proc.stderr


def test_auto_workers_is_one_process_on_a_store_every_process_writes_under_one_lock(
    tmp_path: Path,
) -> None:
    from sqlkv.cli.serve import resolve_workers

    cpus = len(os.sched_getaffinity(0))
    assert resolve_workers("auto", str(tmp_path)) == 1  # the embedded store: one SQLite file
    assert resolve_workers("auto", "memory://") == 1
    assert resolve_workers("auto", f"lmdb://{tmp_path}") == cpus
    assert resolve_workers("auto", "postgresql://u@db.example/sqlkv") == cpus
    assert resolve_workers("2", str(tmp_path)) == 2  # asked for: as many as asked
