"""Fixtures of the engine tests: engines built on the parametrised ``store`` fixture.

Plain helpers (an owner with a page model, store inspection, invariant checks) are in
``engine_support.py``.
"""

from __future__ import annotations

import pytest
from engine_support import EngineFactory, Owner

from sqlkv.engine import Engine, EngineConfig
from sqlkv.store import MemoryStore, Store


@pytest.fixture
def make_engine(store: Store) -> EngineFactory:
    """``make_engine(**config)``: a new Engine (a new process, empty caches) on the store."""

    def make(**config: object) -> Engine:
        return Engine(store, EngineConfig(**config))  # type: ignore[arg-type]

    return make


@pytest.fixture
def engine(make_engine: EngineFactory) -> Engine:
    return make_engine()


@pytest.fixture
def owner(engine: Engine) -> Owner:
    """Database ``"db"``, created and opened by one owner."""
    return Owner.open(engine, "db")


@pytest.fixture
def mem() -> MemoryStore:
    """A memory store that logs every driver operation (for round-trip and crash tests)."""
    return MemoryStore(record_ops=True)
