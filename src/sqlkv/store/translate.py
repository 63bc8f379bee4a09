"""Translating a backend's exceptions into ours, by a table each driver keeps for itself.

A driver declares ONE ``ErrorTable`` of its backend's errors (``embedded_file.py`` for apsw,
``lmdb_store.py`` for py-lmdb): rows of (backend error class, our class, what to tell the
user), the first row the error is an instance of winning; an error no row names becomes
``StoreError``. Messages read ``"<where>: <advice> (<backend's message>)"``. The
PostgreSQL driver keys its table by SQLSTATE instead and keeps its own helper
(``postgres_errors.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Generic, TypeVar

from sqlkv.errors import SqlkvError, StoreError

E = TypeVar("E", bound=Exception)


@dataclass(frozen=True)
class ErrorTable(Generic[E]):
    """One driver's backend errors and what each becomes.

    ``backend``: the backend's base error class (what ``translating`` catches);
    ``rows``: (backend class, our class, advice), first match wins; ``unknown``: how the
    message names an error no row matches (``"SQLite error"``).
    """

    backend: type[E]
    rows: Sequence[tuple[type[E], type[SqlkvError], str]]
    unknown: str

    def translate(self, exc: E, where: str) -> SqlkvError:
        """Our error for ``exc``; ``where`` names the store (``"embedded store '/x'"``)."""
        for cls, ours, advice in self.rows:
            if isinstance(exc, cls):
                return ours(f"{where}: {advice} ({exc})")
        return StoreError(f"{where}: {self.unknown}: {exc}")

    def translating(self, where: str) -> _Translating[E]:
        """Raise ``translate(exc, where)`` (from ``exc``) for a backend error in the block."""
        return _Translating(self, where)


class _Translating(Generic[E]):
    """``ErrorTable.translating``'s context manager: a plain class, because the embedded
    store enters one per statement (a generator-based one cost ~2 us each)."""

    __slots__ = ("table", "where")

    def __init__(self, table: ErrorTable[E], where: str) -> None:
        self.table = table
        self.where = where

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc is not None and isinstance(exc, self.table.backend):
            raise self.table.translate(exc, self.where) from exc
