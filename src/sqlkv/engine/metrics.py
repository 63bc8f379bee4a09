"""Engine metrics, with the Prometheus client library.

Each ``Engine`` has its own ``CollectorRegistry`` (so several engines in one process, as in
tests, do not clash); the server exposes it on its metrics endpoint. The engines that
``sqlkv.connect`` builds, one per connection, share one (``shared_metrics``): building a
registry of 17 collectors was about 8% of a cold open + point query.

Cardinality: no series is labelled by database unless ``per_database`` is set
(``EngineConfig.metrics_per_database``, ``sqlkv serve --metrics-per-database``), because
with one database per tenant such labels grow without bound. By default the compaction
state is summed up: ``sqlkv_live_deltas`` (live deltas over every database) and
``sqlkv_compaction_lag_txids_max`` (the largest ``head_txid - materialized_txid``);
opting in adds ``sqlkv_delta_count{db}`` and ``sqlkv_compaction_lag_txids{db}``.
Every series, the buckets and this policy: docs/cli.md §6.

Cost per operation: the series every commit and ``get_pages`` moves (the latency and size
histograms, pages served, the compaction state) are plain counters updated under one lock
per call (``committed``, ``read``) and turned into Prometheus families only at scrape time
(``_HotCollector``); prometheus-client's labelled children cost about 10 us a commit. The
rare events (takeovers, refusals, compaction passes) keep prometheus-client counters.
"""

from __future__ import annotations

import threading
from bisect import bisect_left
from collections.abc import Callable, Iterator, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

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


class _Histogram:
    """Bucket counts and sum of one histogram series; updated under the owner's lock."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last one is +Inf
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1  # le: value <= bound
        self.sum += value

    def add_to(self, family: HistogramMetricFamily, labels: list[str]) -> None:
        total = 0
        buckets = []
        for bound, n in zip([*self.bounds, float("inf")], self.counts, strict=True):
            total += n
            buckets.append((floatToGoString(bound), float(total)))  # type: ignore[no-untyped-call]
        family.add_metric(labels, buckets, self.sum)


class EngineMetrics:
    def __init__(
        self, registry: CollectorRegistry | None = None, *, per_database: bool = False
    ) -> None:
        self.registry = registry or CollectorRegistry()
        self.per_database = per_database
        r = self.registry
        self._lock = threading.Lock()
        # per-call series (see the module docstring), exposed by _HotCollector
        self.commit_seconds: dict[str, _Histogram] = {}  # path -> latency
        self.commit_pages: dict[str, _Histogram] = {}  # path -> pages per commit
        self.get_pages_seconds = _Histogram(LATENCY_BUCKETS)
        self.get_pages_pages = _Histogram(_PAGE_BUCKETS)
        self.pages_served = {"delta": 0, "shard": 0}
        r.register(_HotCollector(self))
        self.compaction_passes = Counter(
            "sqlkv_compaction_passes", "Compaction passes that changed something", registry=r
        )
        self.pages_folded = Counter("sqlkv_pages_folded", "Pages folded into shards", registry=r)
        self.deltas_deleted = Counter("sqlkv_deltas_deleted", "Deltas deleted", registry=r)
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

    def committed(
        self,
        path: str,
        seconds: float,
        pages: int | None = None,
        db: str = "",
        behind: tuple[int, int] | None = None,
    ) -> None:
        """One commit (``path``: fast, stage, large) that took ``seconds``; when it changed
        the database, its ``pages`` and ``db``'s (live deltas, compaction lag) after it."""
        with self._lock:
            hist = self.commit_seconds.get(path)
            if hist is None:
                hist = self.commit_seconds[path] = _Histogram(LATENCY_BUCKETS)
            hist.observe(seconds)
            if pages is not None:
                sizes = self.commit_pages.get(path)
                if sizes is None:
                    sizes = self.commit_pages[path] = _Histogram(_PAGE_BUCKETS)
                sizes.observe(pages)
            if behind is not None:
                self._set_behind(db, behind)
        if behind is not None and self.per_database:
            self.delta_count.labels(db).set(behind[0])
            self.compaction_lag.labels(db).set(behind[1])

    def read(self, seconds: float, pages: int, from_deltas: int, from_shards: int) -> None:
        """One ``get_pages`` of ``pages`` pages."""
        with self._lock:
            self.get_pages_seconds.observe(seconds)
            self.get_pages_pages.observe(pages)
            served = self.pages_served
            served["delta"] += from_deltas
            served["shard"] += from_shards

    def observe_head(self, db: str, delta_count: int, lag: int) -> None:
        with self._lock:
            self._set_behind(db, (delta_count, lag))
        if self.per_database:
            self.delta_count.labels(db).set(delta_count)
            self.compaction_lag.labels(db).set(lag)

    def _set_behind(self, db: str, behind: tuple[int, int]) -> None:
        if behind[0] or behind[1]:
            self._behind[db] = behind
        else:  # caught up: forgotten, so the map holds only databases that are behind
            self._behind.pop(db, None)

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


class _HotCollector(Collector):
    """The per-call series of one ``EngineMetrics``, built at scrape time."""

    def __init__(self, metrics: EngineMetrics) -> None:
        self._m = metrics

    def collect(self) -> Iterator[Metric]:
        m = self._m
        commit_s = HistogramMetricFamily("sqlkv_commit_seconds", "Commit duration", labels=["path"])
        commit_p = HistogramMetricFamily("sqlkv_commit_pages", "Pages per commit", labels=["path"])
        read_s = HistogramMetricFamily("sqlkv_get_pages_seconds", "get_pages duration")
        read_p = HistogramMetricFamily("sqlkv_get_pages_pages", "Pages asked per get_pages")
        served = CounterMetricFamily(
            "sqlkv_pages_served", "Pages served, by where they were found", labels=["source"]
        )
        with m._lock:
            for path, hist in m.commit_seconds.items():
                hist.add_to(commit_s, [path])
            for path, hist in m.commit_pages.items():
                hist.add_to(commit_p, [path])
            m.get_pages_seconds.add_to(read_s, [])
            m.get_pages_pages.add_to(read_p, [])
            for source, n in m.pages_served.items():
                served.add_metric([source], float(n))
        yield from (commit_s, commit_p, read_s, read_p, served)


_shared: EngineMetrics | None = None
_shared_lock = threading.Lock()


def shared_metrics() -> EngineMetrics:
    """The process's one ``EngineMetrics`` for the engines ``sqlkv.connect`` builds (built
    on first use): their series add up over every connection of the process."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = EngineMetrics()
        return _shared
