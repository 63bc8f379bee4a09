"""Each §7 workload gives the same results and the same final ``.dump`` on sqlkv as on plain
SQLite, and ``PRAGMA integrity_check`` passes after it."""

from __future__ import annotations

from pathlib import Path

import apsw
import pytest
from vfs_support import Opener

from sqlkv.workloads import WORKLOADS, Scale, Workload, dump, integrity_ok


def _reference(workload: Workload, scale: Scale, path: Path) -> tuple[list[object], str]:
    conn = apsw.Connection(str(path))
    try:
        result = workload(conn, scale)
        return list(result), dump(conn)
    finally:
        conn.close()


def _check(workload: Workload, scale: Scale, open_db: Opener, tmp_path: Path) -> None:
    expected_rows, expected_dump = _reference(workload, scale, tmp_path / "reference.db")
    conn = open_db(workload.name)
    if workload.setup is not None:
        workload.setup(conn, scale)
    if workload.cold:
        conn.close()
        conn = open_db(workload.name)
    got = workload.run(conn, scale)
    assert got == expected_rows
    assert integrity_ok(conn)
    assert dump(conn) == expected_dump
    conn.close()
    reopened = open_db(workload.name)  # what was committed, as a new owner sees it
    assert integrity_ok(reopened)
    assert dump(reopened) == expected_dump


@pytest.mark.parametrize("name", list(WORKLOADS))
def test_workload_matches_sqlite_small(name: str, open_db: Opener, tmp_path: Path) -> None:
    _check(WORKLOADS[name], Scale.SMALL, open_db, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(WORKLOADS))
def test_workload_matches_sqlite_full(name: str, open_mem: Opener, tmp_path: Path) -> None:
    _check(WORKLOADS[name], Scale.FULL, open_mem, tmp_path)
