"""The ORM, Core and Alembic's batch migrations on sqlite+sqlkv://, and the async dialect."""

from __future__ import annotations

import asyncio

from alembic.migration import MigrationContext
from alembic.operations import Operations
from sqlalchemy import (
    Column,
    Engine,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    create_engine,
    event,
    insert,
    inspect,
    select,
    text,
)
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship


class Base(DeclarativeBase):
    pass


class Customer(Base):
    __tablename__ = "customers"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(50))
    orders: Mapped[list[Order]] = relationship(back_populates="customer")


class Order(Base):
    __tablename__ = "orders"
    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    total: Mapped[int]
    customer: Mapped[Customer] = relationship(back_populates="orders")


def test_orm_round_trip_survives_a_new_engine(engine: Engine, store_url: str) -> None:
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        session.add(Customer(name="ada", orders=[Order(total=3), Order(total=4)]))
        session.commit()
    engine.dispose()
    fresh = create_engine(f"sqlite+sqlkv:///orders?store={store_url}")
    with Session(fresh) as session:
        ada = session.scalars(select(Customer)).one()
        assert (ada.name, sorted(o.total for o in ada.orders)) == ("ada", [3, 4])
    fresh.dispose()


def test_core_transaction_rolls_back_on_error(engine: Engine) -> None:
    meta = MetaData()
    t = Table("t", meta, Column("id", Integer, primary_key=True), Column("v", String))
    meta.create_all(engine)
    try:
        with engine.begin() as conn:
            conn.execute(insert(t), [{"v": "a"}, {"v": "b"}])
            raise RuntimeError("abort")
    except RuntimeError:
        pass
    with engine.begin() as conn:
        conn.execute(insert(t), [{"v": "c"}])
    with engine.connect() as conn:
        assert conn.execute(select(t.c.v)).scalars().all() == ["c"]


def test_savepoints_with_the_pysqlite_recipe(engine: Engine) -> None:
    # SQLAlchemy's documented recipe for pysqlite works unchanged on sqlkv.dbapi2
    @event.listens_for(engine, "connect")
    def do_connect(dbapi_connection: object, record: object) -> None:
        dbapi_connection.isolation_level = None  # type: ignore[attr-defined]

    @event.listens_for(engine, "begin")
    def do_begin(conn: object) -> None:
        conn.exec_driver_sql("BEGIN")  # type: ignore[attr-defined]

    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t(x)"))
        conn.execute(text("INSERT INTO t VALUES (1)"))
        nested = conn.begin_nested()
        conn.execute(text("INSERT INTO t VALUES (2)"))
        nested.rollback()
    with engine.connect() as conn:
        assert conn.execute(text("SELECT x FROM t")).scalars().all() == [1]


def test_alembic_batch_migration_rebuilds_the_table(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE account(id INTEGER PRIMARY KEY, name VARCHAR(10))"))
        conn.execute(text("INSERT INTO account(name) VALUES ('a'), ('b')"))
    with engine.begin() as conn:
        ops = Operations(MigrationContext.configure(conn))
        with ops.batch_alter_table("account", recreate="always") as batch:
            batch.add_column(Column("email", String(50), server_default="none"))
            batch.alter_column("name", new_column_name="login", type_=String(40))
        with ops.batch_alter_table("account") as batch:
            batch.create_index("ix_account_login", ["login"], unique=True)
        ops.create_table("audit", Column("id", Integer, primary_key=True), Column("old", String(5)))
        with ops.batch_alter_table("audit") as batch:
            batch.drop_column("old")
            batch.add_column(Column("note", String(20)))
    insp = inspect(engine)
    assert [c["name"] for c in insp.get_columns("account")] == ["id", "login", "email"]
    assert [i["name"] for i in insp.get_indexes("account")] == ["ix_account_login"]
    assert [c["name"] for c in insp.get_columns("audit")] == ["id", "note"]
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT login, email FROM account ORDER BY id")).all()
    assert rows == [("a", "none"), ("b", "none")]


def test_async_dialect_orm_and_core(store_url: str) -> None:
    async def main() -> tuple[list[str], int]:
        eng = create_async_engine(f"sqlite+sqlkv_async:///orders?store={store_url}")
        async with eng.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)
        async with AsyncSession(eng) as session:
            session.add_all([Customer(name="ada"), Customer(name="bob")])
            await session.commit()
        async with AsyncSession(eng) as session:
            names = list((await session.scalars(select(Customer.name).order_by("name"))).all())
        async with eng.connect() as conn:
            result = await conn.stream(text("SELECT count(*) FROM customers"))
            (count,) = await result.one()
        await eng.dispose()
        return names, count

    assert asyncio.run(main()) == (["ada", "bob"], 2)


def test_async_dialect_fifty_concurrent_sessions_on_distinct_databases(store_url: str) -> None:
    async def one(i: int) -> int:
        eng = create_async_engine(f"sqlite+sqlkv_async:///db{i}?store={store_url}")
        async with eng.begin() as conn:
            await conn.execute(text("CREATE TABLE t(x)"))
            await conn.execute(text("INSERT INTO t VALUES (:x)"), [{"x": j} for j in range(i + 1)])
        async with eng.connect() as conn:
            total = (await conn.execute(text("SELECT count(*) FROM t"))).scalar_one()
        await eng.dispose()
        return int(total)

    async def main() -> list[int]:
        return await asyncio.gather(*(one(i) for i in range(50)))

    assert asyncio.run(main()) == list(range(1, 51))
