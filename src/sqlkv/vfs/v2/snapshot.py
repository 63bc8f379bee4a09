"""A read-only connection's side of the engine protocol: which committed state it reads.

``SnapshotReader`` is the ``RemoteDb`` of a read-only connection (docs/read-replicas.md). It
calls only ``snapshot`` (once, at open), ``read_at`` (page misses), ``changes_since``
(one per read transaction of a reader that follows the head) and ``resolve`` (an ``at=``
given as a time or a label): never ``open`` or ``commit``, so it never takes the database
over and never fences its owner. Retries, backoff and rewind detection are ``RemoteDb``'s.

- ``txid`` is the committed state every read is answered from, ``size_pages`` its size;
  ``head_txid``/``generation`` the newest head seen (a smaller one is a rewound store).
- ``refresh()`` moves a following reader to the newest committed txid and returns the pages
  changed since its previous one (``None``: unknown, the caller drops its whole cache).
- A read of a state the engine no longer keeps raises the engine's ``SnapshotTooOld``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime

import apsw

from sqlkv.engine.api import CommitResult, EngineApi, Pages, SnapshotResult
from sqlkv.engine.head import Head
from sqlkv.errors import ConfigError, SnapshotTooOld
from sqlkv.vfs.sqlite_errors import sqlite_error
from sqlkv.vfs.v2.config import VfsConfig
from sqlkv.vfs.v2.counters import ClientCounters
from sqlkv.vfs.v2.reader_metrics import ReaderMetrics
from sqlkv.vfs.v2.remote import RemoteDb, rewound_error

At = int | datetime | str
"""A committed state: a txid, a timezone-aware time (the newest commit at or before it), or
a label."""

READONLY_MESSAGE = "attempt to write a readonly database"


def check_at(at: object) -> At:
    """``at`` if it names a state the engine can resolve; ``ConfigError`` saying why not."""
    if isinstance(at, bool) or not isinstance(at, int | datetime | str):
        raise ConfigError(
            f"at={at!r}: give a txid (int), a timezone-aware datetime or a label (str)"
        )
    if isinstance(at, int) and at < 1:
        raise ConfigError(f"at={at}: txids start at 1")
    if isinstance(at, datetime) and at.utcoffset() is None:
        raise ConfigError(
            f"at={at.isoformat()}: the time has no timezone; give an aware datetime, e.g. "
            "datetime(..., tzinfo=timezone.utc)"
        )
    if isinstance(at, str) and not at:
        raise ConfigError("at='': a label must be a non-empty string")
    return at


class SnapshotReader(RemoteDb):
    def __init__(
        self,
        engine: EngineApi,
        name: str,
        config: VfsConfig,
        counters: ClientCounters,
        metrics: ReaderMetrics,
    ) -> None:
        super().__init__(engine, name, config, counters)
        self.api = engine
        self.metrics = metrics
        self.txid = 0  # the committed state this connection reads
        self.pinned = False  # opened at= a given state: never moves
        self._since = 0.0  # monotonic time of the last snapshot or refresh

    # ------------------------------------------------------------------ open

    def start(self, at: At | None, preload: Sequence[int]) -> SnapshotResult:
        """Take the snapshot this connection starts from: ``at``, else the head."""
        txid: int | None = None
        if at is not None:
            self.pinned = True
            if isinstance(at, int):
                txid = at
            else:
                wanted = at
                txid = self._call("resolve", lambda: self.api.resolve(self.name, wanted))
        result = self._call(
            "snapshot", lambda: self.api.snapshot(self.name, at=txid, preload=preload)
        )
        self.counters.snapshots += 1
        self._learn(result.head)
        self.txid = result.txid
        self.size_pages = result.db_size_pages
        self._since = time.monotonic()
        got = [p for p in result.pages.values() if p is not None]
        self.counters.pages_preloaded += len(got)
        self.counters.bytes_received += sum(len(p) for p in got)
        if self.pinned:
            self.metrics.pinned_lag_txids.observe(max(0, result.head.head_txid - result.txid))
        return result

    def _learn(self, head: Head) -> None:
        # the head moves on without this connection: its size and txid are the snapshot's
        self._check_rewind(head)
        self.head_txid = head.head_txid
        self.generation = max(self.generation, head.generation)
        self.storage_used = head.storage_used

    # ------------------------------------------------------------------ reads

    def get_pages(self, pgnos: Sequence[int]) -> dict[int, bytes | None]:
        self.counters.get_pages_calls += 1
        txid = self.txid
        try:
            result = self._call("read_at", lambda: self.api.read_at(self.name, txid, pgnos))
        except SnapshotTooOld:
            self.counters.snapshot_too_old += 1
            self.metrics.snapshot_too_old.inc()
            raise
        got = [p for p in result.pages.values() if p is not None]
        self.counters.pages_fetched += len(got)
        self.counters.bytes_received += sum(len(p) for p in got)
        return result.pages

    def refresh(self) -> frozenset[int] | None:
        """Move to the newest committed txid (one round trip); the pages that changed since
        the previous one, ``None`` when the engine cannot say (drop every cached page)."""
        before = self.counters.round_trips
        started = time.monotonic()
        since = self.txid
        result = self._call("changes_since", lambda: self.api.changes_since(self.name, since))
        now = time.monotonic()
        trips = self.counters.round_trips - before
        self.counters.refreshes += 1
        self.counters.refresh_round_trips += trips
        self.counters.refresh_max_round_trips = max(self.counters.refresh_max_round_trips, trips)
        self.metrics.refresh_seconds.observe(now - started)
        if result.txid < since:
            self.dead = rewound_error(self.name, since, result.txid)
            raise self.dead
        self._learn(result.head)
        behind_s, self._since = started - self._since, now
        if result.txid == since:
            self.metrics.refreshes.labels("unchanged").inc()
            self.metrics.lag_txids.observe(0)
            return frozenset()
        self.metrics.lag_txids.observe(result.txid - since)
        self.metrics.lag_seconds.observe(behind_s)
        self.metrics.refreshes.labels("changed" if result.changed is not None else "dropped").inc()
        self.txid = result.txid
        self.size_pages = result.db_size_pages
        return result.changed

    # ------------------------------------------------------------------ refused

    def commit(self, pages: Pages, size_pages: int) -> CommitResult:
        raise sqlite_error(apsw.SQLITE_READONLY, READONLY_MESSAGE)
