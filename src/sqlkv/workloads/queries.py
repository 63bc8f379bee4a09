"""Query workloads of docs/design.md §7: JSON, aggregation, subqueries, joins, CTEs and windows."""

from __future__ import annotations

import json

import apsw

from sqlkv.workloads.base import (
    CATEGORIES,
    ITEMS_INSERT,
    Rows,
    Scale,
    create_items,
    item_rows,
    name,
    query,
    rng,
    text,
)

KINDS = ("order", "refund", "signup", "login", "review")
TAGS = ("red", "green", "blue", "new", "sale", "gift", "bulk", "vip")


def _docs(scale: Scale, salt: int) -> list[tuple[int, str]]:
    r = rng(salt)
    out = []
    for i in range(1, scale.json_docs + 1):
        doc = {
            "kind": r.choice(KINDS),
            "user": {"name": name(r), "age": r.randint(18, 90)},
            "score": r.randint(0, 1_000),
            "tags": r.sample(TAGS, r.randint(0, 4)),
            "note": text(r, r.randint(10, 200)),
        }
        out.append((i, json.dumps(doc, sort_keys=True)))
    return out


def json_insert_query(conn: apsw.Connection, scale: Scale) -> Rows:
    """Insert ``json_docs`` JSON documents in one transaction, then query inside them."""
    with conn:
        conn.execute("CREATE TABLE docs(id INTEGER PRIMARY KEY, doc TEXT NOT NULL)")
        conn.executemany("INSERT INTO docs VALUES (?, ?)", _docs(scale, 40))
    return query(
        conn,
        "SELECT doc ->> '$.kind', count(*), sum(doc ->> '$.score'), max(doc ->> '$.user.age') "
        "FROM docs GROUP BY 1 ORDER BY 1",
    ) + query(
        conn,
        "SELECT id, doc ->> '$.user.name', json_array_length(doc, '$.tags') FROM docs "
        "WHERE doc ->> '$.kind' = 'review' AND doc ->> '$.score' > 900 ORDER BY id",
    )


def create_docs(conn: apsw.Connection, scale: Scale) -> None:
    with conn:
        conn.execute("CREATE TABLE docs(id INTEGER PRIMARY KEY, doc TEXT NOT NULL)")
        conn.executemany("INSERT INTO docs VALUES (?, ?)", _docs(scale, 41))


def json_each_aggregation(conn: apsw.Connection, scale: Scale) -> Rows:
    """Aggregate over the elements of a JSON array in every document (``json_each``)."""
    return query(
        conn,
        "SELECT t.value, count(*), sum(d.doc ->> '$.score'), count(DISTINCT d.doc ->> '$.kind') "
        "FROM docs d, json_each(d.doc, '$.tags') t GROUP BY t.value ORDER BY t.value",
    )


def create_analytics(conn: apsw.Connection, scale: Scale) -> None:
    """``items`` plus a ``categories`` table and an ``orders`` table that joins both."""
    r = rng(42)
    create_items(conn, item_rows(r, scale.table_rows))
    with conn:
        conn.execute(
            "CREATE TABLE categories(id INTEGER PRIMARY KEY, label TEXT NOT NULL, parent INTEGER)"
        )
        conn.executemany(
            "INSERT INTO categories VALUES (?, ?, ?)",
            [(c, name(r), c // 10 if c >= 10 else None) for c in range(CATEGORIES)],
        )
        conn.execute(
            "CREATE TABLE orders(id INTEGER PRIMARY KEY, item INTEGER NOT NULL, "
            "customer INTEGER NOT NULL, quantity INTEGER NOT NULL, day INTEGER NOT NULL)"
        )
        conn.executemany(
            "INSERT INTO orders VALUES (?, ?, ?, ?, ?)",
            [
                (
                    i,
                    r.randint(1, scale.table_rows),
                    r.randint(1, 200),
                    r.randint(1, 9),
                    r.randint(0, 364),
                )
                for i in range(1, 2 * scale.table_rows + 1)
            ],
        )
        conn.execute("CREATE INDEX orders_item ON orders(item)")


def complex_aggregation(conn: apsw.Connection, scale: Scale) -> Rows:
    """Grouped aggregates with filters, HAVING, DISTINCT and CASE."""
    return query(
        conn,
        "SELECT category, count(*), round(avg(amount), 6), min(amount), max(amount), "
        "count(DISTINCT substr(name, 1, 2)), "
        "sum(CASE WHEN amount > 500 THEN 1 ELSE 0 END), "
        "total(amount) FILTER (WHERE length(payload) > 50) "
        "FROM items GROUP BY category HAVING count(*) > 1 ORDER BY category",
    ) + query(
        conn,
        "SELECT o.day / 30 AS month, count(*), sum(o.quantity), "
        "round(total(o.quantity * i.amount), 2) "
        "FROM orders o JOIN items i ON i.id = o.item GROUP BY month ORDER BY month",
    )


def subquery(conn: apsw.Connection, scale: Scale) -> Rows:
    """Correlated and uncorrelated subqueries: scalar, IN, EXISTS."""
    return (
        query(
            conn,
            "SELECT id, amount FROM items i WHERE amount > "
            "(SELECT avg(amount) * 1.9 FROM items j WHERE j.category = i.category) "
            "ORDER BY id LIMIT 200",
        )
        + query(
            conn,
            "SELECT count(*), total(amount) FROM items WHERE id IN "
            "(SELECT item FROM orders WHERE quantity >= 8)",
        )
        + query(
            conn,
            "SELECT c.id, c.label FROM categories c WHERE NOT EXISTS "
            "(SELECT 1 FROM items i WHERE i.category = c.id AND i.amount > 995) ORDER BY c.id",
        )
    )


def join(conn: apsw.Connection, scale: Scale) -> Rows:
    """A three-way join grouped by customer, and a self join on category parents."""
    return query(
        conn,
        "SELECT o.customer, count(*), sum(o.quantity), round(total(o.quantity * i.amount), 2), "
        "count(DISTINCT c.id) FROM orders o JOIN items i ON i.id = o.item "
        "JOIN categories c ON c.id = i.category GROUP BY o.customer "
        "ORDER BY 4 DESC, o.customer LIMIT 50",
    ) + query(
        conn,
        "SELECT p.id, count(c.id), count(i.id) FROM categories p "
        "LEFT JOIN categories c ON c.parent = p.id LEFT JOIN items i ON i.category = c.id "
        "GROUP BY p.id ORDER BY p.id",
    )


def cte_window(conn: apsw.Connection, scale: Scale) -> Rows:
    """A recursive CTE over category parents and window functions over items."""
    return query(
        conn,
        "WITH RECURSIVE tree(id, depth, path) AS ("
        " SELECT id, 0, label FROM categories WHERE parent IS NULL"
        " UNION ALL SELECT c.id, t.depth + 1, t.path || '/' || c.label"
        " FROM categories c JOIN tree t ON c.parent = t.id)"
        " SELECT id, depth, path FROM tree ORDER BY id",
    ) + query(
        conn,
        "WITH ranked AS (SELECT id, category, amount,"
        " rank() OVER (PARTITION BY category ORDER BY amount DESC, id) AS rnk,"
        " round(sum(amount) OVER (PARTITION BY category ORDER BY id"
        "  ROWS BETWEEN 2 PRECEDING AND CURRENT ROW), 2) AS moving,"
        " lag(id) OVER (PARTITION BY category ORDER BY id) AS previous"
        " FROM items)"
        " SELECT category, id, amount, moving, previous FROM ranked WHERE rnk <= 3"
        " ORDER BY category, rnk",
    )


def growing_aggregation(conn: apsw.Connection, scale: Scale) -> Rows:
    """``growth_rounds`` rounds of: insert a batch of rows, then aggregate the whole table."""
    r = rng(43)
    batch = max(1, scale.table_rows // scale.growth_rounds)
    out: Rows = []
    for round_no in range(scale.growth_rounds):
        with conn:
            conn.executemany(ITEMS_INSERT, item_rows(r, batch, first_id=round_no * batch + 1))
        out.extend(
            query(
                conn,
                "SELECT category % 5, count(*), round(total(amount), 2), max(id) "
                "FROM items GROUP BY 1 ORDER BY 1",
            )
        )
    return out
