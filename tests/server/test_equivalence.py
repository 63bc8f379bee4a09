"""The engine over the network answers exactly as in process, with the same round trips.

One scripted sequence of every engine operation (errors included) runs against an
in-process ``Engine`` on a memory store and against a server on an embedded store; the
answers (heads, pages, error classes, fields and messages) must be equal, each call must
be exactly one request, and each request must cost the server's store exactly as many
transactions as the in-process call cost its store. Then the §7 workloads at
``Scale.SMALL`` run through ``sqlkv.connect`` both ways: equal rows, equal round trips.
"""

from __future__ import annotations

import dataclasses
import os
import random
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, cast

import pytest
from server_support import ServerFactory, ServerProc

import sqlkv
from sqlkv.engine import Engine, EngineConfig
from sqlkv.engine.api import EngineApi
from sqlkv.engine.head import Head
from sqlkv.errors import SqlkvError
from sqlkv.server import RemoteEngine
from sqlkv.store import MemoryStore
from sqlkv.vfs.v2 import Connection
from sqlkv.workloads import WORKLOADS, Scale, timed_run

PAGE = 4096
ID_A, ID_B, ID_C = b"A" * 16, b"B" * 16, b"C" * 16


def page(n: int, salt: int = 0) -> bytes:
    return bytes([(n + salt) % 251]) * PAGE


def normal(value: Any) -> Any:
    """An answer in comparable form (creation time differs between two stores)."""
    if isinstance(value, Head):
        return dataclasses.replace(value, created_ms=0)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return type(value)(
            **{f.name: normal(getattr(value, f.name)) for f in dataclasses.fields(value)}
        )
    if isinstance(value, dict):
        return {k: normal(v) for k, v in value.items()}
    return value


def outcome(call: Callable[[], Any]) -> Any:
    try:
        return ("ok", normal(call()))
    except SqlkvError as exc:
        fields = {
            k: normal(v) for k, v in vars(exc).items() if not k.startswith("_") and k != "last"
        }
        return ("error", type(exc).__name__, str(exc), fields)


def script(e: EngineApi) -> list[tuple[str, Callable[[], Any]]]:
    """(request type, call) for one scripted session; later steps use earlier answers."""
    state: dict[str, Any] = {}
    noise = random.Random(7)
    too_large = {p: noise.randbytes(PAGE) for p in range(1, 2_200)}

    def opened(**kw: Any) -> Any:
        result = e.open("s", **kw)
        state["gen"] = result.head.generation
        state["head"] = result.head.head_txid
        return result

    def committed(result: Any) -> Any:
        state["head"] = result.head.head_txid
        return result

    def staged(result: Any) -> Any:
        state["txid"] = result.txid
        return result

    return [
        ("HEAD", lambda: e.head("s")),
        ("OPEN", lambda: e.open("s", create=False)),
        ("OPEN", lambda: opened()),
        ("HEAD", lambda: e.head("s")),
        (
            "COMMIT",
            lambda: committed(
                e.commit("s", state["gen"], 1, {p: page(p) for p in (1, 2, 3)}, 3, commit_id=ID_A)
            ),
        ),
        ("COMMIT", lambda: e.commit("s", state["gen"], 1, {1: page(1)}, 3, commit_id=ID_A)),
        ("GET_PAGES", lambda: e.get_pages("s", state["gen"], [1, 2, 3, 4, 5])),
        ("COMMIT", lambda: e.commit("s", state["gen"], 1, {1: page(9)}, 3)),
        ("COMMIT", lambda: e.commit("s", state["gen"], state["head"], {0: page(0)}, 3)),
        ("COMMIT", lambda: e.commit("s", state["gen"], state["head"], {1: b"short"}, 3)),
        ("COMMIT", lambda: e.commit("s", state["gen"], state["head"], {9: page(9)}, 3)),
        ("COMMIT", lambda: e.commit("s", state["gen"], state["head"], {}, 3, commit_id=b"x")),
        ("COMMIT", lambda: e.commit("s", state["gen"], state["head"], too_large, 2_199)),
        (
            "COMMIT_STAGE",
            lambda: staged(
                e.commit_stage("s", state["gen"], None, 0, {p: page(p, 1) for p in range(4, 101)})
            ),
        ),
        (
            "COMMIT_STAGE",
            lambda: e.commit_stage(
                "s", state["gen"], state["txid"], 1, {p: page(p, 1) for p in range(101, 201)}
            ),
        ),
        (
            "COMMIT_FINALIZE",
            lambda: committed(
                e.commit_finalize(
                    "s", state["gen"], state["head"], state["txid"], 200, commit_id=ID_B
                )
            ),
        ),
        (
            "COMMIT_FINALIZE",
            lambda: e.commit_finalize(
                "s", state["gen"], state["head"] - 1, state["txid"], 200, commit_id=ID_B
            ),
        ),
        ("GET_PAGES", lambda: e.get_pages("s", state["gen"], [1, 4, 100, 150, 200, 201])),
        ("OPEN", lambda: opened(preload=[2, 3, 150], preload_bytes=3 * PAGE)),
        ("GET_PAGES", lambda: e.get_pages("s", state["gen"] - 1, [1])),
        ("GET_PAGES", lambda: e.get_pages("s", state["gen"], [0])),
        (
            "COMMIT",
            lambda: committed(e.commit("s", state["gen"], state["head"], {}, 50, commit_id=ID_C)),
        ),
        ("COMMIT", lambda: committed(e.commit("s", state["gen"], state["head"], {1: page(7)}, 50))),
        ("GET_PAGES", lambda: e.get_pages("s", state["gen"], [1, 40, 50, 51, 150])),
        ("HEAD", lambda: e.head("s")),
        ("COMMIT_STAGE", lambda: e.commit_stage("other", 1, None, 0, {1: page(1)})),
        ("SNAPSHOT", lambda: e.snapshot("s", preload=[2, 3, 51])),
        ("SNAPSHOT", lambda: e.snapshot("s", at=state["head"] - 1, preload=[1, 40])),
        ("SNAPSHOT", lambda: e.snapshot("nope")),
        ("READ_AT", lambda: e.read_at("s", state["head"] - 2, [1, 4, 100, 150, 201])),
        ("READ_AT", lambda: e.read_at("s", state["head"] + 5, [1])),
        ("CHANGES_SINCE", lambda: e.changes_since("s", state["head"] - 3)),
        ("CHANGES_SINCE", lambda: e.changes_since("s", state["head"])),
        ("LABEL", lambda: e.label("s", "point", state["head"] - 1)),
        ("LABEL", lambda: e.label("s", "42")),
        ("RESOLVE", lambda: e.resolve("s", "point")),
        ("RESOLVE", lambda: e.resolve("s", "missing")),
        ("RESOLVE", lambda: e.resolve("s", state["head"] - 2)),
        ("RESOLVE", lambda: e.resolve("s", datetime(2020, 1, 1, tzinfo=UTC))),
        ("SET_RETENTION", lambda: e.set_retention("s", 86_400)),
        ("RETENTION", lambda: e.retention("s")),
    ]


def store_transactions(server: ServerProc) -> float:
    return server.metric("sqlkv_store_transactions_total")


def test_engine_operations_answer_as_in_process_with_equal_round_trips(
    servers: ServerFactory, store_dir: str
) -> None:
    server = servers(store_dir, token="t", extra=("--no-compaction",))
    mem = MemoryStore()
    local = Engine(mem, EngineConfig())
    remote = RemoteEngine(server.url, token="t")
    try:
        for (kind, local_call), (_, remote_call) in zip(script(local), script(remote), strict=True):
            before = mem.stats.transactions
            expected = outcome(local_call)
            local_trips = mem.stats.transactions - before

            requests_before = server.metric("sqlkv_server_requests_total", type=kind)
            trips_before = store_transactions(server)
            sent_before = remote.stats.total_requests
            got = outcome(remote_call)
            assert got == expected, kind
            assert remote.stats.total_requests - sent_before == 1
            assert server.metric("sqlkv_server_requests_total", type=kind) - requests_before == 1
            assert store_transactions(server) - trips_before == local_trips, kind
        assert remote.stats.connects == 1  # one connection, reused for every request
        assert remote.stats.retries == 0
    finally:
        remote.close()
        local.close()


def test_remote_engine_is_thread_safe_and_pools_connections(
    servers: ServerFactory, store_dir: str
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    server = servers(store_dir)
    with RemoteEngine(server.url, pool_size=8) as remote:
        gen = remote.open("t").head.generation
        remote.commit("t", gen, 1, {p: page(p) for p in range(1, 33)}, 32, commit_id=os.urandom(16))

        def read(i: int) -> bytes | None:
            return remote.get_pages("t", gen, [1 + i % 32]).pages[1 + i % 32]

        with ThreadPoolExecutor(8) as pool:
            got = list(pool.map(read, range(400)))
        assert got == [page(1 + i % 32) for i in range(400)]
        assert remote.stats.connects <= 8
        assert remote.stats.retries == 0


def _workload_names() -> list[str]:
    return list(WORKLOADS)


@pytest.fixture(scope="module")
def workload_server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from server_support import start_server

    where = tmp_path_factory.mktemp("workloads")
    server = start_server(where, str(where / "store"), token="w")
    yield server
    server.kill()


@pytest.mark.parametrize("name", _workload_names())
def test_workload_over_the_network_matches_in_process(
    workload_server: ServerProc, name: str
) -> None:
    workload = WORKLOADS[name]
    scale = Scale.SMALL
    mem = MemoryStore()
    local = timed_run(workload, lambda: sqlkv.connect(name, store=mem), scale)
    remote_engines: list[RemoteEngine] = []
    opened = [local.conn]

    def connect_remote() -> Any:
        engine = RemoteEngine(workload_server.url, token="w")
        remote_engines.append(engine)
        return sqlkv.connect(name, engine=engine)

    try:
        remote = timed_run(workload, connect_remote, scale)
        opened.append(remote.conn)
        assert remote.rows == local.rows
        local_stats = cast(Connection, local.conn).sqlkv_stats
        remote_stats = cast(Connection, remote.conn).sqlkv_stats
        assert remote_stats.retries == 0
        assert remote_stats.round_trips == local_stats.round_trips
        assert remote_stats.as_dict() == local_stats.as_dict()
        # one network request per engine call of the measured connection
        assert remote_engines[-1].stats.total_requests == remote_stats.round_trips
    finally:
        for conn in opened:
            conn.close()
        for engine in remote_engines:
            engine.close()


def test_connect_takes_an_engine_url_and_token(workload_server: ServerProc) -> None:
    import inspect

    if "token" not in inspect.signature(sqlkv.connect).parameters:
        pytest.skip(
            "sqlkv.connect(engine='sqlkv://...', token=...) has not landed in "
            "src/sqlkv/client.py yet (it should build sqlkv.server.connect_engine)"
        )
    connect: Any = sqlkv.connect
    conn = connect("by-url", engine=workload_server.url, token="w")
    try:
        conn.execute("CREATE TABLE t(x)")
        conn.execute("INSERT INTO t VALUES (42)")
        assert conn.execute("SELECT x FROM t").fetchall() == [(42,)]
    finally:
        conn.close()
