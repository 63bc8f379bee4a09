"""``sqlkv.connect``: open a SQLite database whose pages live in a sqlkv store.

    import contextlib
    import sqlkv

    # embedded store: $SQLKV_STORE, else ./sqlkv-data
    with contextlib.closing(sqlkv.connect("orders")) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS t(x)")
        with conn:                                   # one transaction = one engine commit
            conn.execute("INSERT INTO t VALUES (1)")
        print(conn.sqlkv_stats.round_trips)

``with conn:`` is a transaction (as in apsw and the ``sqlite3`` module): it commits or rolls
back, and does not close the connection. ``contextlib.closing`` (or ``conn.close()``) closes
it, and with it the engine and store that ``connect`` opened for it.

Opening takes the database over: a connection that had it before is fenced out. A
read-only connection (``readonly=True``, ``at=``) does not: any number of them, in any
process, read while the owner writes (docs/read-replicas.md)::

    live = sqlkv.connect("orders", readonly=True)        # each read sees the newest commit
    past = sqlkv.connect("orders", at=1234)              # that committed state, for ever
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal, overload

import apsw

from sqlkv.engine.api import EngineApi
from sqlkv.engine.config import PAGE_SIZE
from sqlkv.errors import ConfigError
from sqlkv.keyspace import check_database_name
from sqlkv.store import Store, open_store
from sqlkv.vfs.v2 import Connection, VfsConfig, connect_v2, parse_cache_size

FORMATS = ("v2", "v1")


@overload
def connect(
    name: str,
    store: str | Store | None = None,
    *,
    engine: EngineApi | str | None = None,
    token: str | None = None,
    cache_size: int | str | None = None,
    format: Literal["v2"] = "v2",
    compaction: bool = True,
    readonly: bool | None = None,
    at: int | datetime | str | None = None,
    **options: Any,
) -> Connection: ...


@overload
def connect(
    name: str,
    store: str | Store | None = None,
    *,
    engine: EngineApi | str | None = None,
    token: str | None = None,
    cache_size: int | str | None = None,
    format: str,
    compaction: bool = True,
    readonly: bool | None = None,
    at: int | datetime | str | None = None,
    **options: Any,
) -> apsw.Connection: ...


def connect(
    name: str,
    store: str | Store | None = None,
    *,
    engine: EngineApi | str | None = None,
    token: str | None = None,
    cache_size: int | str | None = None,
    format: str = "v2",
    compaction: bool = True,
    readonly: bool | None = None,
    at: int | datetime | str | None = None,
    **options: Any,
) -> apsw.Connection:
    """Open database ``name`` and return an apsw connection to it.

    - ``store``: a store URL or ``Store``; None means ``$SQLKV_STORE``, else ``./sqlkv-data``
      (the embedded store). A store opened here from a URL is closed with the connection;
      a ``Store`` object passed in is left open. Without ``store`` or ``engine``,
      ``$SQLKV_ENGINE`` (and ``$SQLKV_TOKEN``) name an engine server to use instead; an
      explicit ``store`` wins over them (``sqlkv.config.ClientConfig``).
    - ``engine``: an engine server URL (``sqlkv://host:port[,host2:port2]``) or an
      ``EngineApi`` object to talk to instead of building an in-process ``Engine`` on the
      store. Give ``store`` or ``engine``, not both.
    - ``token``: the access token for an engine server URL (default ``$SQLKV_TOKEN``).
    - ``cache_size``: the VFS page cache bound, in bytes (an int) or as a string such as
      ``"64MiB"`` or ``"2000 pages"``. Default 64 MiB.
    - ``format``: ``"v2"`` (pages behind the storage engine) or ``"v1"`` (files as chunked
      KV, the benchmark baseline).
    - ``compaction``: when ``connect`` builds the engine, run its background compaction
      (folding deltas into shards) for as long as the connection is open.
    - ``readonly``: open a read-only connection that never takes the database over (so
      never fences its owner) and refuses writes (``apsw.ReadOnlyError``, "attempt to write
      a readonly database"). Without ``at`` it follows the head: each read transaction reads
      the newest committed state at its start, for one ``changes_since`` round trip. The
      database must exist (``DatabaseNotFound``). See docs/read-replicas.md.
    - ``at``: read this committed state for ever: a txid, a timezone-aware ``datetime`` (the
      newest commit at or before it) or a label; implies ``readonly`` (``readonly=False``
      with ``at`` is an error). A state older than the retention window raises
      ``SnapshotTooOld``.
    - ``options``: the other ``VfsConfig`` settings (``preload_bytes``,
      ``readahead_max_bytes``, ``fast_path_bytes``, ``stage_chunk_bytes``, ``retry_*``).
      With an engine URL, each of the ``retry_attempts`` tries every listed node once.
    """
    check_database_name(name)
    if not isinstance(store, Store) and (engine is None or isinstance(engine, str)):
        # flag > environment (SQLKV_STORE, SQLKV_ENGINE, SQLKV_TOKEN) > default, read now
        from sqlkv.config import ClientConfig

        settings = ClientConfig.from_env(store=store, engine=engine, token=token, format=format)
        engine, token = settings.engine, settings.token
        store = None if engine is not None else settings.store
    if at is not None and readonly is False:
        raise ConfigError("at= opens a past state, which is read-only: drop readonly=False")
    readonly = bool(readonly) or at is not None
    if format == "v1":
        if readonly:
            raise ConfigError("readonly=/at= need format='v2' (v1 keeps no history)")
        return _connect_v1(name, store, engine, cache_size, options)
    if format != "v2":
        raise ConfigError(f"unknown format {format!r}; valid formats: {', '.join(FORMATS)}")
    config = VfsConfig.from_options(cache_size, options)
    closers: list[Callable[[], None]] = []
    if token is not None and not isinstance(engine, str):
        raise ConfigError("token= goes with an engine server URL (engine='sqlkv://host:port')")
    if isinstance(engine, str):
        if store is not None:
            raise ConfigError("give store= or engine=, not both: an engine brings its own store")
        from sqlkv.server.client import connect_engine, parse_engine_url

        # one pass over the nodes per VFS attempt: the VFS owns the retry budget and backoff
        remote = connect_engine(engine, token=token, attempts=len(parse_engine_url(engine)))
        closers.append(remote.close)
        engine = remote
    elif engine is None:
        from sqlkv.engine import Engine, EngineConfig
        from sqlkv.engine.hint import shared_hints
        from sqlkv.engine.metrics import shared_metrics

        kv = open_store(store)
        if kv is not store:
            closers.append(kv.close)
        try:
            # a reader never compacts: it commits nothing, the owner's engine folds
            built = Engine(
                kv,
                EngineConfig(),
                compaction=compaction and not readonly,
                metrics=shared_metrics(),
                hints=shared_hints(kv),
            )
        except BaseException:
            for close in reversed(closers):
                close()
            raise
        close_engine = getattr(built, "close", None)
        if callable(close_engine):
            closers.append(close_engine)
        engine = built
    elif store is not None:
        raise ConfigError("give store= or engine=, not both: an engine brings its own store")
    if readonly:
        from sqlkv.vfs.v2.reader import connect_reader

        return connect_reader(name, engine, config, at=at, closers=closers)
    return connect_v2(name, engine, config, closers=closers)


def _connect_v1(
    name: str,
    store: str | Store | None,
    engine: EngineApi | str | None,
    cache_size: int | str | None,
    options: dict[str, Any],
) -> apsw.Connection:
    if engine is not None:
        raise ConfigError("engine= applies to format='v2' only; v1 talks to the store directly")
    from sqlkv.vfs.v1 import connect_v1

    if cache_size is not None:
        options = {**options, "cache_pages": parse_cache_size(cache_size) // PAGE_SIZE}
    kv = open_store(store)
    try:
        conn = connect_v1(name, kv, **options)
    except BaseException:
        if kv is not store:
            kv.close()
        raise
    if kv is not store:
        # v1 connections leave their store open; close the one opened here with them
        close_conn = conn.close

        def close(force: bool = False) -> None:
            try:
                close_conn(force)
            finally:
                kv.close()

        conn.close = close  # type: ignore[method-assign]
    return conn
