"""Stores are named by URL everywhere: library, command line and ``SQLKV_STORE``.

- ``memory://`` a new in-memory store; ``memory://NAME`` the one store of that name in this
  process (so two connections can share it); ``?latency_ms=20&jitter_ms=2`` injects latency.
- ``file:///path/to/dir`` or a bare path: the embedded default store in that directory.
- ``lmdb:///path/to/dir``: the LMDB store (the embedded candidate that lost on measurement).
- ``postgresql://user:password@host:port/dbname``: a PostgreSQL server.
- ``etcd://[user:password@]host1:2379,host2:2379/prefix`` (``etcds://`` for TLS): an etcd
  v3 cluster, every key under ``prefix`` (options in ``store/etcd_client.py``).

With nothing given, ``SQLKV_STORE`` is read at call time, then the default ``./sqlkv-data``.

``parse_store_url`` is the one validation of a store URL: ``open_store`` and the command
line both use it, so a typo (``memory:/``, ``lmdb://relative``, ``file://relative/dir``,
an engine URL given as a store) is refused the same way everywhere, with a hint, before
anything is created (the table of typos: docs/cli.md §2).
"""

from __future__ import annotations

import os
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from sqlkv.errors import ConfigError
from sqlkv.store.base import Limits, Store

DEFAULT_STORE_URL = "./sqlkv-data"
STORE_ENV = "SQLKV_STORE"
URL_FORMS = (
    "a directory path or file:///abs/dir (embedded), lmdb:///abs/dir (LMDB), "
    "memory:// or memory://NAME (in process), postgresql://user:password@host:port/dbname, "
    "etcd://host1:2379,host2:2379/prefix (etcd cluster)"
)
"""Every accepted form, for messages and ``--help``."""

MEMORY_OPTIONS = ("latency_ms", "jitter_ms")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")

_named_memory: dict[str, Store] = {}
_named_lock = threading.Lock()


@dataclass(frozen=True)
class StoreUrl:
    """A validated store URL. ``kind`` is ``memory``, ``embedded``, ``lmdb`` or
    ``postgresql``; ``path`` is set for the two local kinds, ``name`` for a named memory
    store, ``options`` holds the memory store's latency settings in seconds."""

    text: str
    kind: str
    path: Path | None = None
    name: str = ""
    options: dict[str, float] = field(default_factory=dict)


def resolve_store_url(url: str | None) -> str:
    """The URL to use: the argument, else ``$SQLKV_STORE``, else the default directory."""
    if url:
        return url
    return os.environ.get(STORE_ENV) or DEFAULT_STORE_URL


def parse_store_url(text: str) -> StoreUrl:
    """Validate ``text`` (see the module docstring) or raise ``ConfigError`` with a hint."""
    if not isinstance(text, str) or not text.strip():
        raise ConfigError(f"store URL {text!r} is empty; use {URL_FORMS}")
    m = _SCHEME.match(text)
    if m is None:
        return StoreUrl(text, "embedded", Path(text).expanduser())
    scheme = m.group(1).lower()
    rest = text[m.end() :]
    if scheme == "memory":
        return _memory(text, rest)
    if scheme in ("file", "lmdb"):
        return _local(text, scheme)
    if scheme in ("postgresql", "postgres"):
        if not rest.startswith("//"):
            raise ConfigError(
                f"store URL {text!r}: PostgreSQL URLs are postgresql://user:password@host:port/"
                "dbname (two slashes after the colon)"
            )
        return StoreUrl(text, "postgresql")
    if scheme in ("etcd", "etcds"):
        from sqlkv.store.etcd_client import parse_url

        parse_url(text)  # refuses a malformed etcd URL here, with its reason
        return StoreUrl(text, "etcd")
    if scheme == "sqlkv":
        raise ConfigError(
            f"{text!r} is an engine server URL, not a store: give it as --engine, "
            "SQLKV_ENGINE or engine=; a store URL is one of: " + URL_FORMS
        )
    raise ConfigError(
        f"unknown store URL scheme {scheme!r} in {text!r}; use {URL_FORMS} "
        f"(a directory whose name has a colon: write ./{text})"
    )


def _memory(text: str, rest: str) -> StoreUrl:
    if not rest.startswith("//"):
        raise ConfigError(
            f"store URL {text!r}: a memory store is memory:// (a new one) or memory://NAME "
            "(shared in this process); did you mean memory://?"
        )
    parts = urlsplit(text)
    if parts.path or parts.fragment:
        raise ConfigError(
            f"store URL {text!r}: a memory store's NAME cannot contain '/' or '#'; "
            "use memory://NAME"
        )
    raw = parse_qs(parts.query, keep_blank_values=True)
    unknown = sorted(set(raw) - set(MEMORY_OPTIONS))
    if unknown:
        raise ConfigError(
            f"unknown memory store option(s) {unknown}; valid: {', '.join(MEMORY_OPTIONS)}"
        )
    options: dict[str, float] = {}
    for key, values in raw.items():
        try:
            value = float(values[-1])
        except ValueError:
            raise ConfigError(
                f"memory store option {key}={values[-1]!r} must be a number of milliseconds"
            ) from None
        if value < 0:
            raise ConfigError(f"memory store option {key} must be >= 0, got {value}")
        options[key.removesuffix("_ms") + "_s"] = value / 1000
    return StoreUrl(text, "memory", name=parts.netloc, options=options)


def _local(text: str, scheme: str) -> StoreUrl:
    parts = urlsplit(text)
    kind = "embedded" if scheme == "file" else "lmdb"
    example = f"{scheme}:///var/lib/sqlkv"
    if parts.netloc not in ("", "localhost"):
        relative = "a bare path, like ./dir" if kind == "embedded" else f"{scheme}://$PWD/dir"
        raise ConfigError(
            f"store URL {text!r}: {scheme} URLs name a local directory by its absolute path, "
            f"like {example} (three slashes); {parts.netloc!r} would be a host name. "
            f"A relative directory is {relative}"
        )
    path = unquote(parts.path)
    if not path.startswith("/"):
        raise ConfigError(
            f"store URL {text!r}: {scheme} URLs need an absolute path, like {example}"
        )
    if parts.query or parts.fragment:
        raise ConfigError(f"store URL {text!r}: {scheme} stores take no ?options or #fragment")
    return StoreUrl(text, kind, Path(path))


def open_store(url: str | Store | None = None, *, limits: Limits | None = None) -> Store:
    """Open the store named by ``url`` (see the module docstring), or return a given Store."""
    if isinstance(url, Store):
        return url
    parsed = parse_store_url(resolve_store_url(url))
    if parsed.kind == "memory":
        return _open_memory(parsed, limits)
    if parsed.kind == "embedded":
        from sqlkv.store.embedded import EmbeddedStore

        assert parsed.path is not None
        return EmbeddedStore(parsed.path, limits=limits)
    if parsed.kind == "lmdb":
        from sqlkv.store.lmdb_store import LmdbStore

        assert parsed.path is not None
        return LmdbStore(parsed.path, limits=limits)
    from sqlkv.store.postgres import PostgresStore

    if parsed.kind == "etcd":
        from sqlkv.store.etcd import EtcdStore

        return EtcdStore(parsed.text, limits=limits)
    return PostgresStore(parsed.text, limits=limits)


def _open_memory(parsed: StoreUrl, limits: Limits | None) -> Store:
    from sqlkv.store.memory import MemoryStore

    latency = parsed.options.get("latency_s", 0.0)
    jitter = parsed.options.get("jitter_s", 0.0)
    if not parsed.name:
        return MemoryStore(limits=limits, latency_s=latency, jitter_s=jitter)
    with _named_lock:
        store = _named_memory.get(parsed.name)
        if store is None:
            store = MemoryStore(
                limits=limits, latency_s=latency, jitter_s=jitter, url=f"memory://{parsed.name}"
            )
            _named_memory[parsed.name] = store
        return store
