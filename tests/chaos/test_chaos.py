"""The seeded chaos suite: a random SQL workload on sqlkv, interleaved with SIGKILLs of the
client process, takeovers by a second process, compaction running concurrently and (on
PostgreSQL) store connections terminated under the client; after every round the database
must equal a plain SQLite oracle's last acknowledged state (or that plus the one
transaction in flight when the client died) and ``Engine.verify`` must find no problem.

Bounded for CI: ``SEEDS`` x ``SQLKV_CHAOS_ROUNDS`` (default 3) rounds per store; raise the
env var for longer runs. A failure prints the seed and round, which reproduce it.
One round in five runs the worker through a ``sqlkv serve`` that is SIGKILLed and restarted
mid-stream. A PostgreSQL restarted with ``-m immediate`` under ``fsync=on`` is
``test_pg_crash.py``.
"""

from __future__ import annotations

import os
import pickle
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import apsw
import pytest
from chaos_support import FENCED_EXIT, apply_op, contents, make_ops, schema_of
from drivers import postgres_url_or_skip

import sqlkv
from sqlkv.engine import Engine
from sqlkv.engine.keys import DbKeys
from sqlkv.store import open_store

# The crash suites run on one pytest-xdist worker, one after another (docs/testing.md).
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("crash")]

SEEDS = (11, 23, 37)
ROUNDS = int(os.environ.get("SQLKV_CHAOS_ROUNDS", "3"))
OPS_PER_ROUND = 16
# one per round, in turn; drop: PostgreSQL only; server: the worker goes through a
# ``sqlkv serve`` that is SIGKILLed and restarted on the same port mid-stream
ACTIONS = ("kill", "takeover", "server", "compact", "drop")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(store_url: str, port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    args = [sys.executable, "-m", "sqlkv.server", "--store", store_url]
    proc = subprocess.Popen(
        [*args, "--listen", f"127.0.0.1:{port}", "--no-compaction"],
        env=env,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, "sqlkv serve exited at start"
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc
        except OSError:
            time.sleep(0.05)
    raise AssertionError("sqlkv serve did not start")


def wait_for_acks(child: subprocess.Popen[bytes], acks: Path, n: int) -> None:
    """Until the worker acknowledged ``n`` ops (so the chaos lands mid-stream) or ended."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and child.poll() is None:
        if acks.exists() and len(acks.read_bytes().split()) >= n:
            return
        time.sleep(0.01)


WORKER = Path(__file__).with_name("chaos_support.py")


@pytest.fixture(params=["embedded", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "embedded":
        yield str(tmp_path / "store")
        return
    yield postgres_url_or_skip()


def terminate_backends(url: str, app: str) -> int:
    import psycopg

    with psycopg.connect(url, autocommit=True) as admin:
        rows = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
            (app,),
        ).fetchall()
    return len(rows)


def with_app(url: str, app: str) -> str:
    return url + ("&" if "?" in url else "?") + f"application_name={app}"


@pytest.mark.parametrize("seed", SEEDS)
def test_chaos_rounds_keep_every_acknowledged_commit(
    seed: int, store_url: str, tmp_path: Path
) -> None:
    pg = store_url.startswith("postgres")
    db = f"chaos-{seed}-{uuid.uuid4().hex[:8]}"
    rng = random.Random(seed)
    oracle = apsw.Connection(":memory:")
    counts: Counter[str] = Counter()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(WORKER.parent), *sys.path]))
    store = open_store(store_url)
    engine = Engine(store)
    try:
        for round_no in range(ROUNDS):
            where = f"seed {seed} round {round_no} ({'postgres' if pg else 'embedded'})"
            ops = make_ops(seed, round_no, schema_of(oracle), OPS_PER_ROUND)
            ops_path, acks_path = tmp_path / f"ops-{round_no}", tmp_path / f"acks-{round_no}"
            ops_path.write_bytes(pickle.dumps(ops))
            app = f"sqlkv-chaos-{uuid.uuid4().hex[:10]}"
            child_url = with_app(store_url, app) if pg else store_url
            action = ACTIONS[(seed + round_no) % len(ACTIONS)]
            if action == "drop" and not pg:
                action = "kill"
            server: subprocess.Popen[bytes] | None = None
            if action == "server":
                port = free_port()
                server = start_server(store_url, port, env)
                child_url = f"sqlkv://127.0.0.1:{port}"
            child = subprocess.Popen(
                [sys.executable, str(WORKER), child_url, db, str(ops_path), str(acks_path)],
                env=env,
                stderr=subprocess.PIPE,
            )
            wait_for_acks(child, acks_path, rng.randint(1, OPS_PER_ROUND // 2))
            compactor: threading.Thread | None = None
            if action == "kill":
                child.send_signal(signal.SIGKILL)
                counts["kills"] += 1
            elif action == "takeover":
                sqlkv.connect(db, store=store).close()
                counts["takeovers"] += 1
            elif action == "compact":
                compactor = threading.Thread(target=engine.compact_until_done, args=(db,))
                compactor.start()
                counts["compactions"] += 1
            elif action == "drop":
                counts["connection_drops"] += terminate_backends(store_url, app)
            elif action == "server" and server is not None:
                server.send_signal(signal.SIGKILL)
                server.wait()
                server = start_server(store_url, port, env)
                counts["server_kills"] += 1
            try:
                _, err = child.communicate(timeout=300)
            finally:
                if compactor is not None:
                    compactor.join()
                if server is not None:
                    server.kill()
                    server.wait()
            status = child.returncode
            if action == "kill" and status == 0:
                counts["kills"] -= 1  # it had finished first
            assert status in (0, FENCED_EXIT, -signal.SIGKILL), (
                f"{where}: worker failed ({status}):\n{err.decode(errors='replace')}"
            )
            counts["rounds"] += 1
            acked = [int(x) for x in acks_path.read_text().split()] if acks_path.exists() else []
            assert acked == list(range(len(acked))), where
            for op in ops[: len(acked)]:
                apply_op(oracle, op)
            check_round(db, store, engine, oracle, ops, len(acked), where, counts)
    finally:
        print(f"\nchaos seed {seed} on {store_url.split(':')[0]}: {dict(sorted(counts.items()))}")
        if pg:
            store.transact(lambda tr: tr.clear_range(*DbKeys(db).all_range()))
        engine.close()
        store.close()


def check_round(
    db: str,
    store: object,
    engine: Engine,
    oracle: apsw.Connection,
    ops: list,  # type: ignore[type-arg]
    acked: int,
    where: str,
    counts: Counter[str],
) -> None:
    """The database equals the oracle after the acknowledged ops, or after one more (the
    op in flight when the worker died may have landed); the oracle follows it."""
    conn = sqlkv.connect(db, store=store)  # type: ignore[arg-type]
    try:
        got = contents(conn)
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)], where
    finally:
        conn.close()
    if got != contents(oracle) and acked < len(ops):
        apply_op(oracle, ops[acked])  # the unacknowledged op had landed
        counts["landed_unacknowledged"] += 1
    assert got == contents(oracle), f"{where}: sqlkv differs from the oracle"
    counts["rows_checked"] += got[2]
    report = engine.verify(db)
    assert report.ok, f"{where}: verify found {report.problems}"
