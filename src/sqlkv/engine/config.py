"""Engine settings: one dataclass holding every default, validated with precise messages."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from sqlkv.errors import ConfigError

MiB = 1024 * 1024
PAGE_SIZE = 4096
"""The page size of every v2 database (the client, the engine and the importers use it)."""


@dataclass(frozen=True)
class EngineConfig:
    """Tunables of the storage engine.

    - ``max_delta_bytes``: largest encoded commit on the one-transaction path; a larger one
      answers ``CommitTooLarge`` and goes through commit_stage/commit_finalize.
    - ``preload_bytes``: bound on the pages returned by ``open`` (page 1 plus hints).
    - ``part_pages``: pages per LTX part of a delta, so a reader fetches only one part.
    - ``default_quota_bytes``: storage quota given to new databases (0 = unlimited).
    - ``pidx_cache_rows``: bound on the PIDX rows cached over all databases (LRU).
    - ``max_unfolded_bytes`` / ``max_live_deltas``: back-pressure. Past either, commits
      answer the retryable ``CompactionBehind`` until compaction catches up.
    """

    max_delta_bytes: int = 8 * MiB
    preload_bytes: int = 1 * MiB
    part_pages: int = 64
    default_quota_bytes: int = 0
    page_size: int = PAGE_SIZE
    shard_size: int = 64
    max_unfolded_bytes: int = 256 * MiB
    max_live_deltas: int = 4096
    pidx_cache_rows: int = 1_000_000

    def validate(self) -> None:
        if self.max_delta_bytes < 64 * 1024:
            raise ConfigError(f"max_delta_bytes must be at least 65536, got {self.max_delta_bytes}")
        if self.preload_bytes < 0:
            raise ConfigError(f"preload_bytes must be >= 0, got {self.preload_bytes}")
        if not 1 <= self.part_pages <= 65536:
            raise ConfigError(f"part_pages must be within 1..65536, got {self.part_pages}")
        if self.default_quota_bytes < 0:
            raise ConfigError("default_quota_bytes must be >= 0 (0 means no quota)")
        if self.page_size != PAGE_SIZE:
            raise ConfigError(
                f"page_size must be {PAGE_SIZE} (the client's page size), got {self.page_size}"
            )
        if self.max_unfolded_bytes < self.max_delta_bytes:
            raise ConfigError("max_unfolded_bytes must be at least max_delta_bytes")
        if self.max_live_deltas < 2:
            raise ConfigError(f"max_live_deltas must be at least 2, got {self.max_live_deltas}")
        if self.pidx_cache_rows < 0:
            raise ConfigError(f"pidx_cache_rows must be >= 0, got {self.pidx_cache_rows}")
        if self.shard_size != 64:
            raise ConfigError(f"shard_size must be 64, got {self.shard_size}")

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> EngineConfig:
        valid = {f.name for f in fields(cls)}
        unknown = set(values) - valid
        if unknown:
            raise ConfigError(
                f"unknown engine setting(s) {sorted(unknown)}; valid settings: {sorted(valid)}"
            )
        config = cls(**values)
        config.validate()
        return config

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
