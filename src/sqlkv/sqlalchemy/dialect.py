"""``sqlite+sqlkv://``: SQLAlchemy's pysqlite dialect on ``sqlkv.dbapi2``.

URL: ``sqlite+sqlkv:///NAME[?store=URL | ?engine=URL[&token=T]][&cache_size=64MiB]``
``[&readonly=1][&at=TXID|TIME|LABEL]`` plus
pysqlite's own query arguments (``timeout``, ``isolation_level``, ``detect_types``,
``cached_statements``). NAME is the sqlkv database name, passed to ``sqlkv.dbapi2.connect``
unchanged (not made into an absolute path as pysqlite does). Without ``store``/``engine``
the connection resolves ``SQLKV_STORE`` / ``SQLKV_ENGINE`` / ``SQLKV_TOKEN`` at connect
time exactly as ``sqlkv.connect`` does (``sqlkv.config.ClientConfig``).

Pool: ``OneOwnerPool``, a ``QueuePool`` of exactly one connection. Opening a sqlkv
database takes it over and fences the connection that had it, so two pooled connections
to one database would fence each other; with one, checkouts from several threads take
turns (waiting up to ``pool_timeout``) and every transaction runs on the one owner.
A read-only URL (``readonly=1`` or ``at=``, docs/read-replicas.md) takes nothing over, so
its pool is SQLAlchemy's ordinary ``QueuePool`` (5 connections, 10 overflow): readers run
side by side, and a pooled reader keeps its page cache, which each read transaction
refreshes by one round trip and the changed pages only.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import exc, pool
from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite
from sqlalchemy.engine.url import URL


def _flag(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise exc.ArgumentError(f"sqlkv URL argument readonly={value!r}: give 1 or 0")


def _at(value: str) -> Any:
    from sqlkv.errors import ConfigError
    from sqlkv.vfs.v2.reader import parse_at

    try:
        return parse_at(value)
    except ConfigError as error:
        raise exc.ArgumentError(f"sqlkv URL argument at: {error}") from error


SQLKV_ARGS: dict[str, Any] = {
    "store": str,
    "engine": str,
    "token": str,
    "cache_size": str,
    "readonly": _flag,
    "at": _at,
}
PYSQLITE_ARGS = {
    "timeout": float,
    "isolation_level": str,
    "detect_types": int,
    "cached_statements": int,
}

ONE_OWNER = (
    "a sqlkv database has one owner at a time: a second connection to it takes it over "
    "and fences the first, so the sqlite+sqlkv pool holds exactly one connection "
    "(pool_size=1, max_overflow=0)"
)


def _refuse_more_than_one(pool_size: int, max_overflow: int) -> None:
    if pool_size != 1 or max_overflow != 0:
        raise exc.ArgumentError(
            f"pool_size={pool_size}, max_overflow={max_overflow}: {ONE_OWNER}; use "
            "pool_timeout to bound the wait for it, or poolclass=NullPool to open (and take "
            "over) the database for each checkout"
        )


class OneOwnerPool(pool.QueuePool):
    """A ``QueuePool`` that holds one connection: the one owner of the database."""

    def __init__(self, creator: Any, pool_size: int = 1, max_overflow: int = 0, **kw: Any):
        _refuse_more_than_one(pool_size, max_overflow)
        super().__init__(creator, pool_size=1, max_overflow=0, **kw)


def connect_args(url: URL) -> tuple[list[Any], dict[str, Any]]:
    """``sqlkv.dbapi2.connect`` arguments for ``url`` (shared by the async dialect)."""
    if url.username or url.password or url.host or url.port:
        raise exc.ArgumentError(
            f"invalid sqlkv URL {url.render_as_string()!r}: the part after :/// is the "
            "database name; give the store as ?store=URL (or SQLKV_STORE), e.g. "
            "sqlite+sqlkv:///orders?store=postgresql://user:pw@host/db"
        )
    opts = dict(url.query)
    unknown = sorted(set(opts) - set(SQLKV_ARGS) - set(PYSQLITE_ARGS))
    if unknown:
        raise exc.ArgumentError(
            f"unknown sqlkv URL argument(s) {', '.join(unknown)}; valid: "
            f"{', '.join([*SQLKV_ARGS, *PYSQLITE_ARGS])}"
        )
    kwargs: dict[str, Any] = {}
    for key, type_ in {**SQLKV_ARGS, **PYSQLITE_ARGS}.items():
        if key in opts:
            value = opts[key]
            if not isinstance(value, str):  # ?key=a&key=b
                raise exc.ArgumentError(f"sqlkv URL argument {key} given more than once")
            kwargs[key] = type_(value)
    # pooled connections move between threads (one at a time: the pool has one)
    kwargs["check_same_thread"] = False
    return [url.database or ":memory:"], kwargs


class SQLKVDialect(SQLiteDialect_pysqlite):
    """pysqlite with ``sqlkv.dbapi2`` as the driver and a one-connection pool."""

    driver = "sqlkv"
    supports_statement_cache = True

    @classmethod
    def import_dbapi(cls) -> Any:
        from sqlkv import dbapi2

        return dbapi2

    @classmethod
    def get_pool_class(cls, url: URL) -> type[pool.Pool]:
        return pool.QueuePool if is_readonly(url) else OneOwnerPool

    def create_connect_args(self, url: URL) -> Any:
        return connect_args(url)

    def is_disconnect(self, e: Any, connection: Any, cursor: Any) -> bool:
        return is_fenced(e) or super().is_disconnect(e, connection, cursor)


def is_readonly(url: URL) -> bool:
    """Whether ``url`` opens read-only connections (``readonly=1`` or ``at=``)."""
    readonly = url.query.get("readonly")
    return "at" in url.query or (isinstance(readonly, str) and _flag(readonly))


def is_fenced(error: BaseException) -> bool:
    """A fenced connection is dead for good: the pool discards it, and the next checkout
    opens the database again (taking it back over)."""
    from sqlkv.errors import ConnectionFenced

    return isinstance(error, ConnectionFenced)


dialect = SQLKVDialect
