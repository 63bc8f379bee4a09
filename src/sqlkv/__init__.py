"""sqlkv: SQLite databases whose durable pages live in a transactional key-value store."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from sqlkv.client import connect
    from sqlkv.vfs.v2 import ClientCounters, Connection

__all__ = ["ClientCounters", "Connection", "__version__", "connect"]


def __getattr__(name: str) -> Any:
    # imported on first use, so that ``import sqlkv`` (and the CLI) stays light
    if name == "connect":
        from sqlkv.client import connect

        return connect
    if name in ("Connection", "ClientCounters"):
        from sqlkv.vfs import v2

        return getattr(v2, name)
    raise AttributeError(f"module 'sqlkv' has no attribute {name!r}")
