"""The engine over the network (``sqlkv serve``): protocol, server, auth and client.

- ``protocol.py``: frames, message types and their schemas (version 1);
- ``codec.py``: the struct field encoding every message uses;
- ``codes.py``: error answers, one stable code per exception class;
- ``server.py``: the asyncio server; ``http.py``: ``/metrics`` and ``/healthz``;
- ``auth.py``: shared or per-database tokens; ``metrics.py``: server metrics;
- ``client.py``: ``RemoteEngine`` / ``connect_engine``, ``EngineApi`` over the network.

Only ``client`` is imported by library users; the rest loads with ``sqlkv serve``.
"""

from __future__ import annotations

from sqlkv.errors import CommitOutcomeUnknown, ServerShuttingDown
from sqlkv.server.client import RemoteEngine, connect_engine, parse_engine_url

__all__ = [
    "CommitOutcomeUnknown",
    "RemoteEngine",
    "ServerShuttingDown",
    "connect_engine",
    "parse_engine_url",
]
