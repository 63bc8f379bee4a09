"""Fixtures of the server tests: ``servers`` starts real server processes and always kills
them; ``store_dir`` is a fresh embedded store directory several servers may share;
``shared_store`` is that, PostgreSQL (``SQLKV_TEST_PG_URL``, marked ``postgres``: required
in CI) or the etcd test cluster (``SQLKV_TEST_ETCD_URL``, required in CI), and ``db`` a
database name of the test, removed from a server store afterwards."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from drivers import etcd_url, postgres_url_or_skip, unique_etcd_url
from server_support import ServerFactory, ServerProc, start_server

from sqlkv.engine.keys import DbKeys
from sqlkv.store import open_store


@pytest.fixture
def store_dir(tmp_path: Path) -> str:
    return str(tmp_path / "store")


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[ServerFactory]:
    """``servers(store_url, token=..., tokens_file=..., extra=(...), name=...)`` starts one."""
    started: list[ServerProc] = []

    def start(store: str, **options: Any) -> ServerProc:
        server = start_server(tmp_path, store, **options)
        started.append(server)
        return server

    yield start
    for server in started:
        server.kill()


def _postgres_url() -> str:
    url = postgres_url_or_skip()
    try:
        import sqlkv.store.postgres  # noqa: F401
    except ImportError:
        if os.environ.get("CI"):
            raise
        pytest.skip("the PostgreSQL store driver (sqlkv.store.postgres) is not available yet")
    return str(url)


@pytest.fixture(params=["embedded", pytest.param("postgres", marks=pytest.mark.postgres), "etcd"])
def shared_store(request: pytest.FixtureRequest, store_dir: str) -> str:
    """A store URL that several server processes share."""
    if request.param == "postgres":
        return _postgres_url()
    if request.param == "etcd":
        url = etcd_url()
        if url is None:
            pytest.skip("etcd tests need SQLKV_TEST_ETCD_URL (set by .ci/run; required in CI)")
        return unique_etcd_url(url)
    return store_dir


@pytest.fixture
def db(shared_store: str) -> Iterator[str]:
    """A database name of this test; removed afterwards (a PostgreSQL store outlives it)."""
    name = f"nodes-{uuid.uuid4().hex[:12]}"
    yield name
    if shared_store.startswith(("postgres", "etcd")):
        store = open_store(shared_store)
        try:
            store.transact(lambda tr: tr.clear_range(*DbKeys(name).all_range()))
        finally:
            store.close()
