"""``sqlite+sqlkv_async://``: SQLAlchemy's aiosqlite dialect on ``sqlkv.aio``.

The async adaption (greenlets, adapted cursors) is SQLAlchemy's own, exactly as for
aiosqlite; ``sqlkv.aio`` offers aiosqlite's interface. What differs is here: the driver
module, a connection adapter that sets ``isolation_level`` through ``sqlkv.aio`` instead
of aiosqlite's private queue, and the one-connection pool of the sync dialect
(``sqlkv.sqlalchemy.dialect``), in its asyncio form (an ordinary ``AsyncAdaptedQueuePool``
for read-only URLs).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import pool
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_dbapi,
    SQLiteDialect_aiosqlite,
)
from sqlalchemy.engine.url import URL

from sqlkv.sqlalchemy.dialect import _refuse_more_than_one, connect_args, is_fenced, is_readonly

try:  # SQLAlchemy 2.1
    from sqlalchemy.util.concurrency import await_
except ImportError:  # SQLAlchemy 2.0
    from sqlalchemy.util.concurrency import await_only as await_


class AsyncAdapt_sqlkv_connection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ()

    @property
    def isolation_level(self) -> str | None:
        level: str | None = self._connection.isolation_level
        return level

    @isolation_level.setter
    def isolation_level(self, value: str | None) -> None:
        try:
            await_(self._connection.set_isolation_level(value))
        except Exception as error:
            self._handle_exception(error)


class AsyncAdapt_sqlkv_dbapi(AsyncAdapt_aiosqlite_dbapi):
    def connect(self, *arg: Any, **kw: Any) -> AsyncAdapt_sqlkv_connection:
        creator_fn = kw.pop("async_creator_fn", None)
        connect = creator_fn or self.aiosqlite.connect
        connection = connect(*arg, **kw)
        return AsyncAdapt_sqlkv_connection(self, await_(connection))


class OneOwnerAsyncPool(pool.AsyncAdaptedQueuePool):
    """``AsyncAdaptedQueuePool`` holding one connection (see ``OneOwnerPool``)."""

    def __init__(self, creator: Any, pool_size: int = 1, max_overflow: int = 0, **kw: Any):
        _refuse_more_than_one(pool_size, max_overflow)
        super().__init__(creator, pool_size=1, max_overflow=0, **kw)


class SQLKVDialect_async(SQLiteDialect_aiosqlite):
    driver = "sqlkv_async"
    supports_statement_cache = True

    @classmethod
    def import_dbapi(cls) -> Any:
        import sqlkv.aio
        from sqlkv import dbapi2

        return AsyncAdapt_sqlkv_dbapi(sqlkv.aio, dbapi2)

    def retrieve_dbapi_version(self, dbapi: Any) -> Any:
        from sqlalchemy import util

        import sqlkv

        return util.parse_version_string(sqlkv.__version__)

    @classmethod
    def get_pool_class(cls, url: URL) -> type[pool.Pool]:
        return pool.AsyncAdaptedQueuePool if is_readonly(url) else OneOwnerAsyncPool

    def create_connect_args(self, url: URL) -> Any:
        return connect_args(url)

    def is_disconnect(self, e: Any, connection: Any, cursor: Any) -> bool:
        return is_fenced(e) or super().is_disconnect(e, connection, cursor)


dialect = SQLKVDialect_async
