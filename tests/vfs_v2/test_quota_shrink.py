"""At its quota a database can always be shrunk: DELETE, DROP TABLE, VACUUM and a
truncating transaction are accepted, growth is refused with a message that says what
works, and compaction then brings the stored bytes back under the quota."""

from __future__ import annotations

import apsw
import pytest
from vfs_support import integrity, rows

import sqlkv
from sqlkv.engine import Engine, EngineConfig
from sqlkv.errors import QuotaExceeded
from sqlkv.store import Store

QUOTA = 600_000


def fill_to_quota(c: apsw.Connection) -> int:
    """Insert random rows until the quota refuses one; the number of rows kept."""
    c.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)")
    c.execute("CREATE TABLE u(v BLOB)")
    c.execute("INSERT INTO u VALUES (randomblob(60000))")
    for n in range(1000):
        try:
            c.execute("INSERT INTO t(v) VALUES (randomblob(20000))")
        except apsw.FullError as exc:
            assert isinstance(exc.__cause__, QuotaExceeded)
            message = str(exc.__cause__)
            assert "DELETE" in message and "VACUUM" in message, message
            return n
    raise AssertionError("the quota never refused a commit")


def test_delete_drop_and_vacuum_are_accepted_at_the_quota(store: Store) -> None:
    engine = Engine(store, EngineConfig(default_quota_bytes=QUOTA))
    c = sqlkv.connect("db", engine=engine)
    kept = fill_to_quota(c)
    assert kept > 5
    # growth is still refused
    with pytest.raises(apsw.FullError):
        c.execute("INSERT INTO t(v) VALUES (randomblob(20000))")
    # shrinking is not
    c.execute("DELETE FROM t WHERE id % 2 = 0")
    c.execute("DROP TABLE u")
    c.execute("VACUUM")
    c.execute("DELETE FROM t WHERE id > 4")
    with c:  # a transaction that truncates the file
        c.execute("DELETE FROM t")
    c.execute("VACUUM")
    assert rows(c, "SELECT count(*) FROM t") == [(0,)]
    assert integrity(c) == "ok"
    c.close()
    head = engine.compact_until_done("db")
    assert head.storage_used <= QUOTA
    c = sqlkv.connect("db", engine=engine)
    c.execute("INSERT INTO t(v) VALUES (randomblob(20000))")  # room again
    assert rows(c, "SELECT count(*) FROM t") == [(1,)]
    c.close()
