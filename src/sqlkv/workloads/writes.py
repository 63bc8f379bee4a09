"""Write workloads of docs/design.md §7: inserts of every shape, bulk changes, large payloads and
large transactions."""

from __future__ import annotations

import apsw

from sqlkv.workloads.base import (
    ITEMS_INSERT,
    ITEMS_SCHEMA,
    Rows,
    Scale,
    create_items,
    item_rows,
    items_summary,
    query,
    rng,
    text,
)


def create_empty_items(conn: apsw.Connection, scale: Scale) -> None:
    conn.execute(ITEMS_SCHEMA)


def create_table_items(conn: apsw.Connection, scale: Scale) -> None:
    create_items(conn, item_rows(rng(1), scale.table_rows))


def insert_single(conn: apsw.Connection, scale: Scale) -> Rows:
    """One INSERT per transaction (autocommit)."""
    for row in item_rows(rng(2), scale.single_inserts):
        conn.execute(ITEMS_INSERT, row)
    return items_summary(conn)


def _insert_in_one_transaction(conn: apsw.Connection, count: int, salt: int) -> Rows:
    rows = item_rows(rng(salt), count)
    with conn:
        for row in rows:
            conn.execute(ITEMS_INSERT, row)
    return items_summary(conn)


def insert_txn(conn: apsw.Connection, scale: Scale) -> Rows:
    """``txn_inserts`` INSERT statements in one transaction."""
    return _insert_in_one_transaction(conn, scale.txn_inserts, 3)


def insert_txn_10k(conn: apsw.Connection, scale: Scale) -> Rows:
    """``big_txn_inserts`` (10,000 at full scale) INSERT statements in one transaction."""
    return _insert_in_one_transaction(conn, scale.big_txn_inserts, 4)


def batch_insert(conn: apsw.Connection, scale: Scale) -> Rows:
    """Multi-row INSERT statements of ``batch_size`` rows, one transaction each."""
    rows = item_rows(rng(5), scale.batch_rows)
    for start in range(0, len(rows), scale.batch_size):
        batch = rows[start : start + scale.batch_size]
        values = ", ".join(["(?, ?, ?, ?, ?)"] * len(batch))
        conn.execute(
            f"INSERT INTO items(id, name, category, amount, payload) VALUES {values}",
            tuple(v for row in batch for v in row),
        )
    return items_summary(conn)


def _every_nth(scale: Scale) -> int:
    return max(1, scale.table_rows // scale.bulk_rows)


def bulk_update(conn: apsw.Connection, scale: Scale) -> Rows:
    """One UPDATE of ``bulk_rows`` rows spread over the whole table."""
    conn.execute(
        "UPDATE items SET amount = amount + 1.25, name = name || '+' WHERE id % ? = 0",
        (_every_nth(scale),),
    )
    return items_summary(conn)


def bulk_delete(conn: apsw.Connection, scale: Scale) -> Rows:
    """One DELETE of ``bulk_rows`` consecutive rows, then one of every nth row left."""
    first = scale.table_rows // 4
    conn.execute("DELETE FROM items WHERE id BETWEEN ? AND ?", (first, first + scale.bulk_rows - 1))
    conn.execute("DELETE FROM items WHERE id % ? = 1", (_every_nth(scale),))
    return items_summary(conn)


def create_counters(conn: apsw.Connection, scale: Scale) -> None:
    with conn:
        conn.execute("CREATE TABLE counters(id INTEGER PRIMARY KEY, n INTEGER, note TEXT)")
        conn.executemany("INSERT INTO counters VALUES (?, 0, '')", [(i,) for i in range(1, 11)])


def hot_row_updates(conn: apsw.Connection, scale: Scale) -> Rows:
    """``hot_updates`` autocommit UPDATEs of the same row."""
    r = rng(6)
    for _ in range(scale.hot_updates):
        conn.execute("UPDATE counters SET n = n + 1, note = ? WHERE id = 3", (text(r, 40),))
    return query(conn, "SELECT id, n, note FROM counters ORDER BY id")


def create_blobs(conn: apsw.Connection, scale: Scale) -> None:
    conn.execute("CREATE TABLE blobs(id INTEGER PRIMARY KEY, kind TEXT, data BLOB NOT NULL)")


def large_payloads(conn: apsw.Connection, scale: Scale) -> Rows:
    """``payload_rows`` autocommit INSERTs of ``payload_bytes`` of incompressible bytes."""
    r = rng(7)
    for i in range(scale.payload_rows):
        conn.execute(
            "INSERT INTO blobs(id, kind, data) VALUES (?, ?, ?)",
            (i + 1, f"kind-{i % 3}", r.randbytes(scale.payload_bytes)),
        )
    return query(
        conn, "SELECT id, kind, length(data), hex(substr(data, -16)) FROM blobs ORDER BY id"
    )


def _large_txn(conn: apsw.Connection, total_bytes: int, salt: int) -> Rows:
    payload = 1_000
    rows = item_rows(rng(salt), max(1, total_bytes // payload), payload=payload)
    with conn:
        conn.executemany(ITEMS_INSERT, rows)
    return items_summary(conn)


def large_txn_500k(conn: apsw.Connection, scale: Scale) -> Rows:
    """One transaction inserting ``large_txn_bytes[0]`` (500 KB) of rows."""
    return _large_txn(conn, scale.large_txn_bytes[0], 8)


def large_txn_10m(conn: apsw.Connection, scale: Scale) -> Rows:
    """One transaction inserting ``large_txn_bytes[1]`` (10 MB) of rows."""
    return _large_txn(conn, scale.large_txn_bytes[1], 9)


def large_txn_50m(conn: apsw.Connection, scale: Scale) -> Rows:
    """One transaction inserting ``large_txn_bytes[2]`` (50 MB) of rows."""
    return _large_txn(conn, scale.large_txn_bytes[2], 10)
