"""Schema and space workloads of docs/design.md §7: VACUUM, many tables, index creation, churn,
truncate and regrow, and the two cold-cache workloads."""

from __future__ import annotations

import apsw

from sqlkv.workloads.base import (
    ITEMS_INSERT,
    ITEMS_SCHEMA,
    Rows,
    Scale,
    create_items,
    fill_items,
    item_rows,
    items_summary,
    query,
    rng,
    text,
)


def create_wide_items(conn: apsw.Connection, scale: Scale) -> None:
    create_items(conn, item_rows(rng(50), scale.table_rows, payload=500))


def delete_vacuum(conn: apsw.Connection, scale: Scale) -> Rows:
    """Delete four rows in five, then VACUUM (the database file shrinks)."""
    conn.execute("DELETE FROM items WHERE id % 5 != 0")
    conn.execute("VACUUM")
    return items_summary(conn)


def many_small_tables(conn: apsw.Connection, scale: Scale) -> Rows:
    """Create ``small_tables`` tables of ten rows, one transaction each, then read them all."""
    r = rng(51)
    for t in range(scale.small_tables):
        with conn:
            conn.execute(f"CREATE TABLE small_{t:04d}(id INTEGER PRIMARY KEY, v TEXT, n INTEGER)")
            conn.executemany(
                f"INSERT INTO small_{t:04d} VALUES (?, ?, ?)",
                [(i, text(r, 30), r.randint(0, 99)) for i in range(10)],
            )
    out: Rows = query(
        conn, "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name LIKE 'small_%'"
    )
    for t in range(scale.small_tables):
        out.extend(query(conn, f"SELECT {t}, count(*), sum(n), max(v) FROM small_{t:04d}"))
    return out


def create_index(conn: apsw.Connection, scale: Scale) -> Rows:
    """CREATE INDEX on a ``table_rows`` table (10,000 rows at full scale), then use it."""
    conn.execute("CREATE INDEX items_category_amount ON items(category, amount)")
    return query(
        conn,
        "SELECT category, count(*), min(amount), max(amount) FROM items "
        "WHERE category BETWEEN 10 AND 14 AND amount > 250 GROUP BY category ORDER BY category",
    )


def churn(conn: apsw.Connection, scale: Scale) -> Rows:
    """A sliding window: each round inserts a batch and deletes the oldest batch."""
    r = rng(52)
    batch = max(1, scale.table_rows // 10)
    conn.execute(ITEMS_SCHEMA)
    out: Rows = []
    for round_no in range(scale.churn_rounds):
        with conn:
            conn.executemany(ITEMS_INSERT, item_rows(r, batch, first_id=round_no * batch + 1))
            conn.execute("DELETE FROM items WHERE id <= ?", ((round_no - 3) * batch,))
        out.extend(query(conn, "SELECT count(*), min(id), max(id) FROM items"))
    return out + items_summary(conn)


def truncate_regrow(conn: apsw.Connection, scale: Scale) -> Rows:
    """Fill a table, delete everything and VACUUM (the file shrinks), then grow it again."""
    r = rng(53)
    conn.execute(ITEMS_SCHEMA)
    out: Rows = []
    for cycle in range(scale.regrow_cycles):
        with conn:
            conn.executemany(ITEMS_INSERT, item_rows(r, scale.table_rows, payload=300))
        out.extend(items_summary(conn))
        conn.execute("DELETE FROM items")
        conn.execute("VACUUM")
        out.extend(query(conn, "SELECT ?, count(*) FROM items", (cycle,)))
    with conn:
        conn.executemany(ITEMS_INSERT, item_rows(r, scale.table_rows // 2))
    return out + items_summary(conn)


def create_large_database(conn: apsw.Connection, scale: Scale) -> None:
    """About ``cold_db_bytes`` of ``items``, indexed, plus a small lookup table."""
    fill_items(conn, scale.cold_db_bytes)
    with conn:
        conn.execute("CREATE INDEX items_name ON items(name)")
        conn.execute("CREATE TABLE settings(key TEXT PRIMARY KEY, value TEXT)")
        conn.executemany(
            "INSERT INTO settings VALUES (?, ?)", [(f"key{i}", f"value{i}") for i in range(20)]
        )


def cold_start(conn: apsw.Connection, scale: Scale) -> Rows:
    """The first queries on a freshly opened large database: schema, settings, a few rows."""
    r = rng(54)
    (rows,) = conn.execute("SELECT max(id) FROM items").fetchone()  # type: ignore[misc]
    out = query(conn, "SELECT type, name FROM sqlite_schema ORDER BY name")
    out += query(conn, "SELECT value FROM settings WHERE key = 'key7'")
    for _ in range(10):
        out += query(conn, "SELECT id, name, amount FROM items WHERE id = ?", (r.randint(1, rows),))
    return out


def create_scan_table(conn: apsw.Connection, scale: Scale) -> None:
    """About ``cold_scan_bytes`` (50 MiB at full scale) of ``items``."""
    fill_items(conn, scale.cold_scan_bytes)


def cold_full_scan(conn: apsw.Connection, scale: Scale) -> Rows:
    """A full scan that reads every byte of the table, on a freshly opened database."""
    return items_summary(conn)
