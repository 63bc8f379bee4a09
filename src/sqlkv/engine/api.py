"""The engine's protocol: the five operations a client calls, with their request and answer
types. The in-process ``Engine`` and the network client both implement ``EngineApi``, so the
VFS does not know which one it talks to.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from sqlkv.engine.head import Head
from sqlkv.engine.labels import HistoryEntry

__all__ = [
    "ChangesResult",
    "CommitResult",
    "EngineApi",
    "HistoryEntry",
    "OpenResult",
    "Pages",
    "PagesResult",
    "SnapshotResult",
    "StageResult",
]

Pages = dict[int, bytes]


@dataclass(frozen=True)
class OpenResult:
    """Answer to ``open``: the new owner's generation is ``head.generation``."""

    head: Head
    pages: Pages = field(default_factory=dict)  # page 1 and the hinted pages that exist


@dataclass(frozen=True)
class PagesResult:
    """Answer to ``get_pages``: ``None`` for a page above the database size."""

    head: Head
    pages: dict[int, bytes | None]


@dataclass(frozen=True)
class CommitResult:
    head: Head
    already_applied: bool = False  # a retried commit whose first attempt had landed


@dataclass(frozen=True)
class SnapshotResult:
    """Answer to ``snapshot``: a committed state, read without taking the database over."""

    txid: int  # the committed txid this snapshot reads (exact)
    db_size_pages: int  # the database size at that txid
    head: Head  # the current head when the snapshot was taken (for lag metrics)
    pages: dict[int, bytes | None] = field(default_factory=dict)  # page 1 + preload, at txid


@dataclass(frozen=True)
class ChangesResult:
    """Answer to ``changes_since``: the newest committed txid and what changed up to it."""

    txid: int  # the newest committed txid (the reader's next snapshot)
    db_size_pages: int  # the size at that txid
    head: Head
    changed: frozenset[int] | None  # pages written or cut in (since, txid]; None = unknown


@dataclass(frozen=True)
class StageResult:
    txid: int  # the txid reserved for this large commit; pass it to later stage calls
    parts: int  # LTX parts written by this call


class EngineApi(Protocol):
    def open(
        self,
        db: str,
        *,
        preload: Sequence[int] = (),
        preload_bytes: int | None = None,
        create: bool = True,
    ) -> OpenResult: ...

    def get_pages(self, db: str, generation: int, pgnos: Sequence[int]) -> PagesResult: ...

    def commit(
        self,
        db: str,
        generation: int,
        expected_head_txid: int,
        pages: Pages,
        db_size_pages: int,
        *,
        commit_id: bytes | None = None,
    ) -> CommitResult: ...

    def commit_stage(
        self, db: str, generation: int, txid: int | None, seq: int, pages: Pages
    ) -> StageResult: ...

    def commit_finalize(
        self,
        db: str,
        generation: int,
        expected_head_txid: int,
        txid: int,
        db_size_pages: int,
        *,
        commit_id: bytes | None = None,
    ) -> CommitResult: ...

    def head(self, db: str) -> Head:
        """The current head (raises DatabaseNotFound); for lost-answer resolution and tools."""
        ...

    def snapshot(
        self, db: str, *, at: int | None = None, preload: Sequence[int] = ()
    ) -> SnapshotResult:
        """A committed state (``at``: a txid; None: the head) with page 1 and ``preload``;
        read-only: never takes over, never fences. ``SnapshotTooOld`` when that state is no
        longer retained, ``InvalidRequest`` for a txid never committed (docs/history.md)."""
        ...

    def read_at(self, db: str, txid: int, pgnos: Sequence[int]) -> PagesResult:
        """Pages exactly as of committed ``txid`` (None above its size), one store
        transaction; ``SnapshotTooOld`` when that state is no longer readable."""
        ...

    def changes_since(self, db: str, txid: int) -> ChangesResult:
        """The newest head and the pages written or cut since ``txid`` (one store
        operation); ``changed`` is None when that is no longer known."""
        ...

    def resolve(self, db: str, at: int | datetime | str) -> int:
        """txid | timezone-aware datetime (the newest commit at or before it) | label ->
        committed txid (``UnknownLabel``, ``SnapshotTooOld``, ``InvalidRequest``)."""
        ...

    def history(self, db: str, *, limit: int | None = None) -> list[HistoryEntry]:
        """Retained commits, newest first."""
        ...

    def label(self, db: str, label: str, txid: int | None = None) -> int:
        """Names a committed txid (default: the head); returns it."""
        ...

    def set_retention(self, db: str, window_s: float) -> float:
        """Set the database's retention window (seconds, 0 = none); returns it."""
        ...

    def retention(self, db: str) -> float:
        """The database's retention window in seconds."""
        ...
