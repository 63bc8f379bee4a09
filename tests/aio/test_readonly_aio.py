"""``sqlkv.aio.connect(..., readonly=, at=)``: read-only connections from asyncio."""

from __future__ import annotations

import asyncio

import pytest
from history_fake import history_engine

import sqlkv.aio
import sqlkv.dbapi2 as dbapi2


@pytest.mark.parametrize("kind", ["fake", "engine"])
def test_async_reader_follows_the_head_and_refuses_writes(kind: str) -> None:
    fake = history_engine(kind)

    async def main() -> None:
        writer = dbapi2.connect("db", engine=fake, autocommit=True)
        writer.execute("CREATE TABLE t(x)")
        async with sqlkv.aio.connect("db", engine=fake, readonly=True) as reader:
            for i in range(3):
                writer.execute("INSERT INTO t VALUES (?)", (i,))
                async with reader.execute("SELECT count(*) FROM t") as cursor:
                    assert await cursor.fetchall() == [(i + 1,)]
            with pytest.raises(sqlkv.aio.OperationalError, match="readonly database"):
                await reader.execute("DELETE FROM t")
        pinned = sqlkv.aio.connect("db", engine=fake, at=3)
        async with pinned, pinned.execute("SELECT x FROM t") as cursor:
            assert await cursor.fetchall() == [(0,)]
        writer.close()

    try:
        asyncio.run(main())
    finally:
        fake.close()
