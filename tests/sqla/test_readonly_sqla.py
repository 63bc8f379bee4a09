"""``sqlite+sqlkv:///NAME?readonly=1&at=...``: read-only engines and their pool."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from history_fake import HistoryFake
from sqlalchemy import create_engine, exc, pool, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

import sqlkv.dbapi2 as dbapi2
from sqlkv.sqlalchemy.dialect import connect_args


@pytest.fixture
def fake() -> Iterator[HistoryFake]:
    engine = HistoryFake()
    writer = dbapi2.connect("orders", engine=engine, autocommit=True)
    writer.execute("CREATE TABLE t(x)")
    writer.execute("INSERT INTO t VALUES (1)")
    writer.close()
    yield engine
    engine.close()


def test_readonly_url_gets_an_ordinary_pool_of_many_readers(fake: HistoryFake) -> None:
    eng = create_engine(
        "sqlite+sqlkv:///orders?readonly=1", pool_size=3, connect_args={"engine": fake}
    )
    assert type(eng.pool) is pool.QueuePool
    fake.calls.clear()
    with eng.connect() as a, eng.connect() as b, eng.connect() as c:
        for conn in (a, b, c):
            assert conn.execute(text("SELECT x FROM t")).all() == [(1,)]
        with pytest.raises(exc.OperationalError, match="readonly database"):
            a.execute(text("INSERT INTO t VALUES (2)"))
    assert "open" not in fake.calls and "commit" not in fake.calls
    eng.dispose()


def test_at_url_reads_that_state(fake: HistoryFake) -> None:
    writer = dbapi2.connect("orders", engine=fake, autocommit=True)
    writer.execute("INSERT INTO t VALUES (2)")
    writer.close()
    eng = create_engine("sqlite+sqlkv:///orders?at=3", connect_args={"engine": fake})
    with eng.connect() as conn:
        assert conn.execute(text("SELECT x FROM t")).all() == [(1,)]
    eng.dispose()


def test_async_readonly_url(fake: HistoryFake) -> None:
    async def main() -> None:
        eng = create_async_engine(
            "sqlite+sqlkv_async:///orders?readonly=true", connect_args={"engine": fake}
        )
        assert type(eng.pool) is pool.AsyncAdaptedQueuePool
        async with eng.connect() as conn:
            assert (await conn.execute(text("SELECT x FROM t"))).all() == [(1,)]
        await eng.dispose()

    asyncio.run(main())


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("readonly=1", {"readonly": True}),
        ("readonly=0", {"readonly": False}),
        ("at=12", {"at": 12}),
        ("at=nightly", {"at": "nightly"}),
        ("at=label:12", {"at": "12"}),
    ],
)
def test_url_arguments(query: str, expected: dict[str, object]) -> None:
    _, kwargs = connect_args(make_url(f"sqlite+sqlkv:///orders?{query}"))
    assert {k: kwargs[k] for k in expected} == expected


@pytest.mark.parametrize("query", ["readonly=maybe", "at=2026-12-02T08:00:00"])
def test_bad_url_arguments_are_refused(query: str) -> None:
    with pytest.raises(exc.ArgumentError):
        connect_args(make_url(f"sqlite+sqlkv:///orders?{query}"))


def test_the_owner_pool_still_refuses_more_than_one_connection() -> None:
    with pytest.raises(exc.ArgumentError, match="one owner"):
        create_engine("sqlite+sqlkv:///orders?store=memory://", pool_size=2)


def test_readonly_url_on_a_store_follows_the_owner(store_url: str) -> None:
    owner = create_engine(f"sqlite+sqlkv:///orders?store={store_url}")
    readers = create_engine(f"sqlite+sqlkv:///orders?store={store_url}&readonly=1")
    with owner.begin() as conn:
        conn.execute(text("CREATE TABLE t(x)"))
    with readers.connect() as a, readers.connect() as b:
        for i in range(3):
            with owner.begin() as conn:
                conn.execute(text("INSERT INTO t VALUES (:x)"), {"x": i})
            for reader in (a, b):
                assert reader.execute(text("SELECT count(*) FROM t")).scalar() == i + 1
                reader.rollback()  # end the read transaction: the next one sees the head
    with owner.connect() as conn:  # the owner was never fenced by the readers
        assert conn.execute(text("SELECT count(*) FROM t")).scalar() == 3
    readers.dispose()
    owner.dispose()
