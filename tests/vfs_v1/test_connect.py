"""``connect_v1``: options, isolation of databases, in-process locking, counters."""

from __future__ import annotations

import apsw
import pytest

from sqlkv.errors import ConfigError
from sqlkv.keyspace import MAX_NAME_BYTES
from sqlkv.store import MemoryStore, Store
from sqlkv.store.faults import crash_points
from sqlkv.vfs.v1 import V1Options, connect_v1
from sqlkv.vfs.v1.check import inspect
from sqlkv.vfs.v1.vfs import VFS_NAME, get_vfs


def test_new_database_has_4k_pages_and_a_delete_journal(store: Store) -> None:
    conn = connect_v1("fresh", store)
    assert conn.execute("PRAGMA journal_mode").fetchall() == [("delete",)]
    conn.execute("CREATE TABLE t(x)")
    assert conn.execute("PRAGMA page_size").fetchall() == [(4096,)]
    conn.close()


def test_data_survives_closing_and_reopening(store: Store) -> None:
    conn = connect_v1("kept", store)
    conn.execute("CREATE TABLE t(x); INSERT INTO t VALUES ('hello')")
    conn.close()
    conn = connect_v1("kept", store)
    assert conn.execute("SELECT x FROM t").fetchall() == [("hello",)]
    conn.close()


def test_databases_with_related_names_are_isolated() -> None:
    store = MemoryStore()
    # valid names (sqlkv.keyspace's rule) whose keys share prefixes, one that is another's
    # journal file, and one of the longest length; NUL names: tests/engine/test_keys.py
    names = ["a", "a b", "a!", "ab", "a-journal", "a-wal", "n" * MAX_NAME_BYTES]
    for name in names:
        conn = connect_v1(name, store)
        conn.execute("CREATE TABLE t(x); INSERT INTO t VALUES (?)", (name,))
        conn.close()
    for name in names:
        conn = connect_v1(name, store)
        assert conn.execute("SELECT x FROM t").fetchall() == [(name,)]
        conn.close()
        assert set(inspect(store, name)) == {"db"}


def test_unknown_and_invalid_options_are_refused() -> None:
    mounts = dict(get_vfs()._mounts)
    with pytest.raises(ConfigError) as unknown:
        connect_v1("x", MemoryStore(), cache_size=10)
    assert str(unknown.value) == (
        "unknown v1 option(s) cache_size; valid: busy_timeout_ms, cache_pages, flags"
    )
    with pytest.raises(ConfigError) as negative:
        V1Options.from_kwargs(cache_pages=-1)
    assert str(negative.value) == "v1 option cache_pages must be an integer >= 0, got -1"
    assert get_vfs()._mounts == mounts, "a refused connection leaves no mount behind"


def test_paths_of_no_mounted_database_cannot_be_opened() -> None:
    get_vfs()
    with pytest.raises(apsw.CantOpenError):
        apsw.Connection("/sqlkv-v1/999999/nothing", vfs=VFS_NAME)
    with pytest.raises(apsw.CantOpenError):
        apsw.Connection("/tmp/some-local-file.db", vfs=VFS_NAME)


def test_stats_count_every_store_round_trip_of_the_connection() -> None:
    store = MemoryStore()
    conn = connect_v1("counted", store)
    before, ops = conn.v1_stats.snapshot(), store.op_count
    conn.execute("CREATE TABLE t(x); INSERT INTO t VALUES (1), (2)")
    conn.execute("UPDATE t SET x = x + 1")
    spent = conn.v1_stats - before
    assert spent.round_trips == store.op_count - ops > 0
    assert spent.store_reads == 0, "a warm connection reads nothing back from the store"
    conn.close()


def test_reopening_after_every_connection_closed_starts_cold() -> None:
    store = MemoryStore()
    conn = connect_v1("cold", store)
    conn.execute("CREATE TABLE t(x); INSERT INTO t VALUES (randomblob(20000))")
    conn.close()
    conn = connect_v1("cold", store)
    conn.execute("SELECT length(x) FROM t").fetchall()
    assert conn.v1_stats.store_reads > 0 and conn.v1_stats.cache_misses > 0
    conn.close()


def test_connections_in_one_process_share_locks_and_see_each_others_writes() -> None:
    store = MemoryStore()
    a, b = connect_v1("shared", store), connect_v1("shared", store)
    a.execute("CREATE TABLE t(x); INSERT INTO t VALUES (1)")
    assert b.execute("SELECT x FROM t").fetchall() == [(1,)]
    a.execute("BEGIN EXCLUSIVE")
    with pytest.raises(apsw.BusyError):
        b.execute("SELECT x FROM t").fetchall()
    a.execute("UPDATE t SET x = 2; COMMIT")
    assert b.execute("SELECT x FROM t").fetchall() == [(2,)]
    b.execute("BEGIN IMMEDIATE")
    with pytest.raises(apsw.BusyError):
        a.execute("INSERT INTO t VALUES (3)")
    assert a.execute("SELECT x FROM t").fetchall() == [(2,)], "readers go on meanwhile"
    b.execute("ROLLBACK")
    a.close()
    b.close()


def test_retryable_store_failures_are_retried_invisibly() -> None:
    store = MemoryStore()
    conn = connect_v1("flaky", store)
    conn.execute("CREATE TABLE t(x)")
    with store.recording() as ops:
        conn.execute("INSERT INTO t VALUES (0)")
    points = [p for p in crash_points([op.point for op in ops]) if not p.after_commit]
    assert len(points) >= 4
    for n, point in enumerate(points, 1):  # each store operation of an insert fails once
        store.faults.fail_at(point.point, point.occurrence)
        conn.execute("INSERT INTO t VALUES (?)", (n,))
        assert store.faults.fired[-1] == f"fail {point.point} #{point.occurrence}"
        store.faults.clear()
    assert len(store.faults.fired) == len(points)
    assert conn.execute("SELECT count(*) FROM t").fetchall() == [(len(points) + 1,)]
    conn.close()
