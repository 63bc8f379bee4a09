"""Round trips asserted with the client counters: the costs listed at the end of
docs/design.md §5."""

from __future__ import annotations

import pytest
from vfs_support import Opener, integrity, rows

from sqlkv.vfs.v2.file import ZERO_PAGE

MiB = 1024 * 1024


def test_one_mib_transaction_into_empty_database_is_one_commit_and_no_fetch(
    open_db: Opener,
) -> None:
    conn = open_db()
    before = conn.sqlkv_stats.snapshot()
    with conn:
        conn.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)")
        conn.executemany("INSERT INTO t(v) VALUES (randomblob(?))", [(1024,)] * 1024)
    spent = conn.sqlkv_stats - before
    assert spent.get_pages_calls == 0
    assert spent.commits == 1
    assert spent.round_trips == 1
    assert spent.bytes_sent >= MiB


def test_cold_scan_of_50_mib_table_takes_at_most_60_fetches(open_mem: Opener) -> None:
    conn = open_mem()
    with conn:
        conn.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)")
        conn.executemany("INSERT INTO t(v) VALUES (randomblob(1000))", [()] * (50 * 1024))
    pages = rows(conn, "PRAGMA page_count")[0][0]
    assert pages * 4096 >= 50 * MiB
    conn.close()
    cold = open_mem()
    before = cold.sqlkv_stats.snapshot()
    assert rows(cold, "SELECT count(*), sum(length(v)) FROM t") == [(50 * 1024, 50 * 1024 * 1000)]
    spent = cold.sqlkv_stats - before
    assert spent.get_pages_calls <= 60, spent
    assert spent.commits == 0


def test_point_query_after_open_costs_only_the_open(open_db: Opener) -> None:
    conn = open_db()
    with conn:
        conn.execute("CREATE TABLE settings(key TEXT PRIMARY KEY, value TEXT)")
        conn.executemany(
            "INSERT INTO settings VALUES (?, ?)", [(f"k{i}", f"v{i}" * 20) for i in range(200)]
        )
    conn.close()
    cold = open_db()
    assert rows(cold, "SELECT value FROM settings WHERE key = 'k42'") == [("v42" * 20,)]
    assert cold.sqlkv_stats.round_trips == 1  # the open, with page 1 and its neighbours
    assert cold.sqlkv_stats.get_pages_calls == 0


def test_full_page_writes_never_fetch(open_mem: Opener) -> None:
    conn = open_mem()
    with conn:
        conn.execute("CREATE TABLE t(v BLOB)")
        conn.executemany("INSERT INTO t VALUES (randomblob(3000))", [()] * 300)
    conn.close()
    cold = open_mem(cache_size=0, preload_bytes=0)
    file = cold.sqlkv_file
    before = cold.sqlkv_stats.snapshot()
    for pgno in (2, 50, 150):  # committed pages this connection has never seen
        file.xWrite(bytes([pgno]) * 4096, (pgno - 1) * 4096)
    assert (cold.sqlkv_stats - before).round_trips == 0
    file.xWrite(b"x" * 100, 5 * 4096 + 100)  # a partial write fetches the page it patches
    assert (cold.sqlkv_stats - before).pages_fetched >= 1
    assert file.xRead(4096, 49 * 4096) == bytes([50]) * 4096


def test_rollback_after_spill_sends_nothing(open_mem: Opener) -> None:
    conn = open_mem()
    with conn:
        conn.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)")
        conn.executemany("INSERT INTO t(v) VALUES (randomblob(500))", [()] * 2000)
    conn.execute("PRAGMA cache_size=10")
    before = conn.sqlkv_stats.snapshot()
    conn.execute("BEGIN")
    conn.execute("UPDATE t SET v = randomblob(600)")
    assert conn.sqlkv_file.buffer, "the update should have spilled pages to the VFS"
    conn.execute("ROLLBACK")
    spent = conn.sqlkv_stats - before
    assert spent.commits == 0
    assert spent.bytes_sent == 0
    assert spent.unchanged_pages_dropped > 0
    assert rows(conn, "SELECT count(*) FROM t") == [(2000,)]
    assert integrity(conn) == "ok"


def test_rollback_after_spill_with_a_tiny_page_cache_sends_nothing(open_mem: Opener) -> None:
    conn = open_mem(cache_size="8 pages")  # committed copies are known by digest only
    with conn:
        conn.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)")
        conn.executemany("INSERT INTO t(v) VALUES (randomblob(500))", [()] * 2000)
    assert rows(conn, "SELECT count(*) FROM t") == [(2000,)]
    conn.execute("PRAGMA cache_size=10")
    before = conn.sqlkv_stats.snapshot()
    conn.execute("BEGIN")
    conn.execute("UPDATE t SET v = randomblob(600)")
    conn.execute("ROLLBACK")
    spent = conn.sqlkv_stats - before
    assert (spent.commits, spent.bytes_sent) == (0, 0)


def test_spilled_transaction_commits_whole(open_mem: Opener) -> None:
    conn = open_mem()
    with conn:
        conn.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)")
    conn.execute("PRAGMA cache_size=10")
    before = conn.sqlkv_stats.snapshot()
    with conn:
        conn.executemany("INSERT INTO t(v) VALUES (randomblob(2000))", [()] * 3000)
    spent = conn.sqlkv_stats - before
    assert spent.commits == 1
    assert spent.get_pages_calls == 0
    conn.close()
    again = open_mem()
    assert rows(again, "SELECT count(*), sum(length(v)) FROM t") == [(3000, 6_000_000)]
    assert integrity(again) == "ok"


@pytest.mark.parametrize("megabytes", [12])
def test_transaction_larger_than_one_commit_is_staged(open_db: Opener, megabytes: int) -> None:
    conn = open_db()
    with conn:
        conn.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)")
    before = conn.sqlkv_stats.snapshot()
    with conn:
        conn.executemany("INSERT INTO t(v) VALUES (randomblob(4000))", [()] * (megabytes * 256))
    spent = conn.sqlkv_stats - before
    assert spent.commits == 1
    assert spent.staged_commits == 1
    assert spent.stage_calls >= 3
    assert spent.finalize_calls == 1
    conn.close()
    again = open_db()
    assert rows(again, "SELECT count(*) FROM t") == [(megabytes * 256,)]
    assert integrity(again) == "ok"


def test_pages_past_the_end_read_as_zeros_without_fetching(open_mem: Opener) -> None:
    conn = open_mem()
    file = conn.sqlkv_file
    before = conn.sqlkv_stats.snapshot()
    assert file.xRead(4096, 10 * 4096) == ZERO_PAGE
    assert (conn.sqlkv_stats - before).round_trips == 0


def test_read_transaction_sends_nothing(open_mem: Opener) -> None:
    conn = open_mem()
    with conn:
        conn.execute("CREATE TABLE t(x)")
    before = conn.sqlkv_stats.snapshot()
    with conn:
        conn.execute("SELECT * FROM t").fetchall()
    assert (conn.sqlkv_stats - before).round_trips == 0
