"""The storage engine (docs/design.md §3, §4): one module per operation, one module for the keys."""

from sqlkv.engine.api import CommitResult, EngineApi, OpenResult, PagesResult, StageResult
from sqlkv.engine.config import EngineConfig
from sqlkv.engine.engine import Engine
from sqlkv.engine.head import Head

__all__ = [
    "CommitResult",
    "Engine",
    "EngineApi",
    "EngineConfig",
    "Head",
    "OpenResult",
    "PagesResult",
    "StageResult",
]
