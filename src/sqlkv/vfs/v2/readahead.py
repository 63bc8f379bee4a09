"""Adaptive sequential read-ahead.

Only cache misses drive it. A miss that lands where the previous fetch ended (or a few pages
past it: B-tree interior pages and freed pages leave small gaps) is a sign of a scan, and the
window doubles, up to ``max_pages``. Any other miss is random access, and the window falls to
a quarter, so point queries soon fetch nothing they did not ask for.

With a window of W, a scan of N pages costs about log2(W) + N/W fetches.
"""

from __future__ import annotations


class ReadAhead:
    def __init__(self, max_pages: int, *, first_window: int = 8, slack: int = 8) -> None:
        self.max_pages = max_pages
        self.first_window = min(first_window, max_pages)
        self.slack = slack
        self.window = 0
        self._next: int | None = None  # first page after the last fetch

    def on_miss(self, pgno: int) -> int:
        """How many pages after ``pgno`` to fetch along with it."""
        expected = self._next
        if expected is not None and expected <= pgno <= expected + self.slack:
            self.window = min(self.max_pages, max(self.first_window, self.window * 2))
        else:
            self.window //= 4
        self._next = pgno + 1 + self.window
        return self.window

    def reset(self) -> None:
        self.window = 0
        self._next = None
