"""The storage engine (docs/design.md §3, §4): one module per operation, one module for the keys."""

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
