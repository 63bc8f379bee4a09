"""The engine settings of ``sqlkv serve``: a TOML file (``--config``) and ``--set`` flags.

    # serve.toml
    [engine]
    default_quota_bytes = "10GiB"
    max_delta_bytes = "16MiB"
    metrics_per_database = false
    [compaction]
    workers = 4
    idle_seconds = 5

    sqlkv serve --config serve.toml --set compaction.workers=8

A ``--set SECTION.NAME=VALUE`` wins over the file. Both are validated like the client's
configuration: an unknown table or setting is refused with the list of valid ones, a
value of the wrong type or out of range with the setting's name (``EngineConfig``,
``CompactionConfig``). The settings and their validation: docs/cli.md §5.
"""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlkv.engine.compaction import CompactionConfig
from sqlkv.engine.config import EngineConfig
from sqlkv.errors import ConfigError

SECTIONS = ("engine", "compaction")


@dataclass(frozen=True)
class ServeSettings:
    engine: EngineConfig
    compaction: CompactionConfig


def load_settings(
    path: Path | None, assignments: Sequence[str], *, per_database: bool = False
) -> ServeSettings:
    """The settings of ``--config path`` overridden by each ``--set`` assignment."""
    tables: dict[str, dict[str, Any]] = {name: {} for name in SECTIONS}
    if path is not None:
        for section, values in _read_file(path).items():
            tables[section].update(values)
    for text in assignments:
        section, name, value = _parse_assignment(text)
        tables[section][name] = value
    if per_database:
        tables["engine"]["metrics_per_database"] = True
    return ServeSettings(
        EngineConfig.from_dict(tables["engine"]),
        CompactionConfig.from_dict(tables["compaction"]),
    )


def _read_file(path: Path) -> dict[str, dict[str, Any]]:
    try:
        with path.open("rb") as f:
            data = tomllib.load(f)
    except OSError as exc:
        raise ConfigError(f"--config {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"--config {path}: not valid TOML: {exc}") from None
    unknown = sorted(set(data) - set(SECTIONS))
    if unknown:
        raise ConfigError(
            f"--config {path}: unknown table(s) {', '.join(unknown)}; valid tables: "
            f"{', '.join(SECTIONS)}"
        )
    for section, values in data.items():
        if not isinstance(values, dict):
            raise ConfigError(f"--config {path}: {section} must be a table, [{section}]")
    return data


def _parse_assignment(text: str) -> tuple[str, str, str]:
    key, sep, value = text.partition("=")
    section, dot, name = key.strip().partition(".")
    if not sep or not dot or not name:
        raise ConfigError(
            f"--set {text!r} must be SECTION.NAME=VALUE, like engine.max_delta_bytes=16MiB"
        )
    if section not in SECTIONS:
        raise ConfigError(
            f"--set {text!r}: unknown section {section!r}; valid sections: {', '.join(SECTIONS)}"
        )
    return section, name.strip(), value.strip()
