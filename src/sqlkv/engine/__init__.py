"""The storage engine (docs/design.md §3, §4): one module per operation, one module for the keys.

The names below are imported on first use, so that importing one light module of the
package (``sqlkv.engine.head``, ``sqlkv.engine.keys``) does not build the whole engine
(metrics, compaction, ...): the command line's light subcommands stay fast (docs/cli.md).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlkv.engine.api import (
        ChangesResult,
        CommitResult,
        EngineApi,
        OpenResult,
        PagesResult,
        SnapshotResult,
        StageResult,
    )
    from sqlkv.engine.config import EngineConfig
    from sqlkv.engine.engine import Engine
    from sqlkv.engine.head import Head
    from sqlkv.engine.verify import Problem, VerifyReport

_HOMES = {
    "ChangesResult": "api",
    "CommitResult": "api",
    "EngineApi": "api",
    "OpenResult": "api",
    "PagesResult": "api",
    "SnapshotResult": "api",
    "StageResult": "api",
    "EngineConfig": "config",
    "Engine": "engine",
    "Head": "head",
    "Problem": "verify",
    "VerifyReport": "verify",
}

__all__ = [
    "ChangesResult",
    "CommitResult",
    "Engine",
    "EngineApi",
    "EngineConfig",
    "Head",
    "OpenResult",
    "PagesResult",
    "Problem",
    "SnapshotResult",
    "StageResult",
    "VerifyReport",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'sqlkv.engine' has no attribute {name!r}")
    value = getattr(import_module(f"sqlkv.engine.{home}"), name)
    globals()[name] = value  # later lookups skip this function
    return value
