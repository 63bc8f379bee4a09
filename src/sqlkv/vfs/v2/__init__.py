"""The v2 client: an apsw VFS whose database pages live behind the storage engine
(docs/design.md §5; call order and threading model: docs/vfs.md).

``connect_v2`` (used by ``sqlkv.connect``) opens the database through an ``EngineApi`` and
returns a ``Connection``: an ``apsw.Connection`` with ``sqlkv_stats`` counters.
"""

from sqlkv.vfs.v2.config import VfsConfig, parse_cache_size
from sqlkv.vfs.v2.connection import Connection, connect_v2
from sqlkv.vfs.v2.counters import ClientCounters
from sqlkv.vfs.v2.remote import FENCED_MESSAGE, FencedIOError

__all__ = [
    "FENCED_MESSAGE",
    "ClientCounters",
    "Connection",
    "FencedIOError",
    "VfsConfig",
    "connect_v2",
    "parse_cache_size",
]
