"""Stores are named by URL everywhere: library, command line and ``SQLKV_STORE``.

- ``memory://`` a new in-memory store; ``memory://NAME`` the one store of that name in this
  process (so two connections can share it); ``?latency_ms=20&jitter_ms=2`` injects latency.
- ``file:///path/to/dir`` or a bare path: the embedded default store in that directory.
- ``lmdb:///path/to/dir``: the LMDB store (the embedded candidate that lost on measurement).
- ``postgresql://user:password@host:port/dbname``: a PostgreSQL server.
- ``etcd://[user:password@]host1:2379,host2:2379/prefix`` (``etcds://`` for TLS): an etcd
  v3 cluster, every key under ``prefix`` (options in ``store/etcd_client.py``).

With nothing given, ``SQLKV_STORE`` is read at call time, then the default ``./sqlkv-data``.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from sqlkv.errors import ConfigError
from sqlkv.store.base import Limits, Store

DEFAULT_STORE_URL = "./sqlkv-data"
STORE_ENV = "SQLKV_STORE"

_named_memory: dict[str, Store] = {}
_named_lock = threading.Lock()


def resolve_store_url(url: str | None) -> str:
    """The URL to use: the argument, else ``$SQLKV_STORE``, else the default directory."""
    if url:
        return url
    return os.environ.get(STORE_ENV) or DEFAULT_STORE_URL


def open_store(url: str | Store | None = None, *, limits: Limits | None = None) -> Store:
    """Open the store named by ``url`` (see the module docstring), or return a given Store."""
    if isinstance(url, Store):
        return url
    text = resolve_store_url(url)
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    options = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    if scheme == "memory":
        return _open_memory(parts.netloc + parts.path, options, limits)
    if scheme in ("", "file"):
        path = unquote(parts.path) if scheme == "file" else text
        if scheme == "file" and parts.netloc not in ("", "localhost"):
            raise ConfigError(
                f"store URL {text!r}: file URLs name a local directory, "
                "like file:///var/lib/sqlkv (three slashes)"
            )
        from sqlkv.store.embedded import EmbeddedStore

        return EmbeddedStore(Path(path), limits=limits)
    if scheme == "lmdb":
        from sqlkv.store.lmdb_store import LmdbStore

        return LmdbStore(Path(unquote(parts.netloc + parts.path)), limits=limits)
    if scheme in ("postgresql", "postgres"):
        from sqlkv.store.postgres import PostgresStore

        return PostgresStore(text, limits=limits)
    if scheme in ("etcd", "etcds"):
        from sqlkv.store.etcd import EtcdStore

        return EtcdStore(text, limits=limits)
    raise ConfigError(
        f"unknown store URL scheme {scheme!r} in {text!r}; use memory://, file:///dir, "
        "a directory path, lmdb:///dir, postgresql://user:password@host:port/dbname, "
        "or etcd://host1:2379,host2:2379/prefix"
    )


def _open_memory(name: str, options: dict[str, str], limits: Limits | None) -> Store:
    from sqlkv.store.memory import MemoryStore

    unknown = set(options) - {"latency_ms", "jitter_ms"}
    if unknown:
        raise ConfigError(
            f"unknown memory store option(s) {sorted(unknown)}; valid: latency_ms, jitter_ms"
        )
    try:
        latency = float(options.get("latency_ms", 0)) / 1000
        jitter = float(options.get("jitter_ms", 0)) / 1000
    except ValueError as exc:
        raise ConfigError(f"memory store latency options must be numbers: {exc}") from None
    if not name:
        return MemoryStore(limits=limits, latency_s=latency, jitter_s=jitter)
    with _named_lock:
        store = _named_memory.get(name)
        if store is None:
            store = MemoryStore(
                limits=limits, latency_s=latency, jitter_s=jitter, url=f"memory://{name}"
            )
            _named_memory[name] = store
        return store
