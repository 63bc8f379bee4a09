"""Prometheus metrics of the read-only connections of this process (docs/read-replicas.md).

One ``CollectorRegistry`` per process (``REGISTRY``), shared by every read-only connection
unless ``connect(..., reader_metrics=ReaderMetrics(...))`` names another: expose it with
``prometheus_client.start_http_server(port, registry=REGISTRY)`` or add it to your own
exporter. No series is labelled by database (with one database per tenant such labels grow
without bound).

Lag is measured when a reader that follows the head refreshes (at the start of each read
transaction): ``sqlkv_reader_lag_txids`` is how many commits the head had moved past the
reader's previous snapshot, ``sqlkv_reader_lag_seconds`` how long the reader had read that
snapshot by then (an upper bound of how long its view was behind; 0 when nothing was
committed meanwhile). A reader opened ``at=`` a past state is not lagging, it is pinned: it
reports ``sqlkv_reader_pinned_lag_txids`` once, at open.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

from sqlkv.engine.metrics import LATENCY_BUCKETS

LAG_TXID_BUCKETS = (0, 1, 2, 5, 10, 25, 50, 100, 250, 1000, 10_000, 100_000)
"""Commits behind: a reader querying often is 0-2 behind; one idle for minutes, thousands."""
LAG_SECONDS_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 60.0, 600.0, 3600.0)
"""Seconds a snapshot was read while newer commits existed: ms between queries, up to an hour."""


class ReaderMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.refreshes = Counter(
            "sqlkv_reader_refreshes",
            "Read transactions started by readers that follow the head, by outcome "
            "(unchanged: no new commit; changed: changed pages dropped; dropped: whole cache)",
            ["outcome"],
            registry=r,
        )
        self.refresh_seconds = Histogram(
            "sqlkv_reader_refresh_seconds",
            "Duration of a reader's refresh (one changes_since round trip)",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.lag_txids = Histogram(
            "sqlkv_reader_lag_txids",
            "Commits the head had moved past a reader's snapshot when it refreshed",
            buckets=LAG_TXID_BUCKETS,
            registry=r,
        )
        self.lag_seconds = Histogram(
            "sqlkv_reader_lag_seconds",
            "Seconds a reader had read a snapshot that newer commits had passed, at refresh",
            buckets=LAG_SECONDS_BUCKETS,
            registry=r,
        )
        self.pinned_lag_txids = Histogram(
            "sqlkv_reader_pinned_lag_txids",
            "Commits between the head and the state a reader opened at= reads, at open",
            buckets=LAG_TXID_BUCKETS,
            registry=r,
        )
        self.pages_invalidated = Counter(
            "sqlkv_reader_pages_invalidated",
            "Cached pages readers dropped because a newer commit changed them",
            registry=r,
        )
        self.snapshot_too_old = Counter(
            "sqlkv_reader_snapshot_too_old",
            "Reads refused because the reader's snapshot left the retention window",
            registry=r,
        )


REGISTRY = CollectorRegistry()
METRICS = ReaderMetrics(REGISTRY)
