"""What every store carries besides its data: size limits (``Limits``), the retry policy of
``Store.transact`` (``RetryPolicy``) and its counters (``StoreStats``). The contract itself
is ``store/base.py``, which re-exports these names."""

from __future__ import annotations

from dataclasses import dataclass, fields

from sqlkv.errors import ConfigError
from sqlkv.retry import backoff


@dataclass(frozen=True)
class Limits:
    """Size limits, FoundationDB's by default so data written through one driver fits all."""

    max_key_bytes: int = 10_000
    max_value_bytes: int = 100_000
    max_transaction_bytes: int = 10_000_000

    def validate(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, int) or value <= 0:
                raise ConfigError(f"limit {f.name} must be a positive integer, got {value!r}")


@dataclass(frozen=True)
class RetryPolicy:
    """How ``transact`` retries retryable errors: bounded attempts, exponential backoff."""

    max_attempts: int = 30
    initial_backoff_s: float = 0.001
    max_backoff_s: float = 0.25

    def backoff(self, attempt: int) -> float:
        """Seconds to sleep after failed attempt number ``attempt`` (1-based), with full jitter."""
        return backoff(attempt, self.initial_backoff_s, self.max_backoff_s, jitter=True)


@dataclass
class StoreStats:
    """Counters of one store object. ``round_trips`` counts reads and commits that reached it."""

    transactions: int = 0  # committed (read-only ones included)
    attempts: int = 0
    conflicts: int = 0
    round_trips: int = 0
    reads: int = 0  # keys returned by get, get_many and range reads
    writes: int = 0  # set, clear and clear_range operations committed
    bytes_read: int = 0
    bytes_written: int = 0

    def snapshot(self) -> StoreStats:
        return StoreStats(**{f.name: getattr(self, f.name) for f in fields(self)})

    def __sub__(self, other: StoreStats) -> StoreStats:
        return StoreStats(
            **{f.name: getattr(self, f.name) - getattr(other, f.name) for f in fields(self)}
        )
