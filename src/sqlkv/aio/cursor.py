"""The async cursor of ``sqlkv.aio``: a DB-API cursor whose every call runs on its
connection's worker thread (``async for row in cursor`` fetches in chunks)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlkv.aio.connection import Connection


class Cursor:
    """aiosqlite's ``Cursor``: ``await cur.execute(...)``, ``await cur.fetchone()``,
    ``async for row in cur``, ``async with db.cursor() as cur``. Attributes (``rowcount``,
    ``lastrowid``, ``description``) are those of the last completed call."""

    def __init__(self, conn: Connection, cursor: Any) -> None:
        self._conn = conn
        self._cursor = cursor
        self.iter_chunk_size = conn.iter_chunk_size

    async def _call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return await self._conn._call(fn, *args, **kwargs)

    async def execute(self, sql: str, parameters: Any = None) -> Cursor:
        if parameters is None:
            await self._call(self._cursor.execute, sql)
        else:
            await self._call(self._cursor.execute, sql, parameters)
        return self

    async def executemany(self, sql: str, parameters: Iterable[Any]) -> Cursor:
        await self._call(self._cursor.executemany, sql, parameters)
        return self

    async def executescript(self, sql_script: str) -> Cursor:
        await self._call(self._cursor.executescript, sql_script)
        return self

    async def fetchone(self) -> Any:
        return await self._call(self._cursor.fetchone)

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        if size is None:
            size = self._cursor.arraysize
        rows: list[Any] = await self._call(self._cursor.fetchmany, size)
        return rows

    async def fetchall(self) -> list[Any]:
        rows: list[Any] = await self._call(self._cursor.fetchall)
        return rows

    async def close(self) -> None:
        if self._conn.closed:  # closing the connection closed its cursors
            return
        await self._call(self._cursor.close)

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._chunks()

    async def _chunks(self) -> AsyncIterator[Any]:
        while True:
            rows = await self.fetchmany(self.iter_chunk_size)
            if not rows:
                return
            for row in rows:
                yield row

    async def __aenter__(self) -> Cursor:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @property
    def rowcount(self) -> int:
        return int(self._cursor.rowcount)

    @property
    def lastrowid(self) -> int | None:
        rowid: int | None = self._cursor.lastrowid
        return rowid

    @property
    def arraysize(self) -> int:
        return int(self._cursor.arraysize)

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def row_factory(self) -> Any:
        return self._cursor.row_factory

    @row_factory.setter
    def row_factory(self, factory: Any) -> None:
        self._cursor.row_factory = factory

    @property
    def connection(self) -> Connection:
        return self._conn
