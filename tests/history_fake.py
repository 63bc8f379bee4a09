"""A small EngineApi with history, for the read-only client's unit tests: a real ``Engine``
for the owner's calls, plus every committed state kept in memory (``snapshot``,
``read_at``, ``changes_since``, ``resolve``, ``label``) and a retention that can be cut
(``forget_before``). The acceptance tests use the real engine's history instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlkv.engine import Engine, EngineConfig
from sqlkv.engine.api import (
    ChangesResult,
    CommitResult,
    OpenResult,
    Pages,
    PagesResult,
    SnapshotResult,
    StageResult,
)
from sqlkv.engine.head import Head
from sqlkv.errors import InvalidRequest, SnapshotTooOld, UnknownLabel
from sqlkv.store import MemoryStore


@dataclass
class Version:
    size: int
    pages: dict[int, bytes]
    changed: frozenset[int]
    at: datetime = field(default_factory=lambda: datetime.now().astimezone())


class HistoryFake:
    def __init__(self, store: MemoryStore | None = None) -> None:
        self.store = store or MemoryStore()
        self.engine = Engine(self.store, EngineConfig(), compaction=False)
        self.versions: dict[str, dict[int, Version]] = {}
        self.oldest: dict[str, int] = {}
        self.labels: dict[tuple[str, str], int] = {}
        self.staged: dict[tuple[str, int], Pages] = {}
        self.calls: list[str] = []

    # ------------------------------------------------------------------ owner's calls

    def open(self, db: str, **kw: Any) -> OpenResult:
        self.calls.append("open")
        result = self.engine.open(db, **kw)
        history = self.versions.setdefault(db, {})
        txid = result.head.head_txid
        if txid not in history:
            size = result.head.db_size_pages
            got = self.engine.get_pages(db, result.head.generation, range(1, size + 1)).pages
            pages = {p: b for p, b in got.items() if b is not None}
            history[txid] = Version(size, pages, frozenset(pages))
            self.oldest.setdefault(db, txid)
        return result

    def get_pages(self, db: str, generation: int, pgnos: Sequence[int]) -> PagesResult:
        self.calls.append("get_pages")
        return self.engine.get_pages(db, generation, pgnos)

    def _record(self, db: str, head: Head, pages: Pages) -> None:
        history = self.versions[db]
        if head.head_txid in history:
            return
        last = history[max(history)]
        kept = {p: b for p, b in last.pages.items() if p <= head.db_size_pages}
        kept.update(pages)
        cut = frozenset(p for p in last.pages if p > head.db_size_pages)
        history[head.head_txid] = Version(head.db_size_pages, kept, frozenset(pages) | cut)

    def commit(self, db: str, generation: int, expected: int, pages: Pages, size: int,
               *, commit_id: bytes | None = None) -> CommitResult:  # fmt: skip
        self.calls.append("commit")
        result = self.engine.commit(db, generation, expected, pages, size, commit_id=commit_id)
        self._record(db, result.head, pages)
        return result

    def commit_stage(
        self, db: str, generation: int, txid: int | None, seq: int, pages: Pages
    ) -> StageResult:
        self.calls.append("commit_stage")
        result = self.engine.commit_stage(db, generation, txid, seq, pages)
        self.staged.setdefault((db, result.txid), {}).update(pages)
        return result

    def commit_finalize(self, db: str, generation: int, expected: int, txid: int, size: int,
                        *, commit_id: bytes | None = None) -> CommitResult:  # fmt: skip
        self.calls.append("commit_finalize")
        result = self.engine.commit_finalize(db, generation, expected, txid, size,
                                             commit_id=commit_id)  # fmt: skip
        self._record(db, result.head, self.staged.pop((db, txid), {}))
        return result

    def head(self, db: str) -> Head:
        self.calls.append("head")
        return self.engine.head(db)

    # ------------------------------------------------------------------ history

    def _version(self, db: str, txid: int) -> Version:
        history = self.versions[db]
        if txid < self.oldest[db]:
            raise SnapshotTooOld(f"the state at txid {txid} of {db!r} is no longer kept")
        if txid not in history:
            raise InvalidRequest(f"txid {txid} of {db!r} was never committed")
        return history[txid]

    def snapshot(self, db: str, *, at: int | None = None, preload: Sequence[int] = ()
                 ) -> SnapshotResult:  # fmt: skip
        self.calls.append("snapshot")
        head = self.engine.head(db)
        txid = head.head_txid if at is None else at
        version = self._version(db, txid)
        pages = {p: version.pages.get(p, bytes(4096)) for p in preload if p <= version.size}
        return SnapshotResult(txid, version.size, head, pages)

    def read_at(self, db: str, txid: int, pgnos: Sequence[int]) -> PagesResult:
        self.calls.append("read_at")
        version = self._version(db, txid)
        out: dict[int, bytes | None] = {
            p: (version.pages.get(p, bytes(4096)) if p <= version.size else None) for p in pgnos
        }
        return PagesResult(self.engine.head(db), out)

    def changes_since(self, db: str, txid: int) -> ChangesResult:
        self.calls.append("changes_since")
        head = self.engine.head(db)
        newest = self.versions[db][head.head_txid]
        changed: frozenset[int] | None
        if txid < self.oldest[db]:
            changed = None
        else:
            changed = frozenset().union(
                *(v.changed for t, v in self.versions[db].items() if txid < t <= head.head_txid)
            )
        return ChangesResult(head.head_txid, newest.size, head, changed)

    def resolve(self, db: str, at: int | datetime | str) -> int:
        self.calls.append("resolve")
        if isinstance(at, int):
            self._version(db, at)
            return at
        if isinstance(at, str):
            if (db, at) not in self.labels:
                raise UnknownLabel(f"database {db!r} has no label {at!r}")
            return self.labels[(db, at)]
        older = [t for t, v in self.versions[db].items() if v.at <= at]
        if not older:
            raise SnapshotTooOld(f"no kept state of {db!r} is as old as {at.isoformat()}")
        return max(older)

    def label(self, db: str, label: str, txid: int | None = None) -> int:
        txid = self.engine.head(db).head_txid if txid is None else txid
        self.labels[(db, label)] = txid
        return txid

    def forget_before(self, db: str, txid: int) -> None:
        """Retention: states older than ``txid`` are no longer readable."""
        self.oldest[db] = txid
        for t in [t for t in self.versions[db] if t < txid]:
            del self.versions[db][t]

    def close(self) -> None:
        self.engine.close()


class Recording:
    """Any engine, with the name of every call made through it in ``calls``."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        target = getattr(self.engine, name)
        if not callable(target):
            return target

        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(name)
            return target(*args, **kwargs)

        return call

    def close(self) -> None:
        self.engine.close()


def history_engine(kind: str) -> Any:
    """``"fake"``: a ``HistoryFake``; ``"engine"``: the real ``Engine`` (no background
    compaction) on a memory store, recording its calls."""
    if kind == "fake":
        return HistoryFake()
    return Recording(Engine(MemoryStore(), EngineConfig(), compaction=False))
