"""The engine's protocol: the five operations a client calls, with their request and answer
types. The in-process ``Engine`` and the network client both implement ``EngineApi``, so the
VFS does not know which one it talks to.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from sqlkv.engine.head import Head

Pages = dict[int, bytes]


@dataclass(frozen=True)
class OpenResult:
    """Answer to ``open``: the new owner's generation is ``head.generation``."""

    head: Head
    pages: Pages = field(default_factory=dict)  # page 1, the hint's and the asked pages


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

    def save_hint(self, db: str, generation: int, pgnos: Sequence[int]) -> Head:
        """Remember ``pgnos`` (the pages the owner read first) for the next open to return;
        the head after it."""
        ...

    def head(self, db: str) -> Head:
        """The current head (raises DatabaseNotFound); for lost-answer resolution and tools."""
        ...
