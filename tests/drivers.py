"""Opening a fresh store of each driver kind for tests (shared by tests and benchmarks)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from sqlkv.store import Limits, MemoryStore, Store

StoreFactory = Callable[..., Store]
"""``store_factory(limits=None)``: opens the test's one store (again, for reopen tests)."""

PG_URL_ENV = "SQLKV_TEST_PG_URL"
ETCD_URL_ENV = "SQLKV_TEST_ETCD_URL"
DRIVERS = ["memory", "embedded", "lmdb", "postgres", "etcd"]
SERVER_DRIVERS = {"postgres", "etcd"}


def postgres_url() -> str | None:
    """The test server's URL, or None when no server is configured (never in CI)."""
    url = os.environ.get(PG_URL_ENV)
    if not url and os.environ.get("CI"):
        raise RuntimeError(
            f"CI=true but {PG_URL_ENV} is not set: .ci/run must start PostgreSQL for the tests"
        )
    return url


def postgres_url_or_skip() -> str:
    """The test server's URL; the test is skipped when none is configured (never in CI:
    ``postgres_url`` raises there)."""
    url = postgres_url()
    if url is None:
        pytest.skip("PostgreSQL tests need SQLKV_TEST_PG_URL (set by .ci/run; required in CI)")
    return url


def etcd_url() -> str | None:
    """The test cluster's URL, or None when no cluster is configured (never in CI)."""
    url = os.environ.get(ETCD_URL_ENV)
    if not url and os.environ.get("CI"):
        raise RuntimeError(
            f"CI=true but {ETCD_URL_ENV} is not set: .ci/run must start the etcd cluster "
            "for the tests (scripts/etcd-test-cluster)"
        )
    return url


def server_url(kind: str) -> str | None:
    """The server URL a driver kind needs, or None when it needs none or none is set."""
    if kind == "postgres":
        return postgres_url()
    if kind == "etcd":
        return etcd_url()
    return "-"


def unique_etcd_url(url: str) -> str:
    """``url`` with a fresh key prefix under its own, so tests never share keys."""
    parts = urlsplit(url)
    path = f"{parts.path.rstrip('/')}/t{uuid.uuid4().hex[:12]}"
    return urlunsplit(parts._replace(path=path))


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
    if kind == "etcd":
        from sqlkv.store.etcd import EtcdStore

        base = etcd_url()
        assert base is not None
        unique = unique_etcd_url(base)
        return lambda: EtcdStore(unique, limits=limits)
    raise ValueError(f"unknown driver kind {kind!r}")


def drop_store(kind: str, store: Store) -> None:
    """Remove what a test store left on a shared server."""
    if kind in SERVER_DRIVERS:
        store.drop()  # type: ignore[attr-defined]
