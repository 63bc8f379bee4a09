"""Several engine nodes on one store: takeover after a node dies, fencing of the stale
owner, and graceful shutdown with failover.

The takeover tests run on a shared embedded store (several processes may share its
directory), on PostgreSQL (``SQLKV_TEST_PG_URL``, marked ``postgres``: required in CI) and
on the etcd test cluster (``SQLKV_TEST_ETCD_URL``: required in CI).
"""

from __future__ import annotations

import os
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable

import apsw
import pytest
from server_support import ServerFactory, ServerProc, engine_url

import sqlkv
from sqlkv.errors import ConnectionFenced, FenceMismatch
from sqlkv.server import RemoteEngine

PAGE = 4096


def page(n: int, version: int) -> bytes:
    return (n * 1000 + version).to_bytes(8, "big") * (PAGE // 8)


def test_after_a_node_is_killed_another_takes_over_with_every_acknowledged_commit(
    servers: ServerFactory, shared_store: str, db: str
) -> None:
    node1 = servers(shared_store, token="t", name="node1")
    node2 = servers(shared_store, token="t", name="node2")
    writer = RemoteEngine(node1.url, token="t")
    opened = writer.open(db)
    old_gen, head = opened.head.generation, opened.head.head_txid
    expected: dict[int, bytes] = {}
    for version in range(1, 31):
        dirty = {p: page(p, version) for p in range(1, 1 + version % 7 + 1)}
        size = max(len(expected), max(dirty))
        head = writer.commit(
            db, old_gen, head, dirty, size, commit_id=os.urandom(16)
        ).head.head_txid
        expected.update(dirty)
    node1.kill()  # SIGKILL: no drain, no goodbye

    with RemoteEngine(node2.url, token="t") as successor:
        took = successor.open(db)
        assert took.head.generation > old_gen
        assert took.head.head_txid == head  # every acknowledged commit is there
        got = successor.get_pages(db, took.head.generation, sorted(expected)).pages
        assert got == expected

        # the stale owner, still holding the old generation, reaches node 2 and is fenced
        with RemoteEngine(engine_url(node1, node2), token="t") as stale:
            with pytest.raises(FenceMismatch) as fenced:
                stale.commit(
                    db, old_gen, head, {1: page(1, 99)}, len(expected), commit_id=os.urandom(16)
                )
            assert fenced.value.head.generation == took.head.generation
            with pytest.raises(FenceMismatch):
                stale.get_pages(db, old_gen, [1])
            assert stale.stats.failovers >= 1  # node 1 is gone: it went on to node 2
        assert successor.head(db).head_txid == head  # the fenced commit changed nothing
    writer.close()


def test_sql_connection_moves_to_another_node_and_the_old_one_is_fenced(
    servers: ServerFactory, shared_store: str, db: str
) -> None:
    node1 = servers(shared_store, token="t", name="node1")
    node2 = servers(shared_store, token="t", name="node2")
    first_engine = RemoteEngine(engine_url(node1, node2), token="t")
    first = sqlkv.connect(db, engine=first_engine)
    first.execute("CREATE TABLE t(x INTEGER PRIMARY KEY, y TEXT)")
    for i in range(50):
        first.execute("INSERT INTO t VALUES (?, ?)", (i, f"row {i}"))
    node1.kill()

    with RemoteEngine(node2.url, token="t") as second_engine:
        second = sqlkv.connect(db, engine=second_engine)
        assert second.execute("SELECT count(*), sum(x) FROM t").fetchall() == [(50, 1225)]
        second.execute("INSERT INTO t VALUES (50, 'new owner')")
        second.close()
    # the old connection fails over to node 2, where its commit is fenced
    with pytest.raises(apsw.Error) as dead:
        first.execute("INSERT INTO t VALUES (99, 'stale')")
    assert isinstance(dead.value, ConnectionFenced)
    assert first_engine.stats.failovers >= 1
    first.close()
    first_engine.close()


def run_stream(
    engine: RemoteEngine, db: str, stop: threading.Event, failures: list[BaseException]
) -> Callable[[], int]:
    """Commit in a loop until ``stop``; returns a function giving the commits acknowledged."""
    acked = [0]

    def loop() -> None:
        try:
            gen = engine.open(db).head.generation
            head = 1
            for n in range(1, 5_000):
                if stop.is_set():
                    return
                result = engine.commit(db, gen, head, {1: page(1, n)}, 1, commit_id=os.urandom(16))
                head = result.head.head_txid
                assert engine.get_pages(db, gen, [1]).pages == {1: page(1, n)}
                acked[0] = n
        except BaseException as exc:
            failures.append(exc)

    thread = threading.Thread(target=loop)
    thread.start()

    def join() -> int:
        thread.join(timeout=60)
        return acked[0]

    return join


def healthz(server: ServerProc) -> int:
    url = f"http://127.0.0.1:{server.metrics_port}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except OSError:
        return 0


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.005)
    raise AssertionError(f"timed out waiting for {what}")


def test_sigterm_finishes_requests_in_flight_and_clients_fail_over(
    servers: ServerFactory, store_dir: str
) -> None:
    # node 1 holds every request 0.4 s, so SIGTERM finds some in flight
    node1 = servers(store_dir, token="t", name="node1", extra=("--test-request-delay", "0.4"))
    node2 = servers(store_dir, token="t", name="node2")
    assert healthz(node1) == 200
    with RemoteEngine(node2.url, token="t") as setup:
        gen = setup.open("big").head.generation
        setup.commit("big", gen, 1, {p: page(p, 1) for p in range(1, 65)}, 64, commit_id=b"b" * 16)

    stop = threading.Event()
    failures: list[BaseException] = []
    streams = [
        (engine, run_stream(engine, f"stream{i}", stop, failures))
        for i, engine in enumerate(
            RemoteEngine(engine_url(node1, node2), token="t") for _ in range(3)
        )
    ]
    in_flight = RemoteEngine(node1.url, token="t", attempts=1)  # node 1 only, no retry
    wait_for(lambda: node1.metric("sqlkv_server_requests_total", type="COMMIT") >= 3, "commits")
    slow: list[object] = []
    reader = threading.Thread(
        target=lambda: slow.append(in_flight.get_pages("big", gen, list(range(1, 65))))
    )
    reader.start()
    wait_for(lambda: node1.metric("sqlkv_server_requests_total", type="GET_PAGES") >= 1, "read")
    node1.stop()  # SIGTERM while the read (and commits) are in flight
    wait_for(lambda: healthz(node1) == 503, "/healthz to say draining", timeout=5)
    reader.join(timeout=30)
    assert node1.proc.wait(timeout=30) == 0
    assert slow and slow[0].pages == {p: page(p, 1) for p in range(1, 65)}  # type: ignore[attr-defined]
    assert in_flight.stats.retries == 0  # answered by node 1 while it drained

    time.sleep(0.5)  # the streams carry on through node 2
    stop.set()
    assert not failures, failures[0]
    for i, (engine, join) in enumerate(streams):
        acked = join()
        assert acked > 0
        assert engine.stats.failovers >= 1
        # every acknowledged commit applied exactly once (txid 1 is the creation)
        assert engine.head(f"stream{i}").head_txid == 1 + acked
        engine.close()
    assert not failures, failures[0]
    assert "drain timed out" not in node1.output()
    assert "shutting down" in node1.output()
    in_flight.close()
