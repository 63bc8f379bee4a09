"""The §7 workloads on plain SQLite: deterministic, sound, and shaped as the benchmarks need."""

from __future__ import annotations

from pathlib import Path

import apsw
import pytest

from sqlkv.workloads import WORKLOADS, Scale, Workload, dump, integrity_ok, timed_run

SECTION_7_ORDER = [
    "insert_single",
    "insert_txn",
    "insert_txn_10k",
    "batch_insert",
    "point_reads",
    "full_scan",
    "indexed_range_scan",
    "unindexed_range_scan",
    "bulk_update",
    "bulk_delete",
    "hot_row_updates",
    "delete_vacuum",
    "large_payloads",
    "large_txn_500k",
    "large_txn_10m",
    "large_txn_50m",
    "oltp_small",
    "oltp_large",
    "json_insert_query",
    "json_each_aggregation",
    "complex_aggregation",
    "subquery",
    "join",
    "cte_window",
    "many_small_tables",
    "create_index",
    "growing_aggregation",
    "churn",
    "truncate_regrow",
    "cold_start",
    "cold_full_scan",
]


def _open(path: Path) -> apsw.Connection:
    """A plain SQLite file; no fsync, which only the disk would notice."""
    conn = apsw.Connection(str(path))
    conn.execute("PRAGMA synchronous = OFF")
    return conn


def _run_on_file(workload: Workload, path: Path) -> tuple[list[tuple[object, ...]], str]:
    result = timed_run(workload, lambda: _open(path), Scale.SMALL)
    try:
        assert integrity_ok(result.conn)
        return result.rows, dump(result.conn)
    finally:
        result.conn.close()


@pytest.mark.parametrize("name", list(WORKLOADS))
def test_workload_gives_identical_results_twice(name: str, tmp_path: Path) -> None:
    workload = WORKLOADS[name]
    first = _run_on_file(workload, tmp_path / "first.db")
    second = _run_on_file(workload, tmp_path / "second.db")
    assert first[0], "a workload returns the rows its queries produced"
    assert first == second


@pytest.mark.parametrize("name", list(WORKLOADS))
def test_workload_called_on_one_connection_matches_timed_run(name: str, tmp_path: Path) -> None:
    conn = apsw.Connection(":memory:")
    rows = WORKLOADS[name](conn, Scale.SMALL)
    assert integrity_ok(conn)
    assert rows == _run_on_file(WORKLOADS[name], tmp_path / "db")[0]


def test_registry_is_in_section_7_order() -> None:
    assert list(WORKLOADS) == SECTION_7_ORDER
    assert all(WORKLOADS[n].name == n for n in WORKLOADS)


def test_cold_workloads_have_a_setup_to_reopen_after() -> None:
    cold = {n for n, w in WORKLOADS.items() if w.cold}
    assert cold == {"cold_start", "cold_full_scan"}
    assert all(WORKLOADS[n].setup is not None for n in cold)


def test_timed_run_reopens_a_cold_workload_before_run(tmp_path: Path) -> None:
    opened: list[apsw.Connection] = []

    def connect() -> apsw.Connection:
        opened.append(apsw.Connection(str(tmp_path / "db")))
        return opened[-1]

    result = timed_run(WORKLOADS["cold_full_scan"], connect, Scale.SMALL)
    assert len(opened) == 2 and result.conn is opened[1]
    assert result.setup_s > 0 and result.run_s > 0
    result.conn.close()


def test_full_scale_has_the_sizes_section_7_names() -> None:
    full = Scale.FULL
    assert full.big_txn_inserts == 10_000
    assert full.large_txn_bytes == (500_000, 10_000_000, 50_000_000)
    assert full.cold_scan_bytes == 50 * 1024 * 1024
    assert full.table_rows == 10_000  # create_index works on this table
    assert full.bulk_rows == 1_000
    assert full.hot_updates == 100


def test_large_transactions_insert_the_bytes_their_scale_names() -> None:
    conn = apsw.Connection(":memory:")
    (row,) = WORKLOADS["large_txn_50m"](conn, Scale.SMALL)
    assert row[3] == Scale.SMALL.large_txn_bytes[2]  # sum(length(payload))


def test_dump_is_equal_for_equal_databases_and_differs_otherwise(tmp_path: Path) -> None:
    a, b = apsw.Connection(str(tmp_path / "a.db")), apsw.Connection(":memory:")
    for conn in (a, b):
        conn.execute("CREATE TABLE t(x, y); INSERT INTO t VALUES (1, x'00ff'), (2.5, 'two')")
    assert dump(a) == dump(b)
    assert "INSERT INTO t VALUES(1,X'00FF');" in dump(a)
    b.execute("UPDATE t SET y = 'changed' WHERE x = 1")
    assert dump(a) != dump(b)


def test_integrity_ok_reports_a_damaged_database(tmp_path: Path) -> None:
    path = tmp_path / "db"
    conn = apsw.Connection(str(path))
    with conn:
        conn.execute("CREATE TABLE t(x TEXT); CREATE INDEX t_x ON t(x)")
        conn.executemany("INSERT INTO t VALUES (?)", [(str(i) * 50,) for i in range(500)])
    assert integrity_ok(conn)
    conn.close()
    with path.open("r+b") as f:  # scribble over the middle of the last page
        f.seek(path.stat().st_size - 2048)
        f.write(b"\x55" * 1024)
    assert not integrity_ok(apsw.Connection(str(path)))
