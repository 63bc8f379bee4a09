"""Engine metrics, with the Prometheus client library.

Each ``Engine`` has its own ``CollectorRegistry`` (so several engines in one process, as in
tests, do not clash); the server exposes it on its metrics endpoint.

Cardinality: no series is labelled by database unless ``per_database`` is set
(``EngineConfig.metrics_per_database``, ``sqlkv serve --metrics-per-database``), because
with one database per tenant such labels grow without bound. By default the compaction
state is summed up: ``sqlkv_live_deltas`` (live deltas over every database) and
``sqlkv_compaction_lag_txids_max`` (the largest ``head_txid - materialized_txid``);
opting in adds ``sqlkv_delta_count{db}`` and ``sqlkv_compaction_lag_txids{db}``.
Every series, the buckets and this policy: docs/cli.md §6.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (
    0.00005,
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
"""Seconds, 50 µs to 10 s: an in-memory commit takes ~100 µs, a PostgreSQL one milliseconds."""
_PAGE_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384)


class EngineMetrics:
    def __init__(
        self, registry: CollectorRegistry | None = None, *, per_database: bool = False
    ) -> None:
        self.registry = registry or CollectorRegistry()
        self.per_database = per_database
        r = self.registry
        self.commit_seconds = Histogram(
            "sqlkv_commit_seconds",
            "Commit duration",
            ["path"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.commit_pages = Histogram(
            "sqlkv_commit_pages", "Pages per commit", ["path"], buckets=_PAGE_BUCKETS, registry=r
        )
        self.get_pages_seconds = Histogram(
            "sqlkv_get_pages_seconds", "get_pages duration", buckets=LATENCY_BUCKETS, registry=r
        )
        self.get_pages_pages = Histogram(
            "sqlkv_get_pages_pages", "Pages asked per get_pages", buckets=_PAGE_BUCKETS, registry=r
        )
        self.pages_served = Counter(
            "sqlkv_pages_served", "Pages served, by where they were found", ["source"], registry=r
        )
        self.compaction_passes = Counter(
            "sqlkv_compaction_passes", "Compaction passes that changed something", registry=r
        )
        self.pages_folded = Counter("sqlkv_pages_folded", "Pages folded into shards", registry=r)
        self.deltas_deleted = Counter("sqlkv_deltas_deleted", "Deltas deleted", registry=r)
        self._lock = threading.Lock()
        self._behind: dict[str, tuple[int, int]] = {}  # db -> (live deltas, lag), if any
        Gauge("sqlkv_live_deltas", "Live deltas over every database", registry=r).set_function(
            lambda: self._total(0, sum)
        )
        Gauge(
            "sqlkv_compaction_lag_txids_max",
            "Largest head_txid - materialized_txid over every database",
            registry=r,
        ).set_function(lambda: self._total(1, max))
        if per_database:
            self.delta_count = Gauge(
                "sqlkv_delta_count", "Live deltas of a database", ["db"], registry=r
            )
            self.compaction_lag = Gauge(
                "sqlkv_compaction_lag_txids", "head_txid - materialized_txid", ["db"], registry=r
            )
        self._retained: dict[str, int] = {}  # db -> retained history bytes, if any
        Gauge(
            "sqlkv_history_retained_bytes",
            "Bytes kept only for past states (retained deltas and shard versions), every "
            "database, as the last compaction pass of each saw them",
            registry=r,
        ).set_function(lambda: float(sum(self._retained.values())))
        if per_database:
            self.retained_bytes = Gauge(
                "sqlkv_history_retained_bytes_db",
                "Bytes kept only for past states of a database",
                ["db"],
                registry=r,
            )
        self.read_lag = Histogram(
            "sqlkv_read_lag_txids",
            "head_txid minus the txid a snapshot or read_at read (reader lag)",
            buckets=(0, 1, 2, 4, 16, 64, 256, 1024, 4096, 65536),
            registry=r,
        )
        self.past_reads = Counter(
            "sqlkv_past_reads", "snapshot/read_at calls, by outcome", ["outcome"], registry=r
        )
        self.takeovers = Counter("sqlkv_takeovers", "Opens that took a database over", registry=r)
        self.orphans_removed = Counter(
            "sqlkv_orphans_removed", "Orphans removed by takeover", registry=r
        )
        self.fence_mismatches = Counter(
            "sqlkv_fence_mismatches", "Requests refused by the fence", registry=r
        )
        self.quota_refusals = Counter(
            "sqlkv_quota_refusals", "Commits refused by the quota", registry=r
        )
        self.busy_refusals = Counter(
            "sqlkv_busy_refusals", "Commits refused because compaction is behind", registry=r
        )

    def observe_head(self, db: str, delta_count: int, lag: int) -> None:
        with self._lock:
            if delta_count or lag:
                self._behind[db] = (delta_count, lag)
            else:  # caught up: forgotten, so the map holds only databases that are behind
                self._behind.pop(db, None)
        if self.per_database:
            self.delta_count.labels(db).set(delta_count)
            self.compaction_lag.labels(db).set(lag)

    def observe_retained(self, db: str, retained: int) -> None:
        with self._lock:
            if retained:
                self._retained[db] = retained
            else:
                self._retained.pop(db, None)
        if self.per_database:
            self.retained_bytes.labels(db).set(retained)

    def _total(self, index: int, fold: Callable[[list[int]], int]) -> float:
        with self._lock:
            values = [v[index] for v in self._behind.values()]
        return float(fold(values)) if values else 0.0
