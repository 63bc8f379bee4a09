"""Fixtures for compaction tests: an engine on a fresh store."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sqlkv.engine import Engine, EngineConfig
from sqlkv.store import MemoryStore, Store


@pytest.fixture
def mem_engine() -> Iterator[Engine]:
    engine = Engine(MemoryStore(), EngineConfig(part_pages=64))
    yield engine
    engine.close()


@pytest.fixture
def engine_on(store: Store) -> Iterator[Engine]:
    engine = Engine(store, EngineConfig(part_pages=64))
    yield engine
    engine.close()
