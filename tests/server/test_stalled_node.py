"""A stalled node (SIGSTOPped: its sockets accept, nothing answers) is treated as down
within about twice ``stall_timeout``, and the commit it held is settled through another
node by its commit id: nothing acknowledged is lost and nothing is applied twice. A slow
node that still answers its health probe, and a 50 MiB staged commit, are waited for."""

from __future__ import annotations

import signal
import threading
import time

import pytest
from server_support import ServerFactory, engine_url

import sqlkv
from sqlkv.server import RemoteEngine

# The crash suites run on one pytest-xdist worker, one after another (docs/testing.md).
pytestmark = pytest.mark.xdist_group("crash")

STALL_S = 15.0
FAILOVER_BOUND_S = 5.0  # the design gives ~2 x stall_timeout (1 s); generous for shared CI


def test_sigstopped_node_fails_over_fast_and_applies_every_commit_once(
    servers: ServerFactory, shared_store: str, db: str
) -> None:
    # node a holds each request 50 ms before running it, so the SIGSTOP lands mid-request
    a = servers(
        shared_store,
        token="t",
        name="a",
        extra=("--test-request-delay", "0.05", "--no-compaction"),
    )
    b = servers(shared_store, token="t", name="b")
    remote = RemoteEngine(engine_url(a, b), token="t", attempts=2, stall_timeout=0.5)
    conn = sqlkv.connect(db, engine=remote)
    conn.execute("CREATE TABLE t(n INTEGER)")  # no key: a commit applied twice would show
    acked: list[int] = []
    slowest = {"commit": 0.0, "read": 0.0}
    stopped = threading.Event()

    def stall_node_a() -> None:
        a.signal_all(signal.SIGSTOP)  # the server and its workers
        stopped.set()
        time.sleep(STALL_S)
        a.signal_all(signal.SIGCONT)

    stopper = threading.Timer(1.0, stall_node_a)
    stopper.start()
    try:
        n = 0
        end = time.monotonic() + 1.0 + STALL_S + 3.0
        while time.monotonic() < end:
            started = time.monotonic()
            conn.execute("INSERT INTO t VALUES (?)", (n,))
            took = time.monotonic() - started
            acked.append(n)
            if stopped.is_set():
                slowest["commit"] = max(slowest["commit"], took)
            started = time.monotonic()
            remote.get_pages(db, conn.sqlkv_generation, [1])  # a read through the engine
            if stopped.is_set():
                slowest["read"] = max(slowest["read"], time.monotonic() - started)
            n += 1
    finally:
        stopper.join()
    print(
        f"\nstalled node: failover took {slowest['commit']:.2f}s (slowest commit) and "
        f"{slowest['read']:.2f}s (slowest read) with node a SIGSTOPped for {STALL_S:.0f}s; "
        f"{len(acked)} commits, stalls={remote.stats.stalls} probes={remote.stats.probes} "
        f"failovers={remote.stats.failovers} ({shared_store.split(':')[0]})"
    )
    assert stopped.is_set() and remote.stats.stalls >= 1
    assert slowest["commit"] < FAILOVER_BOUND_S
    assert slowest["read"] < FAILOVER_BOUND_S
    time.sleep(1.0)  # node a is awake: any copy it still held has run (and been refused)
    assert conn.execute("SELECT n FROM t ORDER BY n").fetchall() == [(n,) for n in acked]
    conn.close()
    remote.close()
    with RemoteEngine(b.url, token="t") as fresh_engine:
        fresh = sqlkv.connect(db, engine=fresh_engine)
        got = fresh.execute("SELECT n, count(*) FROM t GROUP BY n ORDER BY n").fetchall()
        assert got == [(n, 1) for n in acked]  # every acknowledged commit, each once
        fresh.close()


def test_slow_node_that_answers_its_probe_is_waited_for(
    servers: ServerFactory, store_dir: str
) -> None:
    slow = servers(store_dir, name="slow", extra=("--test-request-delay", "1.5"))
    other = servers(store_dir, name="other")
    with RemoteEngine(engine_url(slow, other), attempts=2, stall_timeout=0.2) as remote:
        head = remote.open("db").head
        assert remote.stats.failovers == 0 and remote.stats.probes >= 3
        remote.commit("db", head.generation, head.head_txid, {1: b"x" * 4096}, 1)
        assert remote.stats.failovers == 0 and remote.stats.stalls == 0


def test_large_staged_commit_is_not_mistaken_for_a_stall(
    servers: ServerFactory, store_dir: str
) -> None:
    a = servers(store_dir, name="a")
    b = servers(store_dir, name="b")
    with RemoteEngine(engine_url(a, b), attempts=2, stall_timeout=0.2) as remote:
        conn = sqlkv.connect("big", engine=remote)
        conn.execute("CREATE TABLE t(v BLOB)")
        with conn:
            for _ in range(50):
                conn.execute("INSERT INTO t VALUES (randomblob(1048576))")  # 50 MiB
        assert conn.execute("SELECT count(*) FROM t").fetchall() == [(50,)]
        conn.close()
        assert remote.stats.requests["COMMIT_STAGE"] >= 5
        assert remote.stats.failovers == 0 and remote.stats.stalls == 0
