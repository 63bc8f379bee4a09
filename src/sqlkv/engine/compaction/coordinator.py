"""The compaction coordinator: at most one worker per database, several databases in
parallel on a bounded pool, woken by commits that leave the database *due* and by an idle
timer.

Due (``CompactionCoordinator.due``): enough live deltas that a pass is worth its fixed cost.
A pass costs about a millisecond of CPU whatever it folds (two planning reads, the shards
spliced, one guarded apply) plus a little per delta, so tiny deltas (one-row commits) wait
for ``delta_count_limit`` of them, while deltas averaging ``small_delta_bytes`` or more
(they name more parts, which reads must fetch) are folded from ``delta_count_threshold``
on; ``delta_bytes_threshold`` bounds the bytes waiting. Never later than half the engine's
back-pressure limits, so commits are not refused while a pass could run.

A worker woken by a commit runs passes while the database is due, then sleeps: it does not
chase the last few deltas of a steady stream, one pass per commit. The idle timer folds a
quiet database down to no live delta. Errors are logged and counted, never raised into
commits. docs/hot-path.md "Compaction of tiny deltas" has the measurements.
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

    - ``delta_count_limit``: a commit that leaves this many live deltas, however small,
      wakes the database's worker.
    - ``delta_count_threshold`` / ``small_delta_bytes``: so does one that leaves this many
      live deltas averaging at least ``small_delta_bytes`` stored bytes.
    - ``delta_bytes_threshold``: so does one that leaves this many live delta bytes.
    - ``idle_seconds``: a database with live deltas and no commit for this long is
      compacted down to none.
    - ``shards_per_pass``: shards folded per store transaction (bounds its size).
    - ``workers``: databases compacted in parallel.
    """

    delta_count_threshold: int = 16
    delta_bytes_threshold: int = 4 * 1024 * 1024
    delta_count_limit: int = 32
    small_delta_bytes: int = 16 * 1024
    idle_seconds: float = 2.0
    shards_per_pass: int = 16
    workers: int = 2

    def validate(self) -> None:
        if self.delta_count_threshold < 1 or self.delta_bytes_threshold < 1:
            raise ConfigError("compaction thresholds must be positive")
        if self.delta_count_limit < self.delta_count_threshold:
            raise ConfigError(
                f"delta_count_limit ({self.delta_count_limit}) must be at least "
                f"delta_count_threshold ({self.delta_count_threshold})"
            )
        if self.small_delta_bytes < 0:
            raise ConfigError(f"small_delta_bytes must be >= 0, got {self.small_delta_bytes}")
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
        # what the next run of each scheduled database does: True (the idle timer, or
        # nothing said) folds to no live delta, False (a commit) runs passes while it is due
        self._drain: dict[str, bool] = {}
        self._last_commit: dict[str, float] = {}
        self._stop = threading.Event()
        # started by the first commit: an engine that only opens and reads (a cold
        # connection, most of ``sqlkv.connect``'s) never pays for a thread
        self._timer: threading.Thread | None = None
        cfg, limits = self.config, engine.config
        # half the back-pressure limits: a pass starts well before commits are refused
        self._count_limit = max(1, min(cfg.delta_count_limit, limits.max_live_deltas // 2))
        self._bytes_limit = max(1, min(cfg.delta_bytes_threshold, limits.max_unfolded_bytes // 2))
        self._threshold = min(cfg.delta_count_threshold, self._count_limit)

    def due(self, head: Head) -> bool:
        """True when ``head`` has enough live deltas for a pass (module docstring)."""
        n, size = head.delta_count, head.delta_bytes
        return (
            n >= self._count_limit
            or size >= self._bytes_limit
            or (n >= self._threshold and size >= n * self.config.small_delta_bytes)
        )

    def notify(self, db: str, head: Head) -> None:
        """Called after every commit: wake the worker when a threshold is crossed."""
        with self._lock:
            self._last_commit[db] = time.monotonic()
            if self._timer is None and not self._stop.is_set():
                self._timer = threading.Thread(
                    target=self._idle_loop, name="sqlkv-compact-idle", daemon=True
                )
                self._timer.start()
        if self.due(head):
            self.schedule(db)

    def schedule(self, db: str, *, drain: bool = False) -> None:
        """Run passes on ``db`` while it is due (``drain``: until no live delta is left)."""
        with self._lock:
            if self._stop.is_set():
                return
            self._drain[db] = drain or self._drain.get(db, False)
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
                with self._lock:
                    drain = self._drain.pop(db, True)
                if drain:
                    self.engine.compact_until_done(db, stop=self._stop)
                else:
                    self._compact_while_due(db)
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
            self._drain.pop(db, None)

    def _compact_while_due(self, db: str) -> None:
        """Passes while the database is due (a pass that changes nothing ends it too).

        Due is decided on the newest META this engine knows before every pass, the first
        too: commits that land during a pass wake the worker again (``_again``), but the
        pass they saw coming may have folded them already, and a pass over the few deltas
        left then would run at about twice the passes per commit."""
        while not self._stop.is_set():
            known = self._known(db)
            if known is not None and not self.due(known):
                return
            out = self.engine.compact(db)
            if not out.changed:
                return

    def _known(self, db: str) -> Head | None:
        """The newest head of ``db`` this engine wrote or was told (``MetaCache``), if any."""
        raw = self.engine.heads.get(db)
        return None if raw is None else Head.decode(raw, db)

    def _idle_loop(self) -> None:
        period = self.config.idle_seconds
        while not self._stop.wait(period / 2):
            now = time.monotonic()
            with self._lock:
                idle = [db for db, last in self._last_commit.items() if now - last >= period]
                for db in idle:
                    del self._last_commit[db]
            for db in idle:
                self.schedule(db, drain=True)
