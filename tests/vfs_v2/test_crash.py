"""A client process killed with SIGKILL mid-transaction leaves the last committed state."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from vfs_support import integrity, rows

import sqlkv

CHILD = textwrap.dedent(
    """
    import sys
    import sqlkv

    store, mode = sys.argv[1], sys.argv[2]
    conn = sqlkv.connect("crash", store)
    conn.execute("CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, v BLOB)")
    conn.executemany("INSERT INTO t(v) VALUES (randomblob(1000))", [()] * 100)
    conn.execute("PRAGMA cache_size=20")  # the big transaction spills pages to the VFS
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO t(v) VALUES (randomblob(4000))", [()] * 3000)  # ~12 MB
    if mode == "before-commit":
        print("INFLIGHT", flush=True)
        sys.stdin.readline()  # killed here, the transaction open and spilled
    else:
        print("COMMITTING", flush=True)
        conn.execute("COMMIT")  # staged and finalized: killed somewhere inside, or after
        print("COMMITTED", flush=True)
        sys.stdin.readline()
    """
)


def _spawn(store: Path, mode: str) -> subprocess.Popen[str]:
    src = str(Path(sqlkv.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, str(store), mode],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )


def _kill(child: subprocess.Popen[str]) -> None:
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL


def _state(store: Path) -> list[tuple[object, ...]]:
    conn = sqlkv.connect("crash", str(store))
    try:
        assert integrity(conn) == "ok"
        return rows(conn, "SELECT count(*), count(DISTINCT length(v)) FROM t")
    finally:
        conn.close()


def test_killed_inside_a_spilled_transaction_keeps_last_commit(tmp_path: Path) -> None:
    store = tmp_path / "store"
    child = _spawn(store, "before-commit")
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "INFLIGHT"
    _kill(child)
    assert _state(store) == [(100, 1)]


@pytest.mark.parametrize("delay_ms", [0, 30, 120])
def test_killed_during_a_staged_commit_keeps_all_or_nothing(tmp_path: Path, delay_ms: int) -> None:
    store = tmp_path / "store"
    child = _spawn(store, "commit")
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "COMMITTING"
    time.sleep(delay_ms / 1000)
    _kill(child)
    assert _state(store) in ([(100, 1)], [(3100, 2)])
