"""Server metrics, registered in the engine's own ``CollectorRegistry`` so that one scrape of
the metrics endpoint returns the engine's and the server's series together.

Series (all prefixed ``sqlkv_server_`` except the store's):

- ``connections`` (gauge, open now), ``connections_opened`` (counter), ``connections_refused``
  (counter: over ``max_connections``);
- ``requests{type}``, ``request_errors{type,error}`` (error = the answer's exception class),
  ``request_seconds{type}`` (histogram, engine time included), ``inflight`` (gauge);
- ``frame_rejects{reason}``: frames refused before any engine work (``oversized``,
  ``short``, ``truncated``, ``malformed``, ``unknown_type``, ``no_hello``, ``bad_hello``,
  ``version``, ``answer_too_large``);
- ``auth_refusals{stage}``: ``hello`` (token refused) or ``database`` (not granted);
- ``draining`` (gauge, 1 while shutting down);
- ``sqlkv_store_*`` counters: the store object's own ``StoreStats`` (transactions, round
  trips, reads, writes, bytes), read at scrape time. Tests use ``sqlkv_store_transactions``
  to count store round trips per request across the process boundary.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import fields

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from sqlkv.store import Store

_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10)


class ServerMetrics:
    def __init__(self, registry: CollectorRegistry, store: Store | None = None) -> None:
        self.registry = registry
        r = registry
        self.connections = Gauge("sqlkv_server_connections", "Open connections", registry=r)
        self.connections_opened = Counter(
            "sqlkv_server_connections_opened", "Connections accepted", registry=r
        )
        self.connections_refused = Counter(
            "sqlkv_server_connections_refused", "Connections over max_connections", registry=r
        )
        self.requests = Counter(
            "sqlkv_server_requests", "Requests received, by type", ["type"], registry=r
        )
        self.request_errors = Counter(
            "sqlkv_server_request_errors",
            "Requests answered with an error, by type and error class",
            ["type", "error"],
            registry=r,
        )
        self.request_seconds = Histogram(
            "sqlkv_server_request_seconds",
            "Time from a request's arrival to its answer",
            ["type"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.inflight = Gauge("sqlkv_server_inflight", "Requests being executed", registry=r)
        self.frame_rejects = Counter(
            "sqlkv_server_frame_rejects", "Frames refused, by reason", ["reason"], registry=r
        )
        self.auth_refusals = Counter(
            "sqlkv_server_auth_refusals", "Refused tokens and databases", ["stage"], registry=r
        )
        self.draining = Gauge("sqlkv_server_draining", "1 while shutting down", registry=r)
        if store is not None:
            r.register(StoreStatsCollector(store))


class StoreStatsCollector(Collector):
    """Exposes ``store.stats`` (cumulative counters of the store object) at scrape time."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def collect(self) -> Iterator[Metric]:
        stats = self.store.stats.snapshot()
        for f in fields(stats):
            yield CounterMetricFamily(
                f"sqlkv_store_{f.name}",
                f"Store {f.name} (StoreStats)",
                value=getattr(stats, f.name),
            )
