"""Fixtures of the v2 client tests: connections to a database on each store driver."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, cast

import apsw
import pytest
from vfs_support import Opener

from sqlkv.client import connect
from sqlkv.store import MemoryStore, Store
from sqlkv.vfs.v2 import Connection


def _opener(store: Store) -> Iterator[Opener]:
    opened: list[apsw.Connection] = []

    def open_db(name: str = "db", **options: Any) -> Connection:
        conn = cast(Connection, connect(name, store, **options))
        opened.append(conn)
        return conn

    yield open_db
    for conn in reversed(opened):
        conn.close()


@pytest.fixture
def open_db(store: Store) -> Iterator[Opener]:
    """``open_db(name="db", **options)``: a v2 connection on the test's store (every driver)."""
    yield from _opener(store)


@pytest.fixture
def memory_store() -> Iterator[MemoryStore]:
    store = MemoryStore()
    yield store
    store.close()


@pytest.fixture
def open_mem(memory_store: MemoryStore) -> Iterator[Opener]:
    """``open_mem(name="db", **options)``: a v2 connection on a memory store."""
    yield from _opener(memory_store)
