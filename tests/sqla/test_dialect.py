"""The URL, the entry points and the one-connection pool of sqlite+sqlkv://."""

from __future__ import annotations

import os
import threading
import tomllib
from pathlib import Path

import pytest
from sqlalchemy import create_engine, exc, text
from sqlalchemy.engine import make_url

from sqlkv.sqlalchemy.dialect import OneOwnerPool, SQLKVDialect, connect_args

ROOT = Path(__file__).resolve().parents[2]


def test_url_names_the_database_and_carries_the_store() -> None:
    url = make_url("sqlite+sqlkv:///orders?store=postgresql://u:pw@db:5432/sqlkv&timeout=2")
    assert connect_args(url) == (
        ["orders"],
        {"store": "postgresql://u:pw@db:5432/sqlkv", "timeout": 2.0, "check_same_thread": False},
    )
    url = make_url("sqlite+sqlkv:///orders?engine=sqlkv://a:7878,b:7878&token=t")
    assert connect_args(url)[1]["engine"] == "sqlkv://a:7878,b:7878"


def test_url_without_store_leaves_resolution_to_sqlkv_connect() -> None:
    args, kwargs = connect_args(make_url("sqlite+sqlkv:///orders"))
    assert args == ["orders"] and "store" not in kwargs and "engine" not in kwargs


def test_environment_store_is_used_when_the_url_has_none(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SQLKV_STORE", store_url)
    monkeypatch.delenv("SQLKV_ENGINE", raising=False)
    eng = create_engine("sqlite+sqlkv:///orders")
    with eng.begin() as conn:
        conn.execute(text("CREATE TABLE t(x)"))
        conn.execute(text("INSERT INTO t VALUES (1)"))
    eng.dispose()
    import sqlkv.dbapi2 as dbapi2

    again = dbapi2.connect("orders", store=store_url)
    assert again.execute("SELECT x FROM t").fetchall() == [(1,)]
    again.close()


def test_bad_urls_are_refused_with_the_valid_form() -> None:
    with pytest.raises(exc.ArgumentError, match="database name"):
        connect_args(make_url("sqlite+sqlkv://host/orders"))
    with pytest.raises(exc.ArgumentError, match="valid: store, engine"):
        connect_args(make_url("sqlite+sqlkv:///orders?stor=x"))


def test_pool_holds_one_connection_and_refuses_more(store_url: str) -> None:
    eng = create_engine(f"sqlite+sqlkv:///orders?store={store_url}")
    assert isinstance(eng.pool, OneOwnerPool) and eng.pool.size() == 1
    with pytest.raises(exc.ArgumentError, match="one owner"):
        create_engine(f"sqlite+sqlkv:///orders?store={store_url}", pool_size=5)


def test_threads_take_turns_on_the_one_connection(engine: object) -> None:
    from sqlalchemy import Engine

    assert isinstance(engine, Engine)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t(x)"))
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            for j in range(10):
                with engine.begin() as conn:
                    conn.execute(text("INSERT INTO t VALUES (:x)"), {"x": i * 100 + j})
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM t")).scalar() == 40


def test_a_fenced_pooled_connection_is_replaced_on_the_next_checkout(
    engine: object, store_url: str
) -> None:
    from sqlalchemy import Engine

    import sqlkv.dbapi2 as dbapi2

    assert isinstance(engine, Engine)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t(x)"))
    other = dbapi2.connect("orders", store=store_url)  # takes the database over
    other.close()
    with (
        pytest.raises(exc.OperationalError, match="took this database over"),
        engine.begin() as conn,
    ):
        conn.execute(text("INSERT INTO t VALUES (1)"))
    with engine.begin() as conn:  # a new connection: the engine owns the database again
        conn.execute(text("INSERT INTO t VALUES (2)"))
        assert conn.execute(text("SELECT x FROM t")).all() == [(2,)]


def test_entry_points_are_declared() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    points = project["project"]["entry-points"]["sqlalchemy.dialects"]
    assert points == {
        "sqlite.sqlkv": "sqlkv.sqlalchemy.dialect:SQLKVDialect",
        "sqlite.sqlkv_async": "sqlkv.sqlalchemy.aio_dialect:SQLKVDialect_async",
    }
    assert make_url("sqlite+sqlkv:///x").get_dialect() is SQLKVDialect


@pytest.mark.skipif(
    not os.environ.get("CI"), reason="the installed package may be another worktree's"
)
def test_installed_package_registers_the_dialects() -> None:
    from importlib.metadata import entry_points

    names = {ep.name for ep in entry_points(group="sqlalchemy.dialects")}
    assert {"sqlite.sqlkv", "sqlite.sqlkv_async"} <= names
