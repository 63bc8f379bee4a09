"""The §7 workloads give the same rows and the same ``.dump`` on v1 as on plain SQLite.

Runs on every driver. Drivers whose commits cost a millisecond or more (embedded,
postgres: every xWrite is a store commit in v1) run a lighter scale that cuts only the
commit-heavy sizes, so the file stays a few seconds per driver.
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path
from tempfile import TemporaryDirectory

import apsw
import pytest

from sqlkv.store import Store
from sqlkv.vfs.v1 import connect_v1
from sqlkv.vfs.v1.check import check, inspect
from sqlkv.workloads import WORKLOADS, Rows, Scale, dump, integrity_ok, timed_run

LIGHT = dataclasses.replace(
    Scale.SMALL,
    name="small-light",
    single_inserts=10,
    big_txn_inserts=250,
    batch_rows=200,
    hot_updates=10,
    table_rows=500,
    scan_rows=1_000,
    large_txn_bytes=(50_000, 100_000, 200_000),
    oltp_small=(50, 20),
    oltp_large=(500, 15),
    json_docs=150,
    small_tables=5,
    churn_rounds=4,
    regrow_cycles=1,
    cold_db_bytes=256 * 1024,
    cold_scan_bytes=256 * 1024,
)
SCALE_BY_DRIVER = {"embedded": LIGHT, "postgres": LIGHT}


@functools.cache
def _plain_sqlite(name: str, scale: Scale) -> tuple[Rows, str]:
    """Rows and dump of the workload on plain SQLite (computed once per session).

    In memory, or in a file for the cold workloads, which reopen the database.
    """
    with TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "db") if WORKLOADS[name].cold else ":memory:"

        def connect() -> apsw.Connection:
            return apsw.Connection(path)

        result = timed_run(WORKLOADS[name], connect, scale)
        try:
            return result.rows, dump(result.conn)
        finally:
            result.conn.close()


@pytest.mark.parametrize("name", list(WORKLOADS))
def test_workload_matches_plain_sqlite(name: str, driver: str, store: Store) -> None:
    scale = SCALE_BY_DRIVER.get(driver, Scale.SMALL)
    rows, text = _plain_sqlite(name, scale)
    result = timed_run(WORKLOADS[name], lambda: connect_v1(name, store), scale)
    try:
        assert result.rows == rows
        assert dump(result.conn) == text
        assert integrity_ok(result.conn)
    finally:
        result.conn.close()
    assert check(store, name) == []
    assert set(inspect(store, name)) == {"db"}, "the journal is deleted after each commit"
