"""The page cache: a bounded LRU of committed page bodies, and the process-wide memory budget
every connection's cache shares with SQLite's own page caches.

It only ever holds pages as the engine has them (fetched, preloaded, or committed by this
connection), never uncommitted writes: those live in the write buffer. Two bounds apply, in
whole pages: the connection's own ``capacity_bytes`` and the process's ``MemoryBudget``
(``PROCESS_BUDGET``). The default of both is a quarter of the machine's physical memory, at
least 64 MiB (``default_cache_bytes``), so a database that fits in memory is cached whole
without tuning, and many connections together still hold about that quarter at most: a
cache that grows past the shared budget evicts its own least recently used pages (down to
``MIN_PAGES``, 1 MiB, which each connection keeps whatever the others hold).
``bytes_used`` and ``peak_bytes`` are what tests and counters measure.

SQLite's pager cache of each connection is as large as its VFS cache (``connection.py``),
so a warm database that fits is read without a call into the VFS at all. Its memory is
inside the same budget: ``PROCESS_BUDGET`` counts SQLite's heap (``apsw.memory_used``)
with the VFS caches, and ``limit_sqlite_heap`` (at every connect) sets SQLite's soft heap
limit to the budget unless the application set one, so SQLite's caches recycle their own
pages rather than grow past it. docs/vfs.md "Memory" has the whole policy.

Hot-path costs: a hit is a dict lookup and an LRU move; a commit never scans the cache
(``discard_above`` returns at once unless the database shrank below a cached page).
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable, KeysView

import apsw

MiB = 1024 * 1024
MIN_DEFAULT_BYTES = 64 * MiB
MIN_PAGES = 256  # a cache over the shared budget keeps at least this many pages (1 MiB)


def default_cache_bytes() -> int:
    """A quarter of physical memory, at least 64 MiB (64 MiB when it cannot be known)."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return MIN_DEFAULT_BYTES
    return max(MIN_DEFAULT_BYTES, total // 4)


class MemoryBudget:
    """Bytes all the page caches sharing this budget may hold together (``with_sqlite``:
    SQLite's heap in this process counts against it too)."""

    SQLITE_REFRESH = 256
    """``add`` calls between two readings of SQLite's heap (a reading costs ~2 us: 256
    pages are 1 MiB); a total over the limit is always read afresh before it is believed."""

    def __init__(self, limit_bytes: int, *, with_sqlite: bool = False) -> None:
        self.limit_bytes = limit_bytes
        self.with_sqlite = with_sqlite
        self.used_bytes = 0
        self._sqlite_bytes = 0  # SQLite's heap at the last reading
        self._until_refresh = 0
        self._lock = threading.Lock()

    def add(self, n: int) -> bool:
        """Count ``n`` more bytes (negative: fewer); True while within the limit."""
        with self._lock:
            self.used_bytes += n
            if not self.with_sqlite:
                return self.used_bytes <= self.limit_bytes
            self._until_refresh -= 1
            if self._until_refresh < 0 or self.used_bytes + self._sqlite_bytes > self.limit_bytes:
                self._sqlite_bytes = apsw.memory_used()
                self._until_refresh = self.SQLITE_REFRESH
            return self.used_bytes + self._sqlite_bytes <= self.limit_bytes


PROCESS_BUDGET = MemoryBudget(default_cache_bytes(), with_sqlite=True)


def limit_sqlite_heap(budget: MemoryBudget = PROCESS_BUDGET) -> None:
    """Hold SQLite's heap in this process to ``budget`` with SQLite's soft heap limit
    (its page caches then recycle pages instead of growing), unless one is set already:
    by the application, or by an earlier call."""
    if apsw.soft_heap_limit(-1) == 0:
        apsw.soft_heap_limit(budget.limit_bytes)


class PageCache:
    def __init__(
        self,
        capacity_bytes: int,
        page_size: int = 4096,
        on_evict: Callable[[int, bytes], None] | None = None,
        budget: MemoryBudget | None = None,
    ) -> None:
        """``on_evict(pgno, page)`` is called for each page pushed out by a bound."""
        self.page_size = page_size
        self.on_evict = on_evict
        self.capacity_pages = capacity_bytes // page_size
        self.budget = budget if budget is not None else PROCESS_BUDGET
        self._pages: OrderedDict[int, bytes] = OrderedDict()
        self._max_pgno = 0  # no cached page is numbered above it
        self.evictions = 0
        self.peak_bytes = 0

    def __len__(self) -> int:
        return len(self._pages)

    def __contains__(self, pgno: object) -> bool:
        return pgno in self._pages

    def numbers(self) -> KeysView[int]:
        """A live view of the cached page numbers (membership tests in C, for loops that
        test many pages: the read-ahead plan)."""
        return self._pages.keys()

    @property
    def capacity_bytes(self) -> int:
        return self.capacity_pages * self.page_size

    @property
    def bytes_used(self) -> int:
        return sum(len(p) for p in self._pages.values())

    def get(self, pgno: int) -> bytes | None:
        """The page, marked most recently used; None when absent."""
        page = self._pages.get(pgno)
        if page is not None:
            self._pages.move_to_end(pgno)
        return page

    def peek(self, pgno: int) -> bytes | None:
        """The page without touching its recency."""
        return self._pages.get(pgno)

    def put(self, pgno: int, page: bytes) -> None:
        pages = self._pages
        if pgno in pages:
            pages.move_to_end(pgno)
            pages[pgno] = page
            return
        if not self.capacity_pages:
            if self.on_evict is not None:
                self.on_evict(pgno, page)
            self.evictions += 1
            return
        pages[pgno] = page
        if pgno > self._max_pgno:
            self._max_pgno = pgno
        within = self.budget.add(self.page_size)
        while len(pages) > self.capacity_pages or (not within and len(pages) > MIN_PAGES):
            old, data = pages.popitem(last=False)
            self.evictions += 1
            within = self.budget.add(-self.page_size)
            if self.on_evict is not None:
                self.on_evict(old, data)
        used = len(pages) * self.page_size
        if used > self.peak_bytes:
            self.peak_bytes = used

    def discard(self, pgnos: frozenset[int] | set[int]) -> list[int]:
        """Drop these pages (a newer commit changed them); those that were cached."""
        pages = self._pages
        if len(pgnos) > len(pages):
            doomed = [p for p in pages if p in pgnos]
        else:
            doomed = [p for p in pgnos if p in pages]
        for pgno in doomed:
            del pages[pgno]
        self.budget.add(-self.page_size * len(doomed))
        return doomed

    def discard_above(self, size_pages: int) -> None:
        """Drop every page numbered above ``size_pages`` (after the database shrank)."""
        if size_pages >= self._max_pgno:
            return
        doomed = [p for p in self._pages if p > size_pages]
        for pgno in doomed:
            del self._pages[pgno]
        self.budget.add(-self.page_size * len(doomed))
        self._max_pgno = size_pages

    def clear(self) -> None:
        self.budget.add(-self.page_size * len(self._pages))
        self._pages.clear()
        self._max_pgno = 0
