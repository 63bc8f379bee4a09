"""The engine adapts to an etcd cluster's request size: commits larger than the driver's
declared transaction limit go through staging, in batches that fit, and stay byte-exact."""

from __future__ import annotations

import random

import pytest
from drivers import etcd_url, unique_etcd_url

import sqlkv
from sqlkv.store import open_store
from sqlkv.store.etcd import EtcdStore


@pytest.fixture
def small_store() -> EtcdStore:
    base = etcd_url()
    if base is None:
        pytest.skip("etcd tests need SQLKV_TEST_ETCD_URL (set by scripts/test; required in CI)")
    # etcd's default request size (1.5 MiB), whatever the test cluster allows.
    url = unique_etcd_url(base).replace("max_request_bytes=16777216", "max_request_bytes=1572864")
    store = open_store(url)
    assert isinstance(store, EtcdStore)
    assert store.limits.max_transaction_bytes < 1_000_000
    return store


def test_large_commits_fit_a_stock_request_size_and_stay_byte_exact(
    small_store: EtcdStore,
) -> None:
    rng = random.Random(5)
    blobs = [rng.randbytes(rng.randrange(1, 60_000)) for _ in range(120)]  # ~3.6 MB
    try:
        conn = sqlkv.connect("limits", store=small_store)
        conn.execute("CREATE TABLE t(i INTEGER PRIMARY KEY, b BLOB)")
        with conn:
            conn.executemany("INSERT INTO t VALUES (?, ?)", list(enumerate(blobs)))
        assert conn.sqlkv_stats.staged_commits >= 1
        conn.close()
        again = sqlkv.connect("limits", store=small_store)
        rows = again.execute("SELECT i, b FROM t ORDER BY i").fetchall()
        assert [bytes(b) for _, b in rows] == blobs
        assert again.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        again.close()
    finally:
        small_store.drop()
        small_store.close()
