"""Helpers for compaction tests: distinct pages, and a database driven next to a dict model."""

from __future__ import annotations

from sqlkv.engine import Engine, Head
from sqlkv.engine.keys import DbKeys
from sqlkv.store import MemoryStore

PAGE = 4096


def page(tag: int, pgno: int) -> bytes:
    """A distinct, compressible page for (tag, pgno)."""
    line = f"page {pgno} version {tag};".encode()
    return (line * (PAGE // len(line) + 1))[:PAGE]


class Db:
    """One database driven through the engine, with a dict model of what it must hold."""

    def __init__(self, engine: Engine, name: str = "db") -> None:
        self.engine = engine
        self.name = name
        self.head: Head = engine.open(name).head
        self.model: dict[int, bytes] = {}

    @property
    def gen(self) -> int:
        return self.head.generation

    def commit(self, pages: dict[int, bytes], size: int | None = None) -> Head:
        size = max(self.head.db_size_pages, *pages) if size is None and pages else size
        assert size is not None
        self.head = self.engine.commit(self.name, self.gen, self.head.head_txid, pages, size).head
        self.model = {p: v for p, v in self.model.items() if p <= size}
        self.model.update(pages)
        return self.head

    def reopen(self) -> None:
        self.head = self.engine.open(self.name).head

    def check(self) -> None:
        size = self.head.db_size_pages
        got = self.engine.get_pages(self.name, self.gen, list(range(1, size + 2))).pages
        for p in range(1, size + 1):
            assert got[p] == self.model.get(p, bytes(PAGE)), f"page {p} differs from the model"
        assert got[size + 1] is None

    def stored(self) -> int:
        store = self.engine.store
        assert isinstance(store, MemoryStore)
        return store.stored_bytes(*DbKeys(self.name).all_range())
