"""Engines on an embedded store in the test's temporary directory.

The dialects are registered through entry points once the package is installed
(``pip install -e .``); registering them here too lets the tests run from a source tree.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine
from sqlalchemy.dialects import registry

registry.register("sqlite.sqlkv", "sqlkv.sqlalchemy.dialect", "SQLKVDialect")
registry.register("sqlite.sqlkv_async", "sqlkv.sqlalchemy.aio_dialect", "SQLKVDialect_async")


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    return str(tmp_path / "store")


@pytest.fixture
def engine(store_url: str) -> Iterator[Engine]:
    eng = create_engine(f"sqlite+sqlkv:///orders?store={store_url}")
    yield eng
    eng.dispose()
