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
- ``commit_group_size`` (histogram: COMMITs per group of the group commit, ``batcher.py``),
  ``commit_group_alone`` (counter: COMMITs that left their group and landed alone),
  ``commit_group_guard_retries`` (counter: groups run again after a META guard failed);
- ``sqlkv_build_info{version,python}`` (always 1), ``process_*`` (CPU, memory, open
  files, start time) and ``python_info``: what runs, and how it fares;
- ``sqlkv_store_*`` counters: the store object's own ``StoreStats`` (transactions, round
  trips, reads, writes, bytes), read at scrape time. Tests use ``sqlkv_store_transactions``
  to count store round trips per request across the process boundary.
"""

from __future__ import annotations

import platform
from collections.abc import Iterator
from dataclasses import fields

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from sqlkv.engine.metrics import LATENCY_BUCKETS
from sqlkv.store import Store


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
            buckets=LATENCY_BUCKETS,
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
        self.commit_group_size = Histogram(
            "sqlkv_server_commit_group_size",
            "COMMITs landed per group commit",
            buckets=(1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 64),
            registry=r,
        )
        self.commit_group_alone = Counter(
            "sqlkv_server_commit_group_alone",
            "COMMITs that left their group and landed alone",
            registry=r,
        )
        self.commit_group_guard_retries = Counter(
            "sqlkv_server_commit_group_guard_retries",
            "Commit groups run again after a database's META guard failed",
            registry=r,
        )
        from sqlkv import __version__

        Info("sqlkv_build", "The running sqlkv build", registry=r).info(
            {"version": __version__, "python": platform.python_version()}
        )
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        if store is not None:
            r.register(StoreStatsCollector(store))
        self._series: dict[str, tuple[Counter, Histogram]] = {}

    def series(self, label: str) -> tuple[Counter, Histogram]:
        """The ``requests`` and ``request_seconds`` children of a request type, looked up
        once (``labels()`` costs a lock and a dict lookup per call)."""
        found = self._series.get(label)
        if found is None:
            found = (self.requests.labels(label), self.request_seconds.labels(label))
            self._series[label] = found
        return found


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
