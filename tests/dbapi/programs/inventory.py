"""A small inventory program written against the stdlib ``sqlite3`` module, as found in the
wild (tests run it unchanged but for its import line). ``run(database)`` returns a report."""

import datetime
import sqlite3

SCHEMA = """
CREATE TABLE IF NOT EXISTS product (
    id INTEGER PRIMARY KEY,
    sku TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    price REAL NOT NULL CHECK (price >= 0)
);
CREATE TABLE IF NOT EXISTS movement (
    id INTEGER PRIMARY KEY,
    product_id INTEGER NOT NULL REFERENCES product(id),
    qty INTEGER NOT NULL,
    at TIMESTAMP NOT NULL
);
CREATE INDEX IF NOT EXISTS movement_product ON movement(product_id);
"""


def open_db(database):
    conn = sqlite3.connect(database, detect_types=sqlite3.PARSE_DECLTYPES)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA foreign_keys = ON")
    conn.executescript(SCHEMA)
    conn.create_function("cents", 1, lambda price: round(price * 100), deterministic=True)
    return conn


def add_product(conn, sku, name, price):
    try:
        with conn:
            cur = conn.execute(
                "INSERT INTO product(sku, name, price) VALUES (?, ?, ?)", (sku, name, price)
            )
            return cur.lastrowid
    except sqlite3.IntegrityError:
        return None


def record_movements(conn, rows):
    start = datetime.datetime(2024, 1, 1, 9, 0)
    with conn:
        cur = conn.executemany(
            "INSERT INTO movement(product_id, qty, at) VALUES (?, ?, ?)",
            [(pid, qty, start + datetime.timedelta(hours=i)) for i, (pid, qty) in enumerate(rows)],
        )
        return cur.rowcount


def stock_report(conn):
    cur = conn.cursor()
    cur.arraysize = 2
    cur.execute(
        """SELECT p.sku, p.name, cents(p.price) AS cents, coalesce(sum(m.qty), 0) AS stock,
                  max(m.at) AS "last [timestamp]"
           FROM product p LEFT JOIN movement m ON m.product_id = p.id
           GROUP BY p.id ORDER BY p.sku"""
    )
    columns = [d[0] for d in cur.description]
    report = []
    while True:
        batch = cur.fetchmany()
        if not batch:
            break
        report.extend({k: row[k] for k in row.keys()} for row in batch)  # noqa: SIM118 - a Row iterates its values
    return columns, report


def run(database):
    conn = open_db(database)
    ids = [
        add_product(conn, "A-1", "anvil", 120.5),
        add_product(conn, "B-2", "bucket", 3.25),
        add_product(conn, "A-1", "duplicate anvil", 1.0),
    ]
    errors = []
    try:
        add_product(conn, "C-3", "negative", -1)
    except sqlite3.IntegrityError as exc:
        errors.append(type(exc).__name__)
    try:
        with conn:
            conn.execute(
                "INSERT INTO movement(product_id, qty, at) VALUES (99, 1, ?)",
                (datetime.datetime(2024, 1, 1),),
            )
    except sqlite3.IntegrityError as exc:
        errors.append(type(exc).__name__)
    moved = record_movements(conn, [(ids[0], 10), (ids[1], 5), (ids[0], -3)])
    first_at = conn.execute("SELECT at FROM movement ORDER BY id LIMIT 1").fetchone()["at"]
    columns, report = stock_report(conn)
    conn.execute("UPDATE product SET price = price * 2 WHERE sku = ?", ("B-2",))
    conn.rollback()
    dump = [line for line in conn.iterdump() if line.startswith("INSERT")]
    conn.close()
    again = open_db(database)
    count = again.execute("SELECT count(*) FROM product").fetchone()[0]
    again.close()
    return {
        "ids": ids,
        "errors": errors,
        "moved": moved,
        "first_at": first_at,
        "columns": columns,
        "report": report,
        "dump_inserts": len(dump),
        "products_after_reopen": count,
    }
