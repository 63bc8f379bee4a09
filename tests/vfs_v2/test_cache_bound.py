"""The page cache stays within its bounds: its own, and the budget shared by every cache."""

from __future__ import annotations

import tracemalloc

from vfs_support import Opener, rows

from sqlkv.vfs.v2.cache import MIN_PAGES, MemoryBudget, PageCache, default_cache_bytes
from sqlkv.vfs.v2.config import VfsConfig

MiB = 1024 * 1024


def test_scan_of_ten_times_the_cache_stays_within_the_bound(open_mem: Opener) -> None:
    conn = open_mem()
    with conn:
        conn.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)")
        conn.executemany("INSERT INTO t(v) VALUES (randomblob(1000))", [()] * 12_000)
    pages = rows(conn, "PRAGMA page_count")[0][0]
    conn.close()

    bound = 1 * MiB
    assert pages * 4096 >= 10 * bound
    cold = open_mem(cache_size=bound)
    cold.execute("PRAGMA cache_size=-256")  # keep SQLite's own pager small too
    cache = cold.sqlkv_file.cache
    peak_seen = 0
    orig_put = cache.put

    def put(pgno: int, page: bytes) -> None:
        nonlocal peak_seen
        orig_put(pgno, page)
        peak_seen = max(peak_seen, cache.bytes_used)

    cache.put = put  # type: ignore[method-assign]
    tracemalloc.start()
    try:
        # the engine loads its page index of the database once, on the first read: not ours
        assert rows(cold, "SELECT length(v) FROM t WHERE id = 11999") == [(1000,)]
        tracemalloc.reset_peak()
        base, _ = tracemalloc.get_traced_memory()
        assert rows(cold, "SELECT count(*), sum(length(v)) FROM t") == [(12_000, 12_000_000)]
        traced_now, traced_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak_seen <= bound
    assert cache.peak_bytes <= bound
    assert cold.sqlkv_stats.pages_fetched >= pages - 300  # it really read the database
    # Python memory after the scan: the cache; at its peak: the cache plus one get_pages
    # answer in flight (the window is capped at half the cache) with the engine's decoding
    # of the LTX parts holding it (up to 1 MiB each): a constant, not the database's size
    assert traced_now - base <= bound + 512 * 1024, traced_now - base
    assert traced_peak - base <= bound + 4 * MiB, traced_peak - base


def test_lru_evicts_least_recently_used_whole_pages() -> None:
    evicted: list[int] = []
    cache = PageCache(3 * 4096, on_evict=lambda pgno, page: evicted.append(pgno))
    for pgno in (1, 2, 3):
        cache.put(pgno, bytes(4096))
    assert cache.get(1) is not None  # 2 is now the oldest
    cache.put(4, bytes(4096))
    assert evicted == [2]
    assert 2 not in cache and len(cache) == 3
    cache.discard_above(3)
    assert 4 not in cache


def test_zero_sized_cache_holds_nothing() -> None:
    cache = PageCache(0)
    cache.put(1, bytes(4096))
    assert len(cache) == 0 and cache.get(1) is None


def test_caches_sharing_a_budget_give_back_their_own_pages_past_it() -> None:
    budget = MemoryBudget(400 * 4096)
    a = PageCache(10_000 * 4096, budget=budget)
    b = PageCache(10_000 * 4096, budget=budget)
    for pgno in range(1, 301):
        a.put(pgno, bytes(4096))
    for pgno in range(1, 1001):
        b.put(pgno, bytes(4096))
    # the cache that grew past the budget evicted its own pages, down to its floor
    assert (len(a), len(b)) == (300, MIN_PAGES)
    assert budget.used_bytes == (300 + MIN_PAGES) * 4096
    a.clear()
    b.discard_above(900)  # b holds the last 256 pages put: 745..1000
    assert budget.used_bytes == len(b) * 4096 == 156 * 4096


def test_default_bound_is_a_quarter_of_memory_and_at_least_64_mib() -> None:
    assert default_cache_bytes() >= 64 * 1024 * 1024
    assert VfsConfig().cache_bytes == default_cache_bytes()
