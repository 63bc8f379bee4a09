"""Learned preload and the cold open's cost, counted: engine calls with the client counters,
store operations with ``Store.stats`` (docs/open-and-preload.md)."""

from __future__ import annotations

import random

from vfs_support import Opener, rows

from sqlkv.store import Store
from sqlkv.vfs.v2.learn import HINT_LEAVES, HINT_MAX_PAGES, FirstReads

MiB = 1024 * 1024


def _queries(conn: object, keys: list[int]) -> None:
    for k in keys:
        got = rows(conn, "SELECT length(v) FROM t WHERE id = ?", (k,))  # type: ignore[arg-type]
        assert got == [(1000,)]


def test_reopen_and_the_same_ten_point_queries_on_50_mb_cost_at_most_3_engine_calls(
    open_mem: Opener,
) -> None:
    conn = open_mem(compaction=False)
    with conn:
        conn.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)")
        conn.executemany("INSERT INTO t(v) VALUES (randomblob(1000))", [()] * (50 * 1024))
    assert rows(conn, "PRAGMA page_count")[0][0] * 4096 >= 50 * MiB
    conn.close()
    keys = random.Random(11).sample(range(1, 50 * 1024 + 1), 10)

    first = open_mem(compaction=False)
    _queries(first, keys)
    assert first.sqlkv_stats.get_pages_calls >= 10  # page 1 only: every query misses
    first.close()
    assert first.sqlkv_stats.hints_saved == 1

    again = open_mem(compaction=False)
    _queries(again, keys)
    spent = again.sqlkv_stats.snapshot()
    again.close()
    assert spent.round_trips <= 3, spent
    assert spent.round_trips == 1, "the open returned every page the queries read"
    assert again.sqlkv_stats.hints_saved == 0, "the hint was right: nothing to save"


def test_a_database_within_the_preload_budget_needs_no_hint(open_db: Opener) -> None:
    conn = open_db()
    with conn:
        conn.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)")
        conn.executemany("INSERT INTO t(v) VALUES (randomblob(1000))", [()] * 200)
    conn.close()
    again = open_db()
    _queries(again, [1, 100, 200])
    again.close()
    assert (again.sqlkv_stats.round_trips, again.sqlkv_stats.hints_saved) == (1, 0)


def test_cold_open_and_first_point_query_is_two_store_operations(
    open_db: Opener, store: Store
) -> None:
    conn = open_db()
    conn.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)")
    conn.execute("INSERT INTO t(v) VALUES (randomblob(1000))")
    conn.close()
    before = store.stats.snapshot()
    cold = open_db(compaction=False)
    _queries(cold, [1])
    assert (store.stats - before).round_trips == 2, "one multi-range read, the commit"
    assert cold.sqlkv_stats.round_trips == 1


def test_the_hint_follows_what_the_last_owner_read(open_mem: Opener) -> None:
    conn = open_mem(compaction=False)
    with conn:
        conn.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)")
        conn.executemany("INSERT INTO t(v) VALUES (randomblob(1000))", [()] * 4000)
    conn.close()
    for keys in ([5, 3000, 1500], [1200, 3999, 2500]):
        reader = open_mem(compaction=False)
        _queries(reader, keys)
        reader.close()
        assert reader.sqlkv_stats.hints_saved == 1  # three new leaves: a new hint
        follower = open_mem(compaction=False)
        _queries(follower, keys)
        assert follower.sqlkv_stats.round_trips == 1
        follower.close()


def test_a_connection_that_missed_few_pages_leaves_the_hint_as_it_is(open_mem: Opener) -> None:
    conn = open_mem(compaction=False)
    with conn:
        conn.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)")
        conn.executemany("INSERT INTO t(v) VALUES (randomblob(1000))", [()] * 4000)
    conn.close()
    reader = open_mem(compaction=False)
    _queries(reader, [5, 3000, 1500])
    reader.close()
    one = open_mem(compaction=False)
    _queries(one, [5, 77])  # one leaf more than the hint: not worth a call
    one.close()
    assert (one.sqlkv_stats.get_pages_calls, one.sqlkv_stats.hints_saved) == (1, 0)


def _page(kind: int) -> bytes:
    return bytes([kind]) + bytes(4095)


def test_the_hint_puts_interior_pages_first_and_keeps_few_leaves() -> None:
    reads = FirstReads(1000)
    reads.note(1, bytes(100) + bytes([0x0D]) + bytes(3995))
    for pgno in range(2, 200):
        reads.note(pgno, _page(0x05 if pgno % 50 == 0 else 0x0D))
    hint = reads.hint(frozenset({1}), size_pages=10_000)
    assert hint is not None
    assert hint[:5] == [1, 50, 100, 150, 2]
    assert len(hint) == 4 + HINT_LEAVES
    many = FirstReads(1000)
    for pgno in range(1, 500):
        many.note(pgno, _page(0x05))
    assert many.hint(frozenset({1}), size_pages=10_000) == list(range(1, HINT_MAX_PAGES + 1))


def test_a_hint_mostly_unused_is_replaced_and_a_good_one_kept() -> None:
    reads = FirstReads(256)
    for pgno in (1, 2, 3):
        reads.note(pgno, _page(0x0D))
    assert reads.hint(frozenset({1, 2, 3, 4}), size_pages=10_000) is None
    assert reads.hint(frozenset(range(1, 100)), size_pages=10_000) == [1, 2, 3]
    assert reads.hint(frozenset(range(1, 100)), size_pages=200) is None  # arrives whole
