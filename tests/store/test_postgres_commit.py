"""The PostgreSQL store's commit function (``store/postgres_sql.py``): created once per
table under a versioned name, called as the commit's one statement at SERIALIZABLE, and
as strict as the pipelined statements it replaced (guards, read check, row conflicts).

They need the server named by SQLKV_TEST_PG_URL (required in CI, see tests/drivers.py).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from drivers import postgres_url_or_skip

from sqlkv.errors import ConflictError, GuardFailed
from sqlkv.store import RetryPolicy, Transaction
from sqlkv.store.postgres import PostgresStore
from sqlkv.store.postgres_sql import (
    COMMIT_FUNCTION_VERSION,
    CommitCall,
    commit_function_name,
    decode_bytea_array,
    encode_bytea_array,
)

pytestmark = pytest.mark.postgres

Admin = psycopg.Connection[tuple[Any, ...]]


@pytest.fixture
def pg_url() -> str:
    return postgres_url_or_skip()


@pytest.fixture
def table() -> str:
    return f"kv_test_{uuid.uuid4().hex[:12]}"


@pytest.fixture
def pg(pg_url: str, table: str) -> Iterator[PostgresStore]:
    store = PostgresStore(pg_url, table=table, retry=RetryPolicy(max_attempts=5), pool_size=2)
    yield store
    store.drop()
    store.close()


@pytest.fixture
def admin(pg_url: str) -> Iterator[Admin]:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        yield conn


def function_oid(admin: Admin, table: str) -> int | None:
    signature = (
        commit_function_name(table).as_string(None) + "(" + ", ".join(["bytea[]"] * 10) + ")"
    )
    row = admin.execute("SELECT to_regprocedure(%s)::oid", (signature,)).fetchone()
    assert row is not None
    return row[0]  # type: ignore[no-any-return]


def put(store: PostgresStore, items: dict[bytes, bytes]) -> None:
    def fn(tr: Transaction) -> None:
        for k, v in items.items():
            tr.set(k, v)

    store.transact(fn)


# ---------------------------------------------------------------------- the schema


def test_the_function_name_carries_the_version_and_fits_any_table_name() -> None:
    assert commit_function_name("kv").as_string(None) == f'"kv_commit_v{COMMIT_FUNCTION_VERSION}"'
    assert (
        commit_function_name("s.kv").as_string(None)
        == f'"s"."kv_commit_v{COMMIT_FUNCTION_VERSION}"'
    )
    long_a, long_b = "t" * 62 + "a", "t" * 62 + "b"
    names = {commit_function_name(n).as_string(None) for n in (long_a, long_b)}
    assert len(names) == 2
    assert all(len(n.strip('"')) <= 63 for n in names)


def test_opening_a_store_creates_the_function_once(
    pg: PostgresStore, pg_url: str, table: str, admin: Admin
) -> None:
    created = function_oid(admin, table)
    assert created is not None
    again = PostgresStore(pg_url, table=table)
    again.close()
    assert function_oid(admin, table) == created


def test_stores_opened_at_once_on_a_new_table_all_commit(pg_url: str, table: str) -> None:
    opened: list[PostgresStore] = []
    errors: list[BaseException] = []

    def open_one() -> None:
        try:
            opened.append(PostgresStore(pg_url, table=table))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert errors == []
        for i, store in enumerate(opened):
            put(store, {b"k%d" % i: b"v"})
        assert opened[0].transact(lambda tr: tr.get_range(b"k", b"l")) == [
            (b"k%d" % i, b"v") for i in range(4)
        ]
    finally:
        opened[0].drop()
        for store in opened:
            store.close()


def test_a_table_made_without_the_function_gets_it_when_a_store_opens(
    pg: PostgresStore, pg_url: str, table: str, admin: Admin
) -> None:
    put(pg, {b"old": b"data"})
    admin.execute(f"DROP FUNCTION {commit_function_name(table).as_string(None)}")
    assert function_oid(admin, table) is None
    store = PostgresStore(pg_url, table=table)
    try:
        put(store, {b"new": b"data"})
        assert store.transact(lambda tr: tr.get_range(b"", b"\xff")) == [
            (b"new", b"data"),
            (b"old", b"data"),
        ]
    finally:
        store.close()


def test_dropping_the_store_removes_the_function(pg_url: str, table: str, admin: Admin) -> None:
    store = PostgresStore(pg_url, table=table)
    store.drop()
    store.close()
    assert function_oid(admin, table) is None


# ---------------------------------------------------------------------- the call


def test_a_commit_that_read_nothing_is_one_call_at_serializable(
    pg: PostgresStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    put(pg, {b"m": b"v1"})
    calls: list[str] = []
    real_call, real_execute = CommitCall.__call__, psycopg.Cursor.execute

    def call(self: CommitCall, *args: Any) -> Any:
        calls.append("function")
        return real_call(self, *args)

    def execute(self: psycopg.Cursor[Any], query: Any, *args: Any, **kw: Any) -> Any:
        calls.append(str(query))
        return real_execute(self, query, *args, **kw)

    monkeypatch.setattr(CommitCall, "__call__", call)
    monkeypatch.setattr(psycopg.Cursor, "execute", execute)
    tr = pg.begin()
    try:
        tr.guard(b"m", b"v1")
        tr.set(b"m", b"v2")
        tr.set(b"n", b"x")
        tr.commit()
    finally:
        tr.close()
    monkeypatch.undo()
    assert calls == ["function"]
    assert pg.transact(lambda tr: (tr.get(b"m"), tr.get(b"n"))) == (b"v2", b"x")
    conn = pg._pool.get()
    try:
        row = conn.execute("SHOW default_transaction_isolation").fetchone()
    finally:
        pg._pool.put(conn)
    assert row == ("serializable",)


def test_pooled_connections_plan_generically_so_the_function_is_not_planned_per_call(
    pg: PostgresStore,
) -> None:
    # PL/pgSQL keeps custom plans for the function's array-fed statements unless told
    # otherwise, and plans them again on every commit (docs/round-trips.md "PostgreSQL").
    put(pg, {b"a": b"1"})
    conn = pg._pool.get()
    try:
        row = conn.execute("SHOW plan_cache_mode").fetchone()
    finally:
        pg._pool.put(conn)
    assert row == ("force_generic_plan",)


def test_a_commit_prepares_its_call_again_after_it_was_deallocated(pg: PostgresStore) -> None:
    put(pg, {b"a": b"1"})
    conn = pg._pool.get()
    try:
        conn.execute("DEALLOCATE ALL")
    finally:
        pg._pool.put(conn)
    put(pg, {b"b": b"2"})
    assert pg.transact(lambda tr: tr.get_range(b"", b"\xff")) == [(b"a", b"1"), (b"b", b"2")]


@pytest.mark.parametrize(
    "items", [[], [b""], [b"a", None, b"\x00\xff" * 3000], [None], [bytes(range(256))]]
)
def test_bytea_arrays_round_trip_through_the_server(
    admin: Admin, items: list[bytes | None]
) -> None:
    encoded = encode_bytea_array(items)
    result = admin.pgconn.exec_params(b"SELECT $1::bytea[]", [encoded], [1001], [1], 1)
    assert result.get_value(0, 0) is not None
    assert decode_bytea_array(result.get_value(0, 0) or b"") == items


def test_a_failed_guard_after_a_read_applies_nothing_and_frees_the_connection(
    pg: PostgresStore,
) -> None:
    put(pg, {b"m": b"v1", b"r": b"read"})
    tr = pg.begin()
    try:
        assert tr.get(b"r") == b"read"
        tr.guard(b"m", b"stale")
        tr.set(b"m", b"v2")
        with pytest.raises(GuardFailed) as info:
            tr.commit()
    finally:
        tr.close()
    assert (info.value.key, info.value.current) == (b"m", b"v1")
    assert pg.transact(lambda tr: tr.get(b"m")) == b"v1"
    put(pg, {b"after": b"ok"})
    assert pg.transact(lambda tr: tr.get(b"after")) == b"ok"


def test_a_guarded_key_not_written_and_locked_by_a_writer_conflicts_at_once(
    pg: PostgresStore, admin: Admin
) -> None:
    put(pg, {b"guarded": b"0"})
    tr = pg.begin()
    try:
        tr.guard(b"guarded", b"0")
        tr.set(b"other", b"1")
        admin.execute("BEGIN")
        admin.execute(f"UPDATE {pg.table} SET value = 'x' WHERE key = 'guarded'")
        started = time.monotonic()
        with pytest.raises(ConflictError) as info:
            tr.commit()
        assert time.monotonic() - started < 1
    finally:
        tr.close()
        admin.execute("ROLLBACK")
    assert getattr(info.value.__cause__, "sqlstate", None) == "55P03"
    assert pg.transact(lambda tr: tr.get(b"other")) is None


def test_a_guarded_write_waiting_on_a_writer_that_commits_conflicts_then_fails_its_guard(
    pg: PostgresStore, admin: Admin
) -> None:
    put(pg, {b"m": b"v1"})
    admin.execute("BEGIN")
    admin.execute(f"UPDATE {pg.table} SET value = 'v9' WHERE key = 'm'")
    attempts: list[str] = []
    outcome: list[BaseException] = []

    def fn(tr: Transaction) -> None:
        attempts.append("attempt")
        tr.guard(b"m", b"v1")
        tr.set(b"m", b"v2")

    def commit() -> None:
        try:
            pg.transact(fn)
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=commit)
    thread.start()
    time.sleep(0.3)  # the commit now waits for the admin's row lock
    admin.execute("COMMIT")
    thread.join(10)
    assert len(outcome) == 1 and isinstance(outcome[0], GuardFailed)
    assert outcome[0].current == b"v9"
    assert len(attempts) == 2  # the first attempt conflicted (40001), the retry saw v9
    assert pg.transact(lambda tr: tr.get(b"m")) == b"v9"


def test_a_guarded_key_deleted_since_the_snapshot_conflicts_though_it_is_written(
    pg: PostgresStore,
) -> None:
    """The guard compares at the snapshot; the read check (FOR SHARE of the version the
    snapshot saw) catches the delete that an upsert alone would not (it inserts anew)."""
    put(pg, {b"m": b"v1", b"r": b"x"})
    tr = pg.begin()
    try:
        assert tr.get(b"r") == b"x"  # the snapshot
        pg.transact(lambda other: other.clear(b"m"))
        tr.guard(b"m", b"v1")
        tr.set(b"m", b"v2")
        with pytest.raises(ConflictError) as info:
            tr.commit()
    finally:
        tr.close()
    assert getattr(info.value.__cause__, "sqlstate", None) == "40001"
    assert pg.transact(lambda tr: tr.get(b"m")) is None


def test_a_guarded_commit_makes_a_serializable_reader_writer_of_the_key_conflict(
    pg: PostgresStore,
) -> None:
    """The fence: compaction's pass while history is retained reads META serializably
    and writes it; a guarded commit landing in between makes it conflict."""
    put(pg, {b"m": b"v1"})
    reader = pg.begin()
    try:
        assert reader.get(b"m") == b"v1"
        writer = pg.begin()
        try:
            writer.guard(b"m", b"v1")
            writer.set(b"m", b"v2")
            writer.commit()
        finally:
            writer.close()
        reader.set(b"m", b"reader")
        reader.set(b"elsewhere", b"x")
        with pytest.raises(ConflictError):
            reader.commit()
    finally:
        reader.close()
    assert pg.transact(lambda tr: (tr.get(b"m"), tr.get(b"elsewhere"))) == (b"v2", None)
