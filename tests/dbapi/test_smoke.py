"""The DB-API module opens, writes in a transaction, commits and reads back."""

from __future__ import annotations

from pathlib import Path

import sqlkv.dbapi2 as dbapi2


def test_connect_write_commit_and_read_back(tmp_path: Path) -> None:
    store = str(tmp_path / "store")
    conn = dbapi2.connect("orders", store=store)
    conn.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)")
    cur = conn.execute("INSERT INTO t(v) VALUES (?)", ("a",))
    assert (cur.rowcount, cur.lastrowid, conn.in_transaction) == (1, 1, True)
    conn.commit()
    assert not conn.in_transaction
    conn.close()
    again = dbapi2.connect("orders", store=store)
    assert again.execute("SELECT v FROM t").fetchall() == [("a",)]
    again.close()
