"""Client settings: one dataclass holding every default, validated with precise messages."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from sqlkv.engine.config import PAGE_SIZE
from sqlkv.errors import ConfigError
from sqlkv.retry import backoff
from sqlkv.sizes import parse_size
from sqlkv.vfs.v2.cache import default_cache_bytes

__all__ = ["PAGE_SIZE", "VfsConfig", "parse_cache_size"]

KiB = 1024
MiB = 1024 * KiB


def parse_cache_size(value: int | str) -> int:
    """Cache size in bytes from an int (bytes) or a string: ``"64MiB"``, ``"2000 pages"``."""
    return parse_size(value, "cache_size", page_size=PAGE_SIZE)


@dataclass(frozen=True)
class VfsConfig:
    """Tunables of one sqlkv v2 connection.

    - ``cache_bytes``: bound on the VFS page cache (whole pages; 0 disables it). The default
      is a quarter of physical memory, at least 64 MiB, and every cache of the process also
      shares one budget of that size (``cache.PROCESS_BUDGET``). SQLite's own pager cache
      of the main database is set to the same size (at least SQLite's default 2,000 KiB)
      and counts against that budget too (``cache.py``, docs/vfs.md "Memory").
    - ``preload_bytes``: pages asked for at open (page 1 onwards), so a cold start of a small
      database costs one round trip.
    - ``readahead_max_bytes``: largest read-ahead window; it is also capped at half the cache.
    - ``fast_path_bytes``: a transaction of at most this many raw page bytes is one ``commit``;
      a larger one (or one the engine answers ``CommitTooLarge``) is staged in chunks of
      ``stage_chunk_bytes`` and finalized.
    - ``retry_attempts`` / ``retry_base_s`` / ``retry_max_s``: retries of retryable engine
      errors, with exponential backoff, before an I/O error surfaces.
    - ``create``: open creates a missing database (the default); False opens an existing
      one only, else ``DatabaseNotFound`` (the DB-API's ``file:NAME?mode=rw``).
    """

    cache_bytes: int = default_cache_bytes()
    preload_bytes: int = 1 * MiB
    readahead_max_bytes: int = 4 * MiB
    fast_path_bytes: int = 4 * MiB
    stage_chunk_bytes: int = 4 * MiB
    retry_attempts: int = 6
    retry_base_s: float = 0.02
    retry_max_s: float = 1.0
    create: bool = True

    @property
    def cache_pages(self) -> int:
        return self.cache_bytes // PAGE_SIZE

    @property
    def readahead_max_pages(self) -> int:
        return max(0, min(self.readahead_max_bytes // PAGE_SIZE, self.cache_pages // 2))

    def validate(self) -> None:
        for name in ("cache_bytes", "preload_bytes", "readahead_max_bytes"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.fast_path_bytes < PAGE_SIZE:
            raise ConfigError(f"fast_path_bytes must be >= {PAGE_SIZE}, got {self.fast_path_bytes}")
        if self.stage_chunk_bytes < PAGE_SIZE:
            raise ConfigError(
                f"stage_chunk_bytes must be >= {PAGE_SIZE}, got {self.stage_chunk_bytes}"
            )
        if self.retry_attempts < 1:
            raise ConfigError(f"retry_attempts must be >= 1, got {self.retry_attempts}")
        if self.retry_base_s < 0 or self.retry_max_s < self.retry_base_s:
            raise ConfigError("retry delays must satisfy 0 <= retry_base_s <= retry_max_s")

    @classmethod
    def from_options(cls, cache_size: int | str | None, options: dict[str, Any]) -> VfsConfig:
        valid = {f.name for f in fields(cls)} - {"cache_bytes"}
        unknown = set(options) - valid
        if unknown:
            raise ConfigError(
                f"unknown connect option(s) {sorted(unknown)}; valid options: "
                f"cache_size, {', '.join(sorted(valid))}"
            )
        values = dict(options)
        if cache_size is not None:
            values["cache_bytes"] = parse_cache_size(cache_size)
        config = cls(**values)
        config.validate()
        return config

    def backoff(self, attempt: int) -> float:
        """Delay before retry number ``attempt`` (1-based)."""
        return backoff(attempt, self.retry_base_s, self.retry_max_s)
