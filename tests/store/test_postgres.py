"""PostgreSQL driver behaviour beyond the shared contract suite: lost connections,
conflicts the driver adds to PostgreSQL's, error translation, and configuration.

They need the server named by SQLKV_TEST_PG_URL (``.ci/run`` starts one; in CI they must
run). Backends are killed with ``pg_terminate_backend`` from a second connection, found
by the unique ``application_name`` each test store connects with.
"""

from __future__ import annotations

import random
import socket
import threading
import time
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from drivers import postgres_url, postgres_url_or_skip
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from sqlkv.errors import (
    CommitUnknown,
    ConfigError,
    ConflictError,
    LimitExceeded,
    StoreUnavailable,
)
from sqlkv.store import RetryPolicy, Transaction
from sqlkv.store.postgres import MAX_INDEXED_KEY_BYTES, PostgresStore

pytestmark = pytest.mark.postgres

Admin = psycopg.Connection[tuple[object, ...]]


@pytest.fixture
def pg_url() -> str:
    return postgres_url_or_skip()


@pytest.fixture
def app_name() -> str:
    return f"sqlkv-test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def pg(pg_url: str, app_name: str) -> Iterator[PostgresStore]:
    """A store on a fresh table whose connections carry ``app_name``."""
    store = PostgresStore(
        make_conninfo(pg_url, application_name=app_name),
        table=f"kv_test_{uuid.uuid4().hex[:12]}",
        retry=RetryPolicy(max_attempts=5),
        pool_size=2,
    )
    yield store
    store.drop()
    store.close()


@pytest.fixture
def admin(pg_url: str) -> Iterator[Admin]:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        yield conn


def backends(admin: Admin, app_name: str) -> list[int]:
    rows = admin.execute(
        "SELECT pid FROM pg_stat_activity WHERE application_name = %s", (app_name,)
    ).fetchall()
    return [int(pid) for (pid,) in rows]  # type: ignore[call-overload]


def wait_for_backends(admin: Admin, app_name: str, count: int) -> None:
    """Wait until the test store has ``count`` backends (a backend exits asynchronously)."""
    deadline = time.monotonic() + 10
    while (found := len(backends(admin, app_name))) != count:
        assert time.monotonic() < deadline, f"{found} backends, expected {count}"
        time.sleep(0.01)


def terminate(admin: Admin, app_name: str) -> None:
    """Kill every backend of the test store and wait until they are gone."""
    admin.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
        (app_name,),
    )
    wait_for_backends(admin, app_name, 0)


def put(store: PostgresStore, items: dict[bytes, bytes]) -> None:
    def fn(tr: Transaction) -> None:
        for k, v in items.items():
            tr.set(k, v)

    store.transact(fn)


def get(store: PostgresStore, key: bytes) -> bytes | None:
    return store.transact(lambda tr: tr.get(key))


def fill(store: PostgresStore) -> None:
    """Enough rows that keys at both ends sit on different index and heap pages, so that
    PostgreSQL's page-level SSI locks cannot make conflicts out of neighbourhood."""
    put(store, {b"m/%05d" % i: bytes(100) for i in range(5000)})


# ---------------------------------------------------------------------- lost connections


def test_a_read_after_the_backend_was_killed_raises_a_retryable_error(
    pg: PostgresStore, admin: Admin, app_name: str
) -> None:
    put(pg, {b"a": b"1", b"b": b"2"})
    tr = pg.begin()
    try:
        assert tr.get(b"a") == b"1"
        terminate(admin, app_name)
        with pytest.raises(StoreUnavailable) as info:
            tr.get(b"b")
        assert info.value.retryable
        assert not isinstance(info.value, CommitUnknown)
    finally:
        tr.close()
    assert get(pg, b"b") == b"2"


def test_transact_retries_a_transaction_whose_connection_died_and_writes_once(
    pg: PostgresStore, admin: Admin, app_name: str
) -> None:
    put(pg, {b"counter": b"0"})
    calls = []

    def bump(tr: Transaction) -> int:
        calls.append(1)
        n = int(tr.get(b"counter") or b"0")
        if len(calls) == 1:
            terminate(admin, app_name)  # mid-transaction, before the commit is sent
        tr.set(b"counter", str(n + 1).encode())
        return n + 1

    assert pg.transact(bump) == 1
    assert len(calls) == 2
    assert get(pg, b"counter") == b"1"


def test_a_killed_backend_between_reads_is_retried(
    pg: PostgresStore, admin: Admin, app_name: str
) -> None:
    put(pg, {b"x": b"1", b"y": b"2"})
    calls = []

    def fn(tr: Transaction) -> list[bytes | None]:
        calls.append(1)
        first = tr.get(b"x")
        if len(calls) == 1:
            terminate(admin, app_name)
        return [first, tr.get(b"y")]

    assert pg.transact(fn) == [b"1", b"2"]
    assert len(calls) == 2


def test_dead_idle_connections_are_replaced_without_a_failed_attempt(
    pg: PostgresStore, admin: Admin, app_name: str
) -> None:
    put(pg, {b"k": b"v"})
    assert backends(admin, app_name), "the pool should keep an idle connection"
    terminate(admin, app_name)
    before = pg.stats.snapshot()
    assert get(pg, b"k") == b"v"
    delta = pg.stats.snapshot() - before
    assert (delta.attempts, delta.conflicts) == (1, 0)


def test_losing_the_connection_during_the_commit_raises_commit_unknown(
    pg: PostgresStore, admin: Admin, app_name: str
) -> None:
    put(pg, {b"locked": b"old"})
    # Hold the row, so that our commit waits inside its round trip, then kill our backend.
    admin.execute("BEGIN")
    admin.execute(f"UPDATE {pg.table} SET value = 'admin' WHERE key = 'locked'")

    def kill_when_waiting() -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with psycopg.connect(postgres_url() or "", autocommit=True) as watcher:
                waiting = watcher.execute(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE application_name = %s AND wait_event_type = 'Lock'",
                    (app_name,),
                ).fetchone()
                if waiting and waiting[0]:
                    terminate(watcher, app_name)
                    return
            time.sleep(0.02)

    killer = threading.Thread(target=kill_when_waiting)
    killer.start()
    try:
        with pytest.raises(CommitUnknown) as info:
            pg.transact(lambda tr: tr.set(b"locked", b"new"))
        assert not info.value.retryable
        assert pg.stats.attempts == 2  # the put, and one attempt: no retry
    finally:
        killer.join()
        admin.execute("ROLLBACK")
    # Killed while waiting for the lock: the commit did not apply, and nothing half did.
    assert get(pg, b"locked") == b"old"


def test_counter_stays_exact_while_backends_are_killed_at_random(pg_url: str, admin: Admin) -> None:
    """Never wrong data: every acknowledged increment is there once, and an increment
    whose commit was in flight when its connection died (CommitUnknown) is there at most
    once."""
    app_name = f"sqlkv-test-{uuid.uuid4().hex[:12]}"
    store = PostgresStore(
        make_conninfo(pg_url, application_name=app_name),
        table=f"kv_test_{uuid.uuid4().hex[:12]}",
        retry=RetryPolicy(max_attempts=100, max_backoff_s=0.02),
    )
    put(store, {b"counter": b"0"})
    done = threading.Event()
    acknowledged: list[int] = []
    unknown: list[int] = []

    def bump(tr: Transaction) -> None:
        tr.set(b"counter", b"%d" % (int(tr.get(b"counter") or b"0") + 1))

    def worker() -> None:
        for _ in range(25):
            try:
                store.transact(bump)
                acknowledged.append(1)
            except CommitUnknown:
                unknown.append(1)

    def killer() -> None:
        with psycopg.connect(pg_url, autocommit=True) as conn:
            while not done.wait(0.015):
                conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE application_name = %s",
                    (app_name,),
                )

    threads = [threading.Thread(target=worker) for _ in range(3)]
    chaos = threading.Thread(target=killer)
    chaos.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    done.set()
    chaos.join()
    try:
        counter = int(get(store, b"counter") or b"0")
        assert len(acknowledged) + len(unknown) == 75
        assert len(acknowledged) <= counter <= len(acknowledged) + len(unknown)
        assert store.stats.attempts > store.stats.transactions  # kills did cause retries
    finally:
        store.drop()
        store.close()


# ---------------------------------------------------------------------- conflicts


@pytest.mark.parametrize("change", ["update", "delete"])
def test_a_key_read_serializably_and_changed_since_conflicts_without_a_cycle(
    pg: PostgresStore, change: str
) -> None:
    # SSI alone commits both (one read-write dependency is no cycle); the contract does not.
    fill(pg)
    put(pg, {b"a/read": b"0"})
    t1, t2 = pg.begin(), pg.begin()
    try:
        assert t1.get(b"a/read") == b"0"
        t1.set(b"z/written", b"1")
        t2.get(b"m/02500", snapshot=True)  # begins t2, far from t1's keys
        if change == "update":
            t2.set(b"a/read", b"changed")
        else:
            t2.clear(b"a/read")
        t2.commit()
        with pytest.raises(ConflictError):
            t1.commit()
    finally:
        t1.close()
        t2.close()
    assert get(pg, b"z/written") is None


def test_snapshot_reads_of_a_changed_key_do_not_conflict_on_a_large_table(
    pg: PostgresStore,
) -> None:
    fill(pg)
    put(pg, {b"a/read": b"0"})
    t1, t2 = pg.begin(), pg.begin()
    try:
        assert t1.get(b"a/read", snapshot=True) == b"0"
        assert len(t1.get_range(b"a/", b"a0", snapshot=True)) == 1
        t1.set(b"z/written", b"1")
        t2.set(b"a/read", b"changed")
        t2.commit()
        t1.commit()
    finally:
        t1.close()
        t2.close()
    assert get(pg, b"z/written") == b"1"


def test_an_insert_into_a_range_read_orders_the_reader_first(pg: PostgresStore) -> None:
    """The documented difference from FoundationDB (module docstring): a key inserted
    into a range read serializably, with no dependency cycle, does not make the reader
    retry; PostgreSQL orders the reader before the inserter, which is serializable."""
    fill(pg)
    t1, t2 = pg.begin(), pg.begin()
    try:
        assert t1.get_range(b"a/", b"a0") == []
        t1.set(b"z/count", b"0")
        t2.get(b"m/02500", snapshot=True)  # begins t2, far from t1's keys
        t2.set(b"a/new", b"1")
        t2.commit()
        t1.commit()
    finally:
        t1.close()
        t2.close()


def test_a_clear_keeps_a_key_inserted_after_its_snapshot(pg: PostgresStore) -> None:
    """The same difference for clears (module docstring): a clear or clear_range removes
    the rows its snapshot sees; a key inserted by a transaction that committed in the
    meantime survives, the clearing transaction being ordered first. (FoundationDB and
    the other drivers remove it: the later commit wins.)"""
    put(pg, {b"x": b"1"})
    t1 = pg.begin()
    try:
        assert t1.get(b"x") == b"1"  # takes t1's snapshot
        put(pg, {b"c/new": b"2", b"k": b"3"})
        t1.clear_range(b"c/", b"c0")
        t1.clear(b"k")
        t1.commit()
    finally:
        t1.close()
    assert get(pg, b"c/new") == b"2"
    assert get(pg, b"k") == b"3"


def test_a_serialization_failure_becomes_a_conflict_error(pg: PostgresStore) -> None:
    put(pg, {b"hot": b"0"})
    t1, t2 = pg.begin(), pg.begin()
    try:
        t1.get(b"hot")
        t2.get(b"hot")
        t1.set(b"hot", b"1")
        t2.set(b"hot", b"2")
        t1.commit()
        with pytest.raises(ConflictError) as info:
            t2.commit()
    finally:
        t1.close()
        t2.close()
    assert info.value.retryable
    assert getattr(info.value.__cause__, "sqlstate", None) == "40001"


def test_a_read_row_locked_by_a_concurrent_writer_conflicts_at_once(
    pg: PostgresStore, admin: Admin
) -> None:
    put(pg, {b"read": b"0"})
    tr = pg.begin()
    try:
        tr.get(b"read")
        tr.set(b"other", b"1")
        admin.execute("BEGIN")
        admin.execute(f"UPDATE {pg.table} SET value = 'x' WHERE key = 'read'")
        started = time.monotonic()
        with pytest.raises(ConflictError) as info:
            tr.commit()
        assert time.monotonic() - started < 1
    finally:
        tr.close()
        admin.execute("ROLLBACK")
    assert getattr(info.value.__cause__, "sqlstate", None) == "55P03"
    assert get(pg, b"other") is None


def test_a_deadlock_becomes_a_conflict_error(pg: PostgresStore, admin: Admin) -> None:
    put(pg, {b"a": b"0", b"b": b"0"})
    admin.execute("BEGIN")
    admin.execute(f"UPDATE {pg.table} SET value = 'admin' WHERE key = 'b'")
    outcome: list[BaseException] = []

    def commit() -> None:
        tr = pg.begin()
        try:
            tr.set(b"a", b"mine")  # sets go in key order: a is taken, then b waits
            tr.set(b"b", b"mine")
            tr.commit()
        except BaseException as exc:
            outcome.append(exc)
        finally:
            tr.close()

    worker = threading.Thread(target=commit)
    worker.start()
    time.sleep(0.3)
    try:
        # Our commit holds a and waits for b; waiting for a now closes the cycle. The
        # worker started waiting first, so its deadlock check runs first and aborts it.
        admin.execute(f"UPDATE {pg.table} SET value = 'admin' WHERE key = 'a'")
    except psycopg.errors.DeadlockDetected:
        pytest.fail("the server aborted the admin side; the worker should have lost")
    finally:
        worker.join()
        admin.execute("ROLLBACK")
    assert len(outcome) == 1 and isinstance(outcome[0], ConflictError)
    assert getattr(outcome[0].__cause__, "sqlstate", None) == "40P01"


# ---------------------------------------------------------------------- keys and values


def test_keys_up_to_the_index_limit_work_and_longer_ones_raise_limit_exceeded(
    pg: PostgresStore,
) -> None:
    rng = random.Random(3)
    longest = rng.randbytes(MAX_INDEXED_KEY_BYTES)
    put(pg, {longest: b"fits"})
    assert get(pg, longest) == b"fits"
    too_long = rng.randbytes(MAX_INDEXED_KEY_BYTES + 1)
    with pytest.raises(LimitExceeded) as info:
        put(pg, {b"first": b"1", too_long: b"x"})
    assert (info.value.what, info.value.actual) == ("key", MAX_INDEXED_KEY_BYTES + 1)
    assert get(pg, b"first") is None


def test_empty_and_binary_keys_and_values_round_trip(pg: PostgresStore) -> None:
    items = {b"": b"", b"\x00": b"\x00", b"\xff" * 3: bytes(range(256)), b"k\x00": b"\\x00"}
    put(pg, items)
    assert dict(pg.transact(lambda tr: tr.get_range(b"", b"\xff" * 4))) == items


# ---------------------------------------------------------------------- configuration


def test_an_unreachable_server_fails_fast_naming_host_and_port() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    started = time.monotonic()
    with pytest.raises(StoreUnavailable) as info:
        PostgresStore(f"postgresql://someone:s3cret-pw@127.0.0.1:{port}/db")
    assert time.monotonic() - started < 2
    message = str(info.value)
    assert f"127.0.0.1:{port}" in message
    assert "s3cret-pw" not in message


def test_a_server_that_never_answers_times_out() -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()  # accepts TCP connections, never says a word
        port = silent.getsockname()[1]
        started = time.monotonic()
        with pytest.raises(StoreUnavailable) as info:
            PostgresStore(f"postgresql://u:s3cret-pw@127.0.0.1:{port}/db?connect_timeout=2")
        elapsed = time.monotonic() - started
    assert elapsed < 10
    assert f"127.0.0.1:{port}" in str(info.value)
    assert "s3cret-pw" not in str(info.value)


def test_a_wrong_password_is_a_clear_error_without_the_password(pg_url: str) -> None:
    params = conninfo_to_dict(pg_url)
    params["password"] = "definitely-wrong-pw"
    with pytest.raises(StoreUnavailable) as info:
        PostgresStore(make_conninfo("", **params))
    assert "definitely-wrong-pw" not in str(info.value)
    assert f"{params.get('host')}:{params.get('port')}" in str(info.value)


@pytest.mark.parametrize("table", ["", "bad-name", "x; DROP TABLE y", "a.b.c", "1abc", "t" * 64])
def test_invalid_table_names_are_refused(pg_url: str, table: str) -> None:
    with pytest.raises(ConfigError, match="invalid table name"):
        PostgresStore(pg_url, table=table)


def test_the_url_shown_has_no_password(pg: PostgresStore, pg_url: str) -> None:
    password = str(conninfo_to_dict(pg_url).get("password") or "")
    assert pg.url.startswith("postgresql://")
    if password:
        assert password not in pg.url
        assert password not in repr(pg)


def test_the_pool_keeps_at_most_pool_size_idle_connections_and_close_ends_them(
    pg: PostgresStore, pg_url: str, admin: Admin
) -> None:
    app_name = f"sqlkv-test-{uuid.uuid4().hex[:12]}"
    store = PostgresStore(
        make_conninfo(pg_url, application_name=app_name), table=pg.table, pool_size=2
    )
    transactions = [store.begin() for _ in range(5)]
    for tr in transactions:
        tr.get(b"any")
    wait_for_backends(admin, app_name, 5)
    for tr in transactions:
        tr.close()
    wait_for_backends(admin, app_name, 2)
    store.close()
    wait_for_backends(admin, app_name, 0)


def test_a_second_store_on_the_same_table_sees_the_data(pg: PostgresStore, pg_url: str) -> None:
    put(pg, {b"shared": b"yes"})
    other = PostgresStore(pg_url, table=pg.table)
    try:
        assert get(other, b"shared") == b"yes"
    finally:
        other.close()
