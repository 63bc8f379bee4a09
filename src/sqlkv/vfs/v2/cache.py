"""The page cache: a bounded LRU of committed page bodies.

It only ever holds pages as the engine has them (fetched, preloaded, or committed by this
connection), never uncommitted writes: those live in the write buffer. The bound is in whole
pages; ``bytes_used`` and ``peak_bytes`` are what tests and counters measure.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable


class PageCache:
    def __init__(
        self,
        capacity_bytes: int,
        page_size: int = 4096,
        on_evict: Callable[[int, bytes], None] | None = None,
    ) -> None:
        """``on_evict(pgno, page)`` is called for each page pushed out by the bound."""
        self.page_size = page_size
        self.on_evict = on_evict
        self.capacity_pages = capacity_bytes // page_size
        self._pages: OrderedDict[int, bytes] = OrderedDict()
        self.evictions = 0
        self.peak_bytes = 0

    def __len__(self) -> int:
        return len(self._pages)

    def __contains__(self, pgno: object) -> bool:
        return pgno in self._pages

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
        while len(pages) > self.capacity_pages:
            old, data = pages.popitem(last=False)
            self.evictions += 1
            if self.on_evict is not None:
                self.on_evict(old, data)
        used = len(pages) * self.page_size
        if used > self.peak_bytes:
            self.peak_bytes = used

    def discard_above(self, size_pages: int) -> None:
        """Drop every page numbered above ``size_pages`` (after the database shrank)."""
        for pgno in [p for p in self._pages if p > size_pages]:
            del self._pages[pgno]

    def clear(self) -> None:
        self._pages.clear()
