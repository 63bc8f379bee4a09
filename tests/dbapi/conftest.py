"""Fixtures of the DB-API tests: the differential runner and sqlkv stores to connect to."""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from differential import Compare, Scenario, record, stdlib_connect

import sqlkv.dbapi2 as dbapi2
from sqlkv.store import MemoryStore


@pytest.fixture
def memory_store() -> Iterator[MemoryStore]:
    store = MemoryStore()
    yield store
    store.close()


@pytest.fixture
def compare(tmp_path: Path, memory_store: MemoryStore) -> Compare:
    """``compare(scenario)``: the scenario on ``sqlite3.connect(tmpfile)`` and on
    ``sqlkv.dbapi2.connect(name)`` records the same events; returns them."""

    def run(scenario: Scenario) -> list[Any]:
        reference = record(scenario, sqlite3, stdlib_connect(tmp_path))

        def ours_connect(name: str, **kwargs: Any) -> dbapi2.Connection:
            return dbapi2.connect(name, store=memory_store, **kwargs)

        ours = record(scenario, dbapi2, ours_connect)
        assert ours == reference
        return ours

    return run
