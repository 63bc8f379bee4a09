"""A text progress bar on stderr, with no dependency.

    with Progress("import", total_bytes, enabled=None) as bar:   # None: only on a terminal
        bar.advance(4096)

It redraws at most ten times a second, shows bytes done, rate and time left, and ends its
line when closed. Disabled, it only measures (``done``, ``elapsed``, ``rate``), so the
commands can print a summary either way.
"""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import TextIO

from sqlkv.cli.common import human_bytes

WIDTH = 30
REDRAW_S = 0.1


class Progress:
    """Progress of one transfer of ``total`` bytes (``total`` may grow with ``set_total``)."""

    def __init__(
        self, label: str, total: int, *, enabled: bool | None = None, out: TextIO | None = None
    ) -> None:
        self.label = label
        self.total = total
        self.done = 0
        self.out = out or sys.stderr
        self.enabled = self.out.isatty() if enabled is None else enabled
        self.started = time.perf_counter()
        self._drawn_at = 0.0
        self._drawn = False

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    @property
    def rate(self) -> float:
        """Bytes per second so far."""
        return self.done / max(self.elapsed, 1e-9)

    def set_total(self, total: int) -> None:
        self.total = total
        self._draw(force=True)

    def advance(self, nbytes: int) -> None:
        self.done += nbytes
        self._draw()

    def note(self, text: str) -> None:
        """A message line above the bar (the bar is redrawn after it)."""
        if self.enabled and self._drawn:
            self.out.write("\r\x1b[K")
        print(text, file=self.out, flush=True)
        self._draw(force=True)

    def close(self) -> None:
        if self.enabled:
            self._draw(force=True)
            if self._drawn:
                self.out.write("\n")
                self.out.flush()

    def __enter__(self) -> Progress:
        self._draw(force=True)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def render(self) -> str:
        """The bar's current text (without carriage return)."""
        total = max(self.total, 1)
        frac = min(1.0, self.done / total)
        filled = int(frac * WIDTH)
        bar = "#" * filled + "." * (WIDTH - filled)
        rate = self.rate
        left = (self.total - self.done) / rate if rate > 0 and self.done else None
        eta = f" ETA {left:.0f}s" if left is not None and frac < 1 else ""
        return (
            f"{self.label} [{bar}] {frac * 100:3.0f}% {human_bytes(self.done)}/"
            f"{human_bytes(self.total)} {rate / 1e6:.1f} MB/s{eta}"
        )

    def _draw(self, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        if not force and now - self._drawn_at < REDRAW_S:
            return
        self._drawn_at = now
        self.out.write("\r\x1b[K" + self.render())
        self.out.flush()
        self._drawn = True
