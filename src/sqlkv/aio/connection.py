"""The async connection of ``sqlkv.aio``: aiosqlite's interface over a DB-API connection
owned by one worker thread (``sqlkv.aio.worker``, which also defines what a cancelled
``await`` does)."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Generator, Iterable
from types import ModuleType
from typing import Any, Generic, TypeVar

from sqlkv.aio.cursor import Cursor
from sqlkv.aio.worker import Job, Worker

log = logging.getLogger(__name__)

T = TypeVar("T")


class Pending(Coroutine[Any, Any, T], Generic[T]):
    """A call that can be awaited (``cur = await db.execute(...)``), entered
    (``async with db.execute(...) as cur:``, which closes the cursor on exit), or handed
    to ``asyncio.create_task`` (it is a coroutine)."""

    def __init__(self, coro: Coroutine[Any, Any, T]) -> None:
        self._coro = coro
        self._result: T | None = None

    def __await__(self) -> Generator[Any, None, T]:
        return self._coro.__await__()

    def send(self, value: Any) -> Any:
        return self._coro.send(value)

    def throw(self, *args: Any) -> Any:
        return self._coro.throw(*args)

    def close(self) -> None:
        self._coro.close()

    async def __aenter__(self) -> T:
        self._result = await self._coro
        return self._result

    async def __aexit__(self, *exc_info: object) -> None:
        close: Callable[[], Awaitable[None]] | None = getattr(self._result, "close", None)
        if close is not None:
            await close()


class Connection:
    """``await`` it (or ``async with`` it) to open; every call runs on its own thread.

    One connection is one owner of its database: use it from one task at a time (calls
    from several tasks are run one after the other, in the order they were made, and
    share its transaction).
    """

    def __init__(
        self,
        connector: Callable[[], Any],
        module: ModuleType,
        *,
        iter_chunk_size: int = 64,
        name: str = "db",
    ) -> None:
        self._connector = connector
        self._module = module
        self.iter_chunk_size = iter_chunk_size
        self._name = name
        self._raw: Any = None
        self._worker: Worker | None = None
        self._closed = False
        self._broken: BaseException | None = None

    # ------------------------------------------------------------------ running calls

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def _connection(self) -> Any:
        """The DB-API connection, None once closed (aiosqlite's name, which SQLAlchemy's
        async adaption reads)."""
        return None if self._closed else self._raw

    def _check_usable(self) -> None:
        if self._broken is not None:
            raise self._module.OperationalError(
                "this connection is unusable: rolling back after a cancelled call failed "
                f"({self._broken!r}); close it and open a new one"
            ) from self._broken
        if self._closed or self._worker is None:
            raise self._module.ProgrammingError("Cannot operate on a closed database.")

    async def _call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        self._check_usable()
        assert self._worker is not None
        return await self._submit(self._worker, functools.partial(fn, *args, **kwargs))

    async def _submit(self, worker: Worker, fn: Callable[[], Any]) -> Any:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        job = Job(fn, loop, future)
        worker.submit(job)
        try:
            return await future
        except asyncio.CancelledError:
            if job.cancel():
                worker.settle_now()
            raise

    def _settle(self) -> None:
        """After a cancelled call (on the worker): roll back what the caller left open."""
        raw = self._raw
        if raw is None or self._closed:
            return
        try:
            if raw.in_transaction:
                raw.rollback()
        except BaseException as exc:
            self._broken = exc
            log.warning(
                "connection unusable: rollback after a cancelled call failed",
                extra={"database": self._name, "error": repr(exc)},
            )

    # ------------------------------------------------------------------ open and close

    def __await__(self) -> Generator[Any, None, Connection]:
        return self._open().__await__()

    async def _open(self) -> Connection:
        if self._worker is not None:
            return self
        worker = Worker(f"sqlkv-aio-{self._name}", self._settle)
        worker.start()
        self._worker = worker
        try:
            self._raw = await self._submit(worker, self._connector)
        except BaseException:
            # failed or cancelled: close whatever the worker opened, then end the thread
            self._closed = True
            worker.submit(Job(self._close_raw, None, None))
            worker.stop()
            raise
        return self

    def _close_raw(self) -> None:
        if self._raw is not None:
            self._raw.close()

    async def __aenter__(self) -> Connection:
        return await self._open()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the DB-API connection (rolling back an open transaction) and end the
        thread. Closing twice is allowed."""
        if self._closed or self._worker is None:
            self._closed = True
            return
        worker = self._worker
        try:
            await self._submit(worker, self._close_raw)
        finally:
            self._closed = True
            worker.stop()

    def stop(self) -> None:
        """Close without waiting (for a pool terminating a connection): the close runs
        on the thread after what is already queued."""
        if self._worker is None or self._closed:
            self._closed = True
            return
        self._closed = True
        self._worker.submit(Job(self._close_raw, None, None))
        self._worker.stop()

    # ------------------------------------------------------------------ SQL

    def cursor(self) -> Pending[Cursor]:
        return Pending(self._cursor())

    async def _cursor(self) -> Cursor:
        return Cursor(self, await self._call(self._raw_checked().cursor))

    def _raw_checked(self) -> Any:
        self._check_usable()
        return self._raw

    def execute(self, sql: str, parameters: Any = None) -> Pending[Cursor]:
        return Pending(self._execute("execute", sql, parameters))

    def executemany(self, sql: str, parameters: Iterable[Any]) -> Pending[Cursor]:
        return Pending(self._execute("executemany", sql, parameters))

    def executescript(self, sql_script: str) -> Pending[Cursor]:
        return Pending(self._execute("executescript", sql_script, None))

    async def _execute(self, method: str, sql: str, parameters: Any) -> Cursor:
        raw = self._raw_checked()
        args = (sql,) if parameters is None else (sql, parameters)
        return Cursor(self, await self._call(getattr(raw, method), *args))

    async def execute_insert(self, sql: str, parameters: Any = None) -> Any:
        """Run an INSERT and return ``(lastrowid,)`` (aiosqlite's helper)."""
        cursor = await self._execute("execute", sql, parameters)
        row = await cursor.execute("SELECT last_insert_rowid()")
        result = await row.fetchone()
        await cursor.close()
        return result

    async def execute_fetchall(self, sql: str, parameters: Any = None) -> list[Any]:
        cursor = await self._execute("execute", sql, parameters)
        rows = await cursor.fetchall()
        await cursor.close()
        return rows

    async def commit(self) -> None:
        await self._call(self._raw_checked().commit)

    async def rollback(self) -> None:
        await self._call(self._raw_checked().rollback)

    def interrupt(self) -> None:
        """Abort the running statement (thread-safe, so called directly)."""
        self._raw_checked().interrupt()

    async def create_function(
        self, name: str, num_params: int, func: Callable[..., Any], *, deterministic: bool = False
    ) -> None:
        raw = self._raw_checked()
        await self._call(raw.create_function, name, num_params, func, deterministic=deterministic)

    async def create_aggregate(self, name: str, num_params: int, aggregate_class: Any) -> None:
        await self._call(self._raw_checked().create_aggregate, name, num_params, aggregate_class)

    async def create_collation(self, name: str, callable_: Callable[..., Any] | None) -> None:
        await self._call(self._raw_checked().create_collation, name, callable_)

    async def set_trace_callback(self, handler: Callable[[str], object] | None) -> None:
        await self._call(self._raw_checked().set_trace_callback, handler)

    async def set_progress_handler(self, handler: Callable[[], Any] | None, n: int) -> None:
        await self._call(self._raw_checked().set_progress_handler, handler, n)

    async def set_authorizer(self, authorizer: Callable[..., int] | None) -> None:
        await self._call(self._raw_checked().set_authorizer, authorizer)

    async def set_isolation_level(self, level: str | None) -> None:
        """Set ``isolation_level`` on the worker thread (the setter below does the same
        from the loop thread, as aiosqlite's does)."""
        await self._call(setattr, self._raw_checked(), "isolation_level", level)

    async def iterdump(self) -> AsyncIterator[str]:
        """The SQL text of the database, line by line (computed in chunks on the thread)."""
        lines = iter(await self._call(self._raw_checked().iterdump))
        chunk = self.iter_chunk_size
        while True:
            batch: list[str] = await self._call(
                lambda: [line for _, line in zip(range(chunk), lines, strict=False)]
            )
            if not batch:
                return
            for line in batch:
                yield line

    async def backup(
        self,
        target: Connection | Any,
        *,
        pages: int = -1,
        progress: Callable[[int, int, int], object] | None = None,
        name: str = "main",
        sleep: float = 0.250,
    ) -> None:
        """Copy this database into ``target`` (an ``sqlkv.aio`` connection or a DB-API one)."""
        raw_target = target._raw_checked() if isinstance(target, Connection) else target
        await self._call(
            self._raw_checked().backup,
            raw_target,
            pages=pages,
            progress=progress,
            name=name,
            sleep=sleep,
        )

    # ------------------------------------------------------------------ attributes

    @property
    def in_transaction(self) -> bool:
        return bool(self._raw_checked().in_transaction)

    @property
    def isolation_level(self) -> str | None:
        level: str | None = self._raw_checked().isolation_level
        return level

    @isolation_level.setter
    def isolation_level(self, level: str | None) -> None:
        self._raw_checked().isolation_level = level

    @property
    def row_factory(self) -> Any:
        return self._raw_checked().row_factory

    @row_factory.setter
    def row_factory(self, factory: Any) -> None:
        self._raw_checked().row_factory = factory

    @property
    def text_factory(self) -> Any:
        return self._raw_checked().text_factory

    @text_factory.setter
    def text_factory(self, factory: Any) -> None:
        self._raw_checked().text_factory = factory

    @property
    def total_changes(self) -> int:
        return int(self._raw_checked().total_changes)
