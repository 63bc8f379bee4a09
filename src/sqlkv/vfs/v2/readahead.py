"""Adaptive read-ahead: large fetches for scans, single pages for random access.

Only cache misses drive it. A miss close to the previous fetch (within a few windows of it,
on either side: B-tree leaves of a table are laid out mostly, not strictly, in order, and a
scan jumps back and forth over short distances) is taken as a scan, and the window doubles
up to ``max_pages``. A miss anywhere else is random access: the window falls to a quarter,
so point queries soon fetch only what they ask for.

The window counts pages to fetch, not a span: pages already cached or buffered are skipped
(up to a span of four windows), so the holes a scan left behind are filled in one fetch.
With a window of W a scan of N pages costs about log2(W) + N/W fetches.
"""

from __future__ import annotations

from collections.abc import Callable


class ReadAhead:
    def __init__(self, max_pages: int, *, first_window: int = 8, slack: int = 16) -> None:
        self.max_pages = max_pages
        self.first_window = min(first_window, max_pages)
        self.slack = slack
        self.window = 0
        self._lo: int | None = None  # first and last page of the previous fetch
        self._hi = 0

    def plan(self, pgno: int, wanted: Callable[[int], bool], last: int) -> list[int]:
        """Pages to fetch for a miss on ``pgno``: itself, then up to ``window`` pages after
        it that ``wanted`` accepts, none past ``last``."""
        reach = 4 * self.window + self.slack
        near = self._lo is not None and self._lo - reach <= pgno <= self._hi + reach
        if near:
            self.window = min(self.max_pages, max(self.first_window, self.window * 2))
        else:
            self.window //= 4
        out = [pgno]
        end = min(last, pgno + 4 * self.window + self.slack)
        p = pgno + 1
        while len(out) <= self.window and p <= end:
            if wanted(p):
                out.append(p)
            p += 1
        self._lo, self._hi = pgno, out[-1]
        return out

    def reset(self) -> None:
        self.window = 0
        self._lo = None
