"""sqlkv.aio offers aiosqlite's interface over sqlkv.dbapi2, every call on the thread."""

from __future__ import annotations

import threading

import pytest
from aio_support import run

import sqlkv.aio
import sqlkv.dbapi2 as dbapi2


def test_execute_commit_and_read_back_through_async_cursors(store_url: str) -> None:
    async def main() -> list[tuple[int, str]]:
        async with sqlkv.aio.connect("orders", store=store_url) as db:
            await db.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)")
            cur = await db.executemany(
                "INSERT INTO t(v) VALUES (?)", [(f"v{i}",) for i in range(150)]
            )
            assert cur.rowcount == 150
            assert db.in_transaction
            await db.commit()
            assert not db.in_transaction
            assert await db.execute_insert("INSERT INTO t(v) VALUES ('x')") == (151,)
            await db.rollback()
            rows = []
            async with db.execute("SELECT id, v FROM t ORDER BY id") as cursor:
                assert [d[0] for d in cursor.description] == ["id", "v"]
                async for row in cursor:  # more rows than one chunk (64)
                    rows.append(row)
            return rows

    rows = run(main())
    assert rows == [(i + 1, f"v{i}") for i in range(150)]


def test_fetch_methods_row_factory_and_executescript(store_url: str) -> None:
    async def main() -> None:
        async with sqlkv.aio.connect("orders", store=store_url) as db:
            await db.executescript(
                "CREATE TABLE t(a, b); INSERT INTO t VALUES (1, 2), (3, 4), (5, 6);"
            )
            db.row_factory = dbapi2.Row
            async with db.cursor() as cur:
                await cur.execute("SELECT a, b FROM t ORDER BY a")
                first = await cur.fetchone()
                assert (first["a"], first["b"]) == (1, 2)
                assert [tuple(r) for r in await cur.fetchmany(1)] == [(3, 4)]
                assert [tuple(r) for r in await cur.fetchall()] == [(5, 6)]
                assert await cur.fetchone() is None
            assert [tuple(r) for r in await db.execute_fetchall("SELECT count(*) FROM t")] == [(3,)]

    run(main())


def test_user_function_runs_on_the_connection_thread(store_url: str) -> None:
    seen: list[str] = []

    def twice(x: int) -> int:
        seen.append(threading.current_thread().name)
        return 2 * x

    async def main() -> list[tuple[int]]:
        async with sqlkv.aio.connect("orders", store=store_url) as db:
            await db.create_function("twice", 1, twice, deterministic=True)
            return await db.execute_fetchall("SELECT twice(21)")

    assert run(main()) == [(42,)]
    assert seen and seen[0].startswith("sqlkv-aio-orders")
    assert seen[0] != threading.main_thread().name


def test_iterdump_yields_the_schema_and_rows(store_url: str) -> None:
    async def main() -> list[str]:
        async with sqlkv.aio.connect("orders", store=store_url) as db:
            await db.executescript("CREATE TABLE t(x); INSERT INTO t VALUES (7);")
            await db.commit()
            return [line async for line in db.iterdump()]

    lines = run(main())
    assert "CREATE TABLE t(x);" in lines
    assert any("INSERT INTO" in line and "7" in line for line in lines)


def test_closed_connection_says_so(store_url: str) -> None:
    async def main() -> None:
        db = await sqlkv.aio.connect("orders", store=store_url)
        await db.close()
        await db.close()  # twice is fine
        with pytest.raises(dbapi2.ProgrammingError, match="closed"):
            await db.execute("SELECT 1")

    run(main())


def test_errors_keep_their_dbapi_classes(store_url: str) -> None:
    async def main() -> None:
        async with sqlkv.aio.connect("orders", store=store_url) as db:
            await db.execute("CREATE TABLE t(x UNIQUE)")
            await db.execute("INSERT INTO t VALUES (1)")
            with pytest.raises(dbapi2.IntegrityError):
                await db.execute("INSERT INTO t VALUES (1)")
            with pytest.raises(dbapi2.OperationalError):
                await db.execute("SELEKT")
            assert await db.execute_fetchall("SELECT x FROM t") == [(1,)]

    run(main())


def test_a_second_owner_fences_the_first_clearly(store_url: str) -> None:
    async def main() -> None:
        first = await sqlkv.aio.connect("orders", store=store_url)
        await first.execute("CREATE TABLE t(x)")
        await first.commit()
        async with sqlkv.aio.connect("orders", store=store_url) as second:
            await second.execute("INSERT INTO t VALUES (1)")
            await second.commit()
            with pytest.raises(dbapi2.OperationalError) as info:
                await first.execute("INSERT INTO t VALUES (2)")
                await first.commit()
            from sqlkv.errors import ConnectionFenced

            assert isinstance(info.value, ConnectionFenced)
        await first.close()

    run(main())


def test_module_exports_the_dbapi_errors_like_aiosqlite() -> None:
    assert sqlkv.aio.IntegrityError is dbapi2.IntegrityError
    assert sqlkv.aio.sqlite_version_info == dbapi2.sqlite_version_info
