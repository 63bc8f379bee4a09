"""A progress bar on stderr for ``import``, ``export`` and the compaction after an import.

    with Progress("import", total_bytes, enabled=None) as bar:   # None: only on a terminal
        bar.advance(4096)

The drawing is tqdm's (imported only when a bar is shown: other commands and a
redirected stderr pay nothing for it; the README's dependency table has the measured
cost). Its line reads ``import db [######........]  40% 12.0M/30.0M 9.8MB/s ETA 00:02``.
``done`` and ``total`` are counted here either way, so a caller may reset or grow them
(``export`` learns the size once the database is opened).
"""

from __future__ import annotations

import sys
from types import TracebackType
from typing import Any, TextIO

_FORMAT = "{desc} [{bar:30}] {percentage:3.0f}% {n_fmt}/{total_fmt} {rate_fmt} ETA {remaining}"


class Progress:
    """Progress of one transfer of ``total`` bytes (``total`` may change)."""

    def __init__(
        self, label: str, total: int, *, enabled: bool | None = None, out: TextIO | None = None
    ) -> None:
        self.label = label
        self.out = out or sys.stderr
        self.enabled = self.out.isatty() if enabled is None else enabled
        self._done = 0
        self._total = total
        self._bar: Any = None
        if self.enabled:
            from tqdm import tqdm

            self._bar = tqdm(
                total=total,
                desc=label,
                file=self.out,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                ascii=".#",
                bar_format=_FORMAT,
                mininterval=0.1,
                dynamic_ncols=False,
            )

    @property
    def done(self) -> int:
        return self._done

    @done.setter
    def done(self, value: int) -> None:
        self._done = value
        if self._bar is not None:
            self._bar.n = value
            self._bar.refresh()

    @property
    def total(self) -> int:
        return self._total

    @total.setter
    def total(self, value: int) -> None:
        self.set_total(value)

    def set_total(self, total: int) -> None:
        self._total = total
        if self._bar is not None:
            self._bar.total = total
            self._bar.refresh()

    def report(self, done: int, total: int) -> None:
        """``done`` of ``total`` so far: the ``progress(done, total)`` callback of the
        engine's long operations (fork, restore)."""
        if self._total != total:
            self.set_total(total)
        self.done = done

    def advance(self, nbytes: int) -> None:
        self._done += nbytes
        if self._bar is not None:
            self._bar.update(nbytes)

    def note(self, text: str) -> None:
        """A message line above the bar (the bar is redrawn after it)."""
        if self._bar is not None:
            self._bar.write(text, file=self.out)
        else:
            print(text, file=self.out, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
