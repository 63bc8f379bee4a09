"""The workloads of docs/design.md §7, shared by tests, benchmarks and ``sqlkv demo``.

``WORKLOADS`` maps each name to a ``Workload`` in the §7 order. Use one of three ways::

    rows = WORKLOADS["join"](conn, Scale.SMALL)           # setup + run, one connection

    w = WORKLOADS["cold_full_scan"]                        # what a benchmark does
    if w.setup: w.setup(conn, scale)                       # build (not measured)
    if w.cold: conn.close(); conn = reopen()               # empty caches
    rows = w.run(conn, scale)                              # measured

    result = timed_run(w, connect, scale)                  # the same, timed

Two runs of a workload at one scale, on databases that hold the same data, return equal
rows: compare them with ``==``, and compare whole databases with ``dump``.
"""

from __future__ import annotations

from sqlkv.workloads import maintenance as m
from sqlkv.workloads import oltp, queries, reads
from sqlkv.workloads import writes as w
from sqlkv.workloads.base import (
    Rows,
    Scale,
    Workload,
    WorkloadRun,
    dump,
    integrity_ok,
    timed_run,
)

_ALL = [
    Workload("insert_single", "INSERT x N, autocommit", w.insert_single, w.create_empty_items),
    Workload("insert_txn", "INSERT x N in one transaction", w.insert_txn, w.create_empty_items),
    Workload(
        "insert_txn_10k",
        "INSERT x 10,000 in one transaction",
        w.insert_txn_10k,
        w.create_empty_items,
    ),
    Workload("batch_insert", "multi-row INSERTs", w.batch_insert, w.create_empty_items),
    Workload("point_reads", "lookups by primary key", reads.point_reads, w.create_table_items),
    Workload("full_scan", "aggregate over every row", reads.full_scan, reads.create_scan_items),
    Workload(
        "indexed_range_scan",
        "range queries on an indexed column",
        reads.indexed_range_scan,
        reads.create_indexed_items,
    ),
    Workload(
        "unindexed_range_scan",
        "range queries on a column without index",
        reads.unindexed_range_scan,
        reads.create_plain_items,
    ),
    Workload("bulk_update", "UPDATE of 1,000 rows", w.bulk_update, w.create_table_items),
    Workload("bulk_delete", "DELETEs of many rows", w.bulk_delete, w.create_table_items),
    Workload("hot_row_updates", "UPDATE one row x 100", w.hot_row_updates, w.create_counters),
    Workload("delete_vacuum", "DELETE then VACUUM", m.delete_vacuum, m.create_wide_items),
    Workload("large_payloads", "50 kB blob INSERTs", w.large_payloads, w.create_blobs),
    Workload("large_txn_500k", "one 500 KB transaction", w.large_txn_500k, w.create_empty_items),
    Workload("large_txn_10m", "one 10 MB transaction", w.large_txn_10m, w.create_empty_items),
    Workload("large_txn_50m", "one 50 MB transaction", w.large_txn_50m, w.create_empty_items),
    Workload("oltp_small", "mixed OLTP, small database", oltp.oltp_small, oltp.create_bank_small),
    Workload("oltp_large", "mixed OLTP, large database", oltp.oltp_large, oltp.create_bank_large),
    Workload("json_insert_query", "JSON insert and query", queries.json_insert_query),
    Workload(
        "json_each_aggregation",
        "json_each aggregation",
        queries.json_each_aggregation,
        queries.create_docs,
    ),
    Workload(
        "complex_aggregation",
        "grouped aggregates",
        queries.complex_aggregation,
        queries.create_analytics,
    ),
    Workload(
        "subquery", "scalar, IN, EXISTS subqueries", queries.subquery, queries.create_analytics
    ),
    Workload("join", "three-way join", queries.join, queries.create_analytics),
    Workload(
        "cte_window",
        "recursive CTE and window functions",
        queries.cte_window,
        queries.create_analytics,
    ),
    Workload("many_small_tables", "many small tables", m.many_small_tables),
    Workload("create_index", "CREATE INDEX on 10,000 rows", m.create_index, w.create_table_items),
    Workload(
        "growing_aggregation",
        "insert batches, aggregate after each",
        queries.growing_aggregation,
        w.create_empty_items,
    ),
    Workload("churn", "insert/delete sliding window", m.churn),
    Workload("truncate_regrow", "empty, VACUUM, refill", m.truncate_regrow),
    Workload(
        "cold_start",
        "first queries on a reopened large database",
        m.cold_start,
        m.create_large_database,
        cold=True,
    ),
    Workload(
        "cold_full_scan",
        "scan of a 50 MiB table after reopening",
        m.cold_full_scan,
        m.create_scan_table,
        cold=True,
    ),
]

WORKLOADS: dict[str, Workload] = {wl.name: wl for wl in _ALL}
"""Every §7 workload by name, in the §7 order."""

__all__ = [
    "WORKLOADS",
    "Rows",
    "Scale",
    "Workload",
    "WorkloadRun",
    "dump",
    "integrity_ok",
    "timed_run",
]
