"""Opening a fresh store of each driver kind for tests (shared by tests and benchmarks)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path

from sqlkv.store import Limits, MemoryStore, Store

StoreFactory = Callable[..., Store]
"""``store_factory(limits=None)``: opens the test's one store (again, for reopen tests)."""

PG_URL_ENV = "SQLKV_TEST_PG_URL"
DRIVERS = ["memory", "embedded", "lmdb", "postgres"]


def postgres_url() -> str | None:
    """The test server's URL, or None when no server is configured (never in CI)."""
    url = os.environ.get(PG_URL_ENV)
    if not url and os.environ.get("CI"):
        raise RuntimeError(
            f"CI=true but {PG_URL_ENV} is not set: .ci/run must start PostgreSQL for the tests"
        )
    return url


def store_opener(kind: str, where: Path, limits: Limits | None = None) -> Callable[[], Store]:
    """A function that opens the same fresh store each time it is called (for reopen tests)."""
    if kind == "memory":
        mem = MemoryStore(limits=limits)
        return lambda: mem
    if kind == "embedded":
        from sqlkv.store.embedded import EmbeddedStore

        return lambda: EmbeddedStore(where / "embedded", limits=limits)
    if kind == "lmdb":
        from sqlkv.store.lmdb_store import LmdbStore

        return lambda: LmdbStore(where / "lmdb", limits=limits)
    if kind == "postgres":
        from sqlkv.store.postgres import PostgresStore

        url = postgres_url()
        assert url is not None
        table = f"kv_test_{uuid.uuid4().hex[:12]}"
        return lambda: PostgresStore(url, table=table, limits=limits)
    raise ValueError(f"unknown driver kind {kind!r}")


def drop_store(kind: str, store: Store) -> None:
    """Remove what a test store left on a shared server."""
    if kind == "postgres":
        store.drop()  # type: ignore[attr-defined]
