"""Shared fixtures: a fresh store of every driver kind, parametrised."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from drivers import DRIVERS, StoreFactory, drop_store, server_url, store_opener

from sqlkv.store import Limits, Store


@pytest.fixture(params=DRIVERS)
def driver(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    if server_url(kind) is None:
        pytest.skip(
            f"{kind} tests need a server URL (SQLKV_TEST_PG_URL / SQLKV_TEST_ETCD_URL, set "
            "by scripts/test; required in CI)"
        )
    return kind


@pytest.fixture
def store_factory(driver: str, tmp_path: Path) -> Iterator[StoreFactory]:
    """``store_factory(limits=None)`` opens the test's one store (again, for reopen tests)."""
    opened: list[Store] = []
    openers: dict[Limits | None, Callable[[], Store]] = {}

    def factory(limits: Limits | None = None) -> Store:
        if limits not in openers:
            openers[limits] = store_opener(driver, tmp_path, limits)
        store = openers[limits]()
        opened.append(store)
        return store

    yield factory
    for store in reversed(opened):
        drop_store(driver, store)
        store.close()


@pytest.fixture
def store(store_factory: StoreFactory) -> Store:
    return store_factory()
