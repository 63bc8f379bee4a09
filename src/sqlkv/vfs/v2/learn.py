"""What a connection read first: the preload hint it leaves for the next open.

``FirstReads`` records the distinct pages SQLite reads from the main database file, in
order, until the preload budget is full (``preload_bytes / 4096`` pages). ``hint`` orders
them for the next owner: page 1, then B-tree interior pages (the schema and the upper levels
of every tree read: what any query needs first), then at most ``HINT_LEAVES`` = 16 other pages
(leaves and overflow pages, in read order: what these queries needed, so the same queries
next time cost no fetch, while a scan or a burst of scattered updates does not fill the
hint with leaves that the next owner would read for nothing: each costs about one blob
read at the next open). The whole hint is at most ``HINT_MAX_PAGES`` = 64 pages (and the
budget): what a wrong hint costs the next open is bounded, and the first connection that
does not use most of it replaces it.

The connection leaves the hint at close (``Connection._leave_hint``, one ``save_hint``
engine call) only when it is worth that call: when its open missed at least
``HINT_MIN_MISSES`` of the pages it read, or when more than half of what the open returned
(and at least ``HINT_MIN_UNUSED`` pages) went unread. A database the open returns whole
(at most the budget) needs no hint. docs/open-and-preload.md.
"""

from __future__ import annotations

HINT_MIN_MISSES = 3
HINT_MIN_UNUSED = 16
HINT_LEAVES = 16
HINT_MAX_PAGES = 64
INTERIOR = (0x02, 0x05)  # B-tree page types: interior index, interior table


def is_interior(pgno: int, page: bytes) -> bool:
    """Whether ``page`` is a B-tree interior page (its type byte; after the header on page 1)."""
    at = 100 if pgno == 1 else 0
    return len(page) > at and page[at] in INTERIOR


class FirstReads:
    def __init__(self, budget_pages: int) -> None:
        self.budget = budget_pages
        self.pages: dict[int, bool] = {}  # pgno -> interior, in first-read order
        self.open = budget_pages > 0  # still recording

    def note(self, pgno: int, page: bytes) -> None:
        """Record a page read (call only while ``open`` and for a page not yet recorded)."""
        self.pages[pgno] = is_interior(pgno, page)
        if len(self.pages) >= self.budget:
            self.open = False

    def hint(self, preloaded: frozenset[int], size_pages: int) -> list[int] | None:
        """The hint to leave, or None when leaving one is not worth an engine call."""
        if not self.budget or size_pages <= self.budget:
            return None
        read = set(self.pages)
        missed = len(read - preloaded)
        unused = len(preloaded - read)
        if missed < HINT_MIN_MISSES and (unused < HINT_MIN_UNUSED or unused * 2 <= len(preloaded)):
            return None
        first = [1] if 1 in self.pages else []
        interior = [p for p, inner in self.pages.items() if inner and p != 1]
        others = [p for p, inner in self.pages.items() if not inner and p != 1]
        return (first + interior + others[:HINT_LEAVES])[: min(self.budget, HINT_MAX_PAGES)]
