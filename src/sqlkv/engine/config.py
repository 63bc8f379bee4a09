"""Engine settings: one dataclass holding every default, validated with precise messages.

``settings_from_dict`` builds a settings dataclass (``EngineConfig``, ``CompactionConfig``)
from loose values, as a config file or ``sqlkv serve --set`` gives them: unknown names are
listed with the valid ones, strings are converted by the field's type (``"16MiB"`` for a
``*_bytes`` field, ``"true"`` for a flag), and the result is validated.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, TypeVar

from sqlkv.errors import ConfigError
from sqlkv.sizes import parse_size

T = TypeVar("T")
_TRUE = ("true", "yes", "on", "1")
_FALSE = ("false", "no", "off", "0")

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
    - ``metrics_per_database``: label compaction gauges by database (unbounded series
      with one database per tenant; see ``sqlkv.engine.metrics``).
    - ``retention_s``: history retention window given to new databases, in seconds
      (0 = none: past states stay readable only until compaction folds them); each
      database keeps its own, changed with ``Engine.set_retention`` (docs/history.md).
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
    metrics_per_database: bool = False
    retention_s: float = 0.0

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
        if not 0 <= self.retention_s <= 10 * 365 * 24 * 3600:
            raise ConfigError(
                f"retention_s must be within 0 .. 315360000 (10 years), got {self.retention_s}"
            )
        if self.shard_size != 64:
            raise ConfigError(f"shard_size must be 64, got {self.shard_size}")

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> EngineConfig:
        """Settings from a config file's ``[engine]`` table (see ``settings_from_dict``)."""
        return settings_from_dict(cls, values, "engine")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def settings_from_dict(cls: type[T], values: dict[str, Any], what: str) -> T:
    """``cls(**values)`` validated, with loose values converted (module docstring);
    ``ConfigError`` naming the setting otherwise."""
    valid = [f.name for f in fields(cls)]  # type: ignore[arg-type]
    unknown = sorted(set(values) - set(valid))
    if unknown:
        raise ConfigError(
            f"unknown {what} setting(s) {', '.join(unknown)}; valid settings: {', '.join(valid)}"
        )
    types = {f.name: f.type for f in fields(cls)}  # type: ignore[arg-type]
    converted = {k: _convert(f"{what}.{k}", str(types[k]), v) for k, v in values.items()}
    config = cls(**converted)
    config.validate()  # type: ignore[attr-defined]
    return config


def _convert(setting: str, kind: str, value: Any) -> Any:
    if kind == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in _TRUE + _FALSE:
            return value.lower() in _TRUE
        raise ConfigError(f"{setting} must be true or false, got {value!r}")
    if kind == "int":
        if isinstance(value, str) and setting.endswith("_bytes"):
            return parse_size(value, setting)
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            return int(value)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        sizes = " or a size such as '16MiB'" if setting.endswith("_bytes") else ""
        raise ConfigError(f"{setting} must be an integer{sizes}, got {value!r}")
    if kind == "float":
        try:
            if not isinstance(value, bool):
                return float(value)
        except (TypeError, ValueError):
            pass
        raise ConfigError(f"{setting} must be a number, got {value!r}")
    return value
