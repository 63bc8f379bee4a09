"""Read workloads of docs/design.md §7: point reads, full scans, indexed and unindexed range
scans."""

from __future__ import annotations

import apsw

from sqlkv.workloads.base import Rows, Scale, create_items, item_rows, query, rng


def create_scan_items(conn: apsw.Connection, scale: Scale) -> None:
    create_items(conn, item_rows(rng(20), scale.scan_rows))


def create_indexed_items(conn: apsw.Connection, scale: Scale) -> None:
    create_items(conn, item_rows(rng(21), scale.table_rows))
    conn.execute("CREATE INDEX items_amount ON items(amount)")


def create_plain_items(conn: apsw.Connection, scale: Scale) -> None:
    create_items(conn, item_rows(rng(21), scale.table_rows))


def point_reads(conn: apsw.Connection, scale: Scale) -> Rows:
    """``point_reads`` lookups by primary key, some of them for absent ids."""
    r = rng(22)
    out: Rows = []
    for _ in range(scale.point_reads):
        key = r.randint(1, scale.table_rows + scale.table_rows // 20)
        out.extend(query(conn, "SELECT id, name, amount FROM items WHERE id = ?", (key,)))
    return out


def full_scan(conn: apsw.Connection, scale: Scale) -> Rows:
    """Aggregates that read every row of a ``scan_rows`` table."""
    return query(
        conn,
        "SELECT count(*), total(amount), sum(length(payload)), max(name), min(payload) FROM items",
    )


def _range_queries(conn: apsw.Connection, scale: Scale) -> Rows:
    r = rng(23)
    out: Rows = []
    for _ in range(scale.range_queries):
        low = round(r.uniform(0, 990), 2)
        out.extend(
            query(
                conn,
                "SELECT count(*), total(amount), sum(length(payload)), min(id) "
                "FROM items WHERE amount BETWEEN ? AND ?",
                (low, low + 10),
            )
        )
    return out


def indexed_range_scan(conn: apsw.Connection, scale: Scale) -> Rows:
    """``range_queries`` range scans over an indexed column (each about 1% of the rows)."""
    return _range_queries(conn, scale)


def unindexed_range_scan(conn: apsw.Connection, scale: Scale) -> Rows:
    """The same range queries over the same column without an index (full scans)."""
    return _range_queries(conn, scale)
