"""Engine metrics, with the Prometheus client library.

Each ``Engine`` has its own ``CollectorRegistry`` (so several engines in one process, as in
tests, do not clash); the server exposes it on its metrics endpoint.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10)
_PAGE_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384)


class EngineMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.commit_seconds = Histogram(
            "sqlkv_commit_seconds",
            "Commit duration",
            ["path"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.commit_pages = Histogram(
            "sqlkv_commit_pages", "Pages per commit", ["path"], buckets=_PAGE_BUCKETS, registry=r
        )
        self.get_pages_seconds = Histogram(
            "sqlkv_get_pages_seconds", "get_pages duration", buckets=_LATENCY_BUCKETS, registry=r
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
        self.delta_count = Gauge(
            "sqlkv_delta_count", "Live deltas of a database", ["db"], registry=r
        )
        self.compaction_lag = Gauge(
            "sqlkv_compaction_lag_txids", "head_txid - materialized_txid", ["db"], registry=r
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
        self.delta_count.labels(db).set(delta_count)
        self.compaction_lag.labels(db).set(lag)
