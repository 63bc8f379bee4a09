"""The engine's Prometheus metrics move with what the engine does."""

from __future__ import annotations

import os

import pytest
from compaction_support import Db, page
from prometheus_client import generate_latest

from sqlkv.engine import Engine, EngineConfig
from sqlkv.errors import FenceMismatch, QuotaExceeded
from sqlkv.store import MemoryStore


def sample(engine: Engine, name: str, **labels: str) -> float:
    value = engine.metrics.registry.get_sample_value(name, labels or None)
    return 0.0 if value is None else value


def test_metrics_count_commits_reads_compaction_takeovers_and_refusals() -> None:
    config = EngineConfig(default_quota_bytes=200_000, metrics_per_database=True)
    engine = Engine(MemoryStore(), config)
    db = Db(engine)
    for v in range(3):
        db.commit({p: page(v, p) for p in range(1, 10)})
    engine.get_pages("db", db.gen, [1, 2, 3])
    engine.compact_until_done("db")
    engine.get_pages("db", db.gen, [1, 2])
    stale = db.gen
    db.reopen()
    with pytest.raises(FenceMismatch):
        engine.commit("db", stale, db.head.head_txid, {1: page(9, 1)}, 9)
    with pytest.raises(QuotaExceeded):
        engine.commit(
            "db", db.gen, db.head.head_txid, {p: os.urandom(4096) for p in range(1, 60)}, 60
        )

    assert sample(engine, "sqlkv_commit_seconds_count", path="fast") == 3
    assert sample(engine, "sqlkv_commit_pages_sum", path="fast") == 27
    assert sample(engine, "sqlkv_get_pages_seconds_count") == 2
    assert sample(engine, "sqlkv_pages_served_total", source="delta") == 3
    assert sample(engine, "sqlkv_pages_served_total", source="shard") == 2
    assert sample(engine, "sqlkv_compaction_passes_total") >= 1
    assert sample(engine, "sqlkv_pages_folded_total") == 9
    assert sample(engine, "sqlkv_deltas_deleted_total") == 3
    assert sample(engine, "sqlkv_delta_count", db="db") == 0
    assert sample(engine, "sqlkv_compaction_lag_txids", db="db") == 0
    assert sample(engine, "sqlkv_takeovers_total") == 1
    assert sample(engine, "sqlkv_fence_mismatches_total") == 1
    assert sample(engine, "sqlkv_quota_refusals_total") == 1
    assert b"sqlkv_orphans_removed_total" in generate_latest(engine.metrics.registry)


def test_without_opting_in_no_series_is_labelled_by_database() -> None:
    """One database per tenant must not grow the scrape: the compaction state is summed
    over databases unless ``metrics_per_database`` is set."""
    engine = Engine(MemoryStore())
    dbs = [Db(engine, f"tenant-{i}") for i in range(3)]
    for n, db in enumerate(dbs):
        for v in range(n + 1):
            db.commit({1: page(v, 1)})
    text = generate_latest(engine.metrics.registry).decode()
    assert 'db="' not in text
    assert sample(engine, "sqlkv_live_deltas") == 1 + 2 + 3
    assert sample(engine, "sqlkv_compaction_lag_txids_max") == 3
    for db in dbs:
        engine.compact_until_done(db.name)
    assert sample(engine, "sqlkv_live_deltas") == 0
    assert sample(engine, "sqlkv_compaction_lag_txids_max") == 0
    assert engine.metrics._behind == {}  # caught-up databases are forgotten
