"""The compaction coordinator: at most one worker per database, several databases in
parallel on a bounded pool, woken by commits over a threshold and by an idle timer.

A worker runs passes until the database has no live delta (or a pass changes nothing),
then goes back to sleep. Errors are logged and counted, never raised into commits.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlkv.engine.head import Head
from sqlkv.errors import ConfigError, DatabaseNotFound, SqlkvError
from sqlkv.logs import failure_fields

if TYPE_CHECKING:
    from sqlkv.engine.engine import Engine

log = logging.getLogger("sqlkv.compaction")


@dataclass(frozen=True)
class CompactionConfig:
    """When and how much to compact.

    - ``delta_count_threshold`` / ``delta_bytes_threshold``: a commit that leaves at least
      this many live deltas / delta bytes wakes the database's worker.
    - ``idle_seconds``: a database with live deltas and no commit for this long is compacted.
    - ``shards_per_pass``: shards folded per store transaction (bounds its size).
    - ``workers``: databases compacted in parallel.
    """

    delta_count_threshold: int = 16
    delta_bytes_threshold: int = 4 * 1024 * 1024
    idle_seconds: float = 2.0
    shards_per_pass: int = 16
    workers: int = 2

    def validate(self) -> None:
        if self.delta_count_threshold < 1 or self.delta_bytes_threshold < 1:
            raise ConfigError("compaction thresholds must be positive")
        if self.idle_seconds <= 0:
            raise ConfigError(f"idle_seconds must be > 0, got {self.idle_seconds}")
        if not 1 <= self.shards_per_pass <= 32:
            raise ConfigError(
                f"shards_per_pass must be within 1..32 (a pass is one store transaction), "
                f"got {self.shards_per_pass}"
            )
        if not 1 <= self.workers <= 64:
            raise ConfigError(f"workers must be within 1..64, got {self.workers}")

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> CompactionConfig:
        """Settings from a config file's ``[compaction]`` table (``settings_from_dict``)."""
        from sqlkv.engine.config import settings_from_dict

        return settings_from_dict(cls, values, "compaction")


class CompactionCoordinator:
    def __init__(self, engine: Engine, config: CompactionConfig | None = None) -> None:
        self.engine = engine
        self.config = config or CompactionConfig()
        self.config.validate()
        self._pool = ThreadPoolExecutor(self.config.workers, thread_name_prefix="sqlkv-compact")
        # Guards the three fields below: commit threads, workers and the idle timer share them.
        self._lock = threading.Lock()
        self._running: set[str] = set()
        self._again: set[str] = set()
        self._last_commit: dict[str, float] = {}
        self._stop = threading.Event()
        # started by the first commit: an engine that only opens and reads (a cold
        # connection, most of ``sqlkv.connect``'s) never pays for a thread
        self._timer: threading.Thread | None = None

    def notify(self, db: str, head: Head) -> None:
        """Called after every commit: wake the worker when a threshold is crossed."""
        with self._lock:
            self._last_commit[db] = time.monotonic()
            if self._timer is None and not self._stop.is_set():
                self._timer = threading.Thread(
                    target=self._idle_loop, name="sqlkv-compact-idle", daemon=True
                )
                self._timer.start()
        cfg = self.config
        if (
            head.delta_count >= cfg.delta_count_threshold
            or head.delta_bytes >= cfg.delta_bytes_threshold
        ):
            self.schedule(db)

    def schedule(self, db: str) -> None:
        with self._lock:
            if self._stop.is_set():
                return
            if db in self._running:
                self._again.add(db)
                return
            self._running.add(db)
        self._pool.submit(self._work, db)

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Block until no worker runs (for tests and shutdown); False on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if not self._running:
                    return True
            time.sleep(0.005)
        return False

    def close(self) -> None:
        self._stop.set()
        self._pool.shutdown(wait=True)
        with self._lock:
            timer = self._timer
        if timer is not None:
            timer.join(timeout=5)

    def _work(self, db: str) -> None:
        try:
            while not self._stop.is_set():
                self.engine.compact_until_done(db, stop=self._stop)
                with self._lock:
                    if db not in self._again:
                        self._running.discard(db)
                        return
                    self._again.discard(db)
        except DatabaseNotFound:
            with self._lock:
                self._last_commit.pop(db, None)
        except SqlkvError as exc:
            log.warning(
                "compaction failed for database %r: %s: %s (retried on the next commit)",
                db,
                type(exc).__name__,
                exc,
                extra=failure_fields(exc, db=db),
            )
        except Exception as exc:  # a bug: log it loudly, keep the coordinator alive
            log.exception(
                "compaction crashed for database %r: %s: %s",
                db,
                type(exc).__name__,
                exc,
                extra=failure_fields(exc, db=db),
            )
        with self._lock:
            self._running.discard(db)
            self._again.discard(db)

    def _idle_loop(self) -> None:
        period = self.config.idle_seconds
        while not self._stop.wait(period / 2):
            now = time.monotonic()
            with self._lock:
                idle = [db for db, last in self._last_commit.items() if now - last >= period]
                for db in idle:
                    del self._last_commit[db]
            for db in idle:
                self.schedule(db)
