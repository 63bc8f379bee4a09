"""A durable PostgreSQL (``fsync=on``) crashed with ``pg_ctl stop -m immediate`` in the
middle of a stream of commits and started again loses nothing acknowledged: every commit
that returned is there once, the store never looks rewound, and ``Engine.verify`` is clean.

Runs its own cluster (``scripts/pg-test-server`` with ``SQLKV_PG_FSYNC=on``) because it
must restart it; marked slow and postgres (CI installs PostgreSQL, ``scripts/test``)."""

from __future__ import annotations

import os
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import apsw
import pytest

import sqlkv
from sqlkv.engine import Engine
from sqlkv.errors import StoreRewound
from sqlkv.store import open_store

# The crash suites run on one pytest-xdist worker, one after another (docs/testing.md).
pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.xdist_group("crash")]

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "pg-test-server"


@pytest.fixture
def durable_pg() -> Iterator[tuple[str, str]]:
    """(URL, cluster directory) of a private fsync=on cluster; removed afterwards."""
    where = tempfile.mkdtemp(prefix="sqlkv-durable-pg-")  # the server user must reach it
    env = dict(os.environ, SQLKV_PG_FSYNC="on")
    out = subprocess.run(
        ["bash", str(SCRIPT), "start", where], env=env, capture_output=True, text=True
    )
    if out.returncode != 0:
        subprocess.run(["bash", str(SCRIPT), "stop", where], capture_output=True)
        if os.environ.get("CI"):
            raise RuntimeError(f"could not start a durable PostgreSQL:\n{out.stderr}")
        pytest.skip(f"no durable PostgreSQL here: {out.stderr.strip().splitlines()[-1:]}")
    url = out.stdout.strip().split("=", 1)[1].strip("'")
    try:
        yield url, where
    finally:
        subprocess.run(["bash", str(SCRIPT), "stop", where], capture_output=True)


def test_immediate_restart_of_a_durable_postgres_loses_nothing_acknowledged(
    durable_pg: tuple[str, str],
) -> None:
    url, where = durable_pg
    db = f"crash-{uuid.uuid4().hex[:8]}"
    acked: list[int] = []
    failed: list[int] = []
    rewound: list[BaseException] = []
    stop = threading.Event()

    def writer() -> None:
        n = 0
        conn = sqlkv.connect(db, store=url)
        conn.execute("CREATE TABLE IF NOT EXISTS t(n INTEGER, v BLOB)")
        while not stop.is_set():
            try:
                conn.execute("INSERT INTO t VALUES (?, randomblob(2000))", (n,))
                acked.append(n)
            except apsw.Error as exc:
                if isinstance(exc, StoreRewound):
                    rewound.append(exc)
                    return
                failed.append(n)  # may or may not have landed: not acknowledged
                conn.close()
                time.sleep(0.2)
                conn = sqlkv.connect(db, store=url)  # a new connection continues
            n += 1
        conn.close()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while len(acked) < 100 and time.monotonic() < deadline and thread.is_alive():
            time.sleep(0.05)
        before = len(acked)
        restart = subprocess.run(
            ["bash", str(SCRIPT), "crash-restart", where], capture_output=True, text=True
        )
        assert restart.returncode == 0, restart.stderr
        deadline = time.monotonic() + 60
        while len(acked) < before + 100 and time.monotonic() < deadline and thread.is_alive():
            time.sleep(0.05)
    finally:
        stop.set()
        thread.join(60)
    print(
        f"\ndurable PostgreSQL crashed with -m immediate after {before} acknowledged commits; "
        f"{len(acked)} acknowledged in all, {len(failed)} failed during the restart"
    )
    assert not rewound, rewound[0]
    assert len(acked) > before + 50, "commits did not resume after the restart"
    conn = sqlkv.connect(db, store=url)
    got = [n for (n,) in conn.execute("SELECT n FROM t ORDER BY n")]
    conn.close()
    assert len(got) == len(set(got)), "a commit was applied twice"
    assert set(acked) <= set(got), f"lost acknowledged commits: {sorted(set(acked) - set(got))}"
    assert set(got) - set(acked) <= set(failed)
    store = open_store(url)
    try:
        assert Engine(store).verify(db).ok
    finally:
        store.close()
