"""A cancelled await never leaves a half-applied commit, nor work for a later commit.

The contract (sqlkv.aio.worker): a call cancelled before it started never runs; one
cancelled while running runs to its end; then any transaction left open is rolled back.
Each test checks the database after reopening it with a new connection.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time

import pytest
from aio_support import run

import sqlkv.aio
import sqlkv.dbapi2 as dbapi2

BLOB = 64 * 1024


async def _fill(db: sqlkv.aio.Connection, rows: int) -> None:
    await db.execute("CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, b BLOB)")
    await db.commit()
    await db.executemany("INSERT INTO t(b) VALUES (?)", [(os.urandom(BLOB),) for _ in range(rows)])
    assert db.in_transaction


def _state_after_reopen(store_url: str) -> tuple[int, int, str]:
    """(rows, rows whose blob is whole, integrity_check) read by a new owner."""
    conn = dbapi2.connect("big", store=store_url)
    try:
        count, whole = conn.execute(
            "SELECT count(*), coalesce(sum(length(b) = ?), 0) FROM t", (BLOB,)
        ).fetchone()
        (integrity,) = conn.execute("PRAGMA integrity_check").fetchone()
        return count, whole, integrity
    finally:
        conn.close()


def test_commit_cancelled_while_running_is_applied_whole(store_url: str) -> None:
    rows = 192  # 12 MiB: a staged commit, long enough to be cancelled in flight

    async def main() -> tuple[int, bool]:
        db = await sqlkv.aio.connect("big", store=store_url)
        await _fill(db, rows)
        committing = threading.Event()
        await db.set_trace_callback(lambda sql: committing.set() if sql == "COMMIT" else None)
        task = asyncio.create_task(db.commit())
        while not committing.is_set():  # the worker thread has started the COMMIT
            await asyncio.sleep(0.001)
        started = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert time.monotonic() - started < 0.5  # the caller is not held until the end
        # the next call runs after the commit settled: the connection is usable
        (count,) = (await db.execute_fetchall("SELECT count(*) FROM t"))[0]
        in_txn = db.in_transaction
        await db.close()
        return count, in_txn

    count, in_txn = run(main())
    assert (count, in_txn) == (rows, False)  # it was running: it completed, whole
    assert _state_after_reopen(store_url) == (rows, rows, "ok")


def test_commit_cancelled_before_it_started_never_runs_and_is_rolled_back(
    store_url: str,
) -> None:
    async def main() -> tuple[int, bool]:
        db = await sqlkv.aio.connect("big", store=store_url)
        await _fill(db, 8)
        release = threading.Event()
        await db.create_function("hold", 0, lambda: release.wait(5))
        busy = asyncio.create_task(db.execute_fetchall("SELECT hold()"))
        await asyncio.sleep(0.05)  # the worker is inside hold()
        commit = asyncio.create_task(db.commit())  # queued behind it
        await asyncio.sleep(0.01)
        commit.cancel()
        with pytest.raises(asyncio.CancelledError):
            await commit
        release.set()
        await busy
        (count,) = (await db.execute_fetchall("SELECT count(*) FROM t"))[0]
        in_txn = db.in_transaction
        await db.close()
        return count, in_txn

    assert run(main()) == (0, False)  # the inserts were rolled back, not left pending
    assert _state_after_reopen(store_url) == (0, 0, "ok")


def test_cancelled_statement_inside_a_transaction_rolls_the_transaction_back(
    store_url: str,
) -> None:
    async def main() -> tuple[int, bool]:
        db = await sqlkv.aio.connect("big", store=store_url)
        await _fill(db, 4)
        release = threading.Event()
        await db.create_function("hold", 0, lambda: release.wait(5))
        task = asyncio.create_task(db.execute("INSERT INTO t(b) SELECT hold()"))
        await asyncio.sleep(0.05)
        task.cancel()
        release.set()
        with pytest.raises(asyncio.CancelledError):
            await task
        await db.commit()  # commits nothing: the caller's transaction was rolled back
        (count,) = (await db.execute_fetchall("SELECT count(*) FROM t"))[0]
        in_txn = db.in_transaction
        await db.close()
        return count, in_txn

    assert run(main()) == (0, False)
    assert _state_after_reopen(store_url) == (0, 0, "ok")


def test_cancelled_open_closes_what_it_opened(store_url: str) -> None:
    async def main() -> None:
        task = asyncio.create_task(sqlkv.aio.connect("big", store=store_url)._open())
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    run(main())
    time.sleep(0.5)
    assert not [t for t in threading.enumerate() if t.name.startswith("sqlkv-aio-big")]


class _RollbackFails:
    """A DB-API connection whose rollback fails (as on a database taken over)."""

    in_transaction = True

    def __init__(self, release: threading.Event) -> None:
        self.release = release

    def execute(self, sql: str, *args: object) -> None:
        self.release.wait(5)

    def rollback(self) -> None:
        raise dbapi2.OperationalError("another owner took this database over")

    def close(self) -> None:
        pass


def test_connection_says_it_is_unusable_when_the_rollback_after_cancel_fails() -> None:
    release = threading.Event()

    async def main() -> None:
        db = await sqlkv.aio.Connection(lambda: _RollbackFails(release), dbapi2, name="x")
        task = asyncio.create_task(db.execute("INSERT INTO t VALUES (1)"))
        await asyncio.sleep(0.05)
        task.cancel()
        release.set()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.sleep(0.2)  # the worker settles: its rollback fails
        with pytest.raises(dbapi2.OperationalError, match="unusable"):
            await db.commit()
        await db.close()

    run(main())
