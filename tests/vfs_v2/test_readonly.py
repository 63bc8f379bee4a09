"""Read-only connections (docs/read-replicas.md): live readers that follow the head and
readers pinned ``at=`` a past state, against an engine with history (``HistoryFake``)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import apsw
import pytest
from history_fake import HistoryFake, history_engine
from prometheus_client import CollectorRegistry

import sqlkv
from sqlkv.errors import ConfigError, SnapshotTooOld, UnknownLabel
from sqlkv.vfs.v2.reader import ReaderConnection, parse_at, stamp_page1
from sqlkv.vfs.v2.reader_metrics import ReaderMetrics

Open = Callable[..., Any]


@pytest.fixture
def fake() -> Iterator[HistoryFake]:
    engine = HistoryFake()
    yield engine
    engine.close()


@pytest.fixture(params=["fake", "engine"])
def backend(request: pytest.FixtureRequest) -> Iterator[Any]:
    """An engine with history: the fake, or the real ``Engine`` (calls recorded)."""
    engine = history_engine(request.param)
    yield engine
    engine.close()


@pytest.fixture
def connect(backend: Any) -> Iterator[Open]:
    opened: list[apsw.Connection] = []

    def open_db(name: str = "db", **options: Any) -> Any:
        conn = sqlkv.connect(name, engine=backend, **options)
        opened.append(conn)
        return conn

    yield open_db
    for conn in reversed(opened):
        conn.close()


def rows(conn: apsw.Connection, sql: str = "SELECT id, v FROM t ORDER BY id") -> list[Any]:
    return [tuple(r) for r in conn.execute(sql)]


def writer_with_table(connect: Open, n: int = 0, size: int = 10) -> apsw.Connection:
    w = connect()
    w.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v)")
    with w:
        for i in range(n):
            w.execute("INSERT INTO t VALUES (?, randomblob(?))", (i, size))
    return w


def test_live_reader_sees_each_new_commit(connect: Open) -> None:
    w = writer_with_table(connect)
    r = connect(readonly=True)
    assert isinstance(r, ReaderConnection) and r.sqlkv_readonly and not r.sqlkv_pinned
    assert rows(r) == []
    for i in range(5):
        w.execute("INSERT INTO t VALUES (?, ?)", (i, f"v{i}"))
        assert rows(r) == [(j, f"v{j}") for j in range(i + 1)]
        assert r.sqlkv_txid == w.sqlkv_txid
    w.execute("UPDATE t SET v = 'x' WHERE id = 2")  # page 1 unchanged: the stamp tells SQLite
    assert rows(r)[2] == (2, "x")


def test_reader_never_opens_or_commits_so_the_owner_is_never_fenced(
    connect: Open, backend: Any
) -> None:
    w = writer_with_table(connect)
    backend.calls.clear()
    r = connect(readonly=True)
    for i in range(3):
        w.execute("INSERT INTO t VALUES (?, 1)", (i,))
        rows(r)
    assert not w.sqlkv_fenced
    reader_calls = {"snapshot", "changes_since", "read_at", "resolve"}
    assert set(backend.calls) - {"commit"} <= reader_calls
    assert backend.calls.count("commit") == 3


def test_each_read_transaction_refreshes_in_one_round_trip(connect: Open) -> None:
    w = writer_with_table(connect, n=200, size=300)
    r = connect(readonly=True)
    rows(r)
    for i in range(10):
        w.execute("UPDATE t SET v = ? WHERE id = ?", (f"new{i}", i * 17))
        before = r.sqlkv_stats.snapshot()
        assert rows(r)[i * 17] == (i * 17, f"new{i}")
        spent = r.sqlkv_stats - before
        assert spent.refreshes == 1 and spent.refresh_round_trips == 1
        # only the changed pages (a leaf, maybe an interior page) are fetched again
        assert spent.pages_invalidated <= 3
        assert spent.get_pages_calls <= spent.pages_invalidated
        assert spent.cache_drops == 0
    assert r.sqlkv_stats.refresh_max_round_trips == 1


def test_a_scan_after_scattered_changes_fetches_them_in_one_read(connect: Open) -> None:
    w = writer_with_table(connect, n=2000, size=900)
    r = connect(readonly=True)
    rows(r)
    with w:
        for k in range(0, 2000, 200):
            w.execute("UPDATE t SET v = randomblob(900) WHERE id = ?", (k,))
    before = r.sqlkv_stats.snapshot()
    assert rows(r) == rows(w)
    spent = r.sqlkv_stats - before
    assert spent.pages_invalidated >= 10
    assert spent.refresh_round_trips == 1 and spent.get_pages_calls == 1
    assert spent.pages_fetched == spent.pages_invalidated


def test_a_read_transaction_keeps_one_state_while_the_owner_commits(connect: Open) -> None:
    w = writer_with_table(connect, n=50, size=2000)
    r = connect(readonly=True)
    r.execute("BEGIN")
    first = rows(r, "SELECT count(*), sum(length(v)) FROM t")
    txid = r.sqlkv_txid
    with w:
        w.execute("DELETE FROM t WHERE id % 2 = 0")
        w.execute("INSERT INTO t VALUES (1000, randomblob(50000))")
    assert rows(r, "SELECT count(*), sum(length(v)) FROM t") == first  # cold pages too
    assert r.sqlkv_txid == txid
    r.execute("COMMIT")
    assert rows(r, "SELECT count(*) FROM t") == [(26,)]
    assert r.sqlkv_txid == w.sqlkv_txid


def test_reader_follows_schema_changes_and_vacuum(connect: Open) -> None:
    w = writer_with_table(connect, n=300, size=500)
    r = connect(readonly=True)
    assert rows(r, "SELECT count(*) FROM t") == [(300,)]
    w.execute("CREATE TABLE u(x)")
    w.execute("INSERT INTO u VALUES (42)")
    assert rows(r, "SELECT x FROM u") == [(42,)]
    w.execute("DELETE FROM t WHERE id >= 10")
    w.execute("VACUUM")
    assert rows(r, "SELECT count(*) FROM t") == [(10,)]
    assert r.sqlkv_file.local_size == w.sqlkv_file.local_size
    with w:
        for i in range(10, 100):
            w.execute("INSERT INTO t VALUES (?, randomblob(500))", (i,))
    assert rows(r) == rows(w)
    assert rows(r, "PRAGMA integrity_check") == [("ok",)]


@pytest.mark.parametrize(
    "sql",
    [
        "INSERT INTO t VALUES (1, 1)",
        "CREATE TABLE x(y)",
        "DELETE FROM t",
        "VACUUM",
        "PRAGMA user_version = 3",
    ],
)
def test_writes_are_refused_as_sqlite_readonly(connect: Open, sql: str) -> None:
    writer_with_table(connect)
    r = connect(readonly=True)
    with pytest.raises(apsw.ReadOnlyError, match="attempt to write a readonly database"):
        r.execute(sql)
    assert rows(r) == []


def test_reader_of_a_missing_database_raises_database_not_found(connect: Open) -> None:
    with pytest.raises(Exception) as info:
        connect("nowhere", readonly=True)
    assert type(info.value).__name__ == "DatabaseNotFound"


def test_pinned_reader_reads_one_state_for_ever(connect: Open) -> None:
    w = writer_with_table(connect)
    w.execute("INSERT INTO t VALUES (1, 'old')")
    txid = w.sqlkv_txid
    w.execute("UPDATE t SET v = 'new'")
    w.execute("INSERT INTO t VALUES (2, 'x')")
    p = connect(at=txid)
    assert p.sqlkv_pinned and p.sqlkv_txid == txid
    assert rows(p) == [(1, "old")]
    before = p.sqlkv_stats.round_trips
    w.execute("DELETE FROM t")
    for _ in range(3):
        assert rows(p) == [(1, "old")]
    assert p.sqlkv_stats.round_trips == before  # its caches stay valid: nothing to ask


def test_at_label_and_time(connect: Open, backend: Any) -> None:
    fake = backend
    w = writer_with_table(connect)
    w.execute("INSERT INTO t VALUES (1, 'a')")
    fake.label("db", "before-b")
    time.sleep(0.01)
    between = datetime.now(UTC)
    time.sleep(0.01)
    w.execute("INSERT INTO t VALUES (2, 'b')")
    assert rows(connect(at="before-b")) == [(1, "a")]
    assert rows(connect(at=between)) == [(1, "a")]
    assert rows(connect(at=datetime.now(UTC) + timedelta(hours=1))) == rows(w)
    with pytest.raises(UnknownLabel):
        connect(at="no-such-label")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"at": 3, "readonly": False}, "read-only"),
        ({"at": datetime(2026, 1, 1)}, "no timezone"),
        ({"at": 0}, "txids start at 1"),
        ({"at": True}, "give a txid"),
        ({"at": 3.5}, "give a txid"),
        ({"readonly": True, "format": "v1"}, "format='v2'"),
    ],
)
def test_bad_read_only_options_are_refused(
    connect: Open, options: dict[str, Any], message: str
) -> None:
    writer_with_table(connect)
    with pytest.raises(ConfigError, match=message):
        connect(**options)


def forget_history(backend: Any, w: apsw.Connection) -> None:
    """Make the states before the head unreadable: the fake forgets them; the real engine
    (no retention window) loses them when compaction folds pages rewritten since."""
    if isinstance(backend, HistoryFake):
        backend.forget_before("db", w.sqlkv_txid)
        return
    for _ in range(2):
        w.execute("UPDATE t SET v = randomblob(length(v))")
    backend.engine.compact_until_done("db")


def test_pinned_state_past_retention_is_a_clear_error_never_wrong_data(
    connect: Open, backend: Any
) -> None:
    w = writer_with_table(connect, n=100, size=1000)
    txid = w.sqlkv_txid
    p = connect(at=txid, preload_bytes=4096, cache_size="64 pages")
    w.execute("DELETE FROM t WHERE id % 2 = 0")
    forget_history(backend, w)
    with pytest.raises(SnapshotTooOld) as info:
        rows(p)
    assert isinstance(info.value, apsw.IOError)
    assert p.sqlkv_stats.snapshot_too_old >= 1
    with pytest.raises(SnapshotTooOld):
        connect(at=txid)


def test_live_reader_past_retention_drops_its_cache_and_reads_the_head(
    connect: Open, backend: Any
) -> None:
    w = writer_with_table(connect, n=100, size=1000)
    r = connect(readonly=True)
    assert len(rows(r)) == 100
    w.execute("DELETE FROM t WHERE id < 50")
    forget_history(backend, w)
    assert rows(r) == rows(w)
    assert r.sqlkv_stats.cache_drops == 1


def test_reader_metrics_record_lag(backend: Any) -> None:
    fake = backend
    metrics = ReaderMetrics(CollectorRegistry())
    w = sqlkv.connect("db", engine=fake)
    w.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v)")
    with contextlib.closing(w):
        from sqlkv.vfs.v2.reader import connect_reader

        with contextlib.closing(connect_reader("db", fake, metrics=metrics)) as r:
            rows(r)
            for i in range(4):
                w.execute("INSERT INTO t VALUES (?, 1)", (i,))
            rows(r)
            reg = metrics.registry
            assert reg.get_sample_value("sqlkv_reader_lag_txids_sum") == 4
            assert reg.get_sample_value("sqlkv_reader_lag_seconds_count") == 1
            assert reg.get_sample_value("sqlkv_reader_refreshes_total", {"outcome": "changed"})
        with contextlib.closing(connect_reader("db", fake, at=2, metrics=metrics)):
            assert metrics.registry.get_sample_value("sqlkv_reader_pinned_lag_txids_sum") == 4


def test_stamp_page1_sets_the_change_counter_and_keeps_the_header_size_valid() -> None:
    page = bytearray(4096)
    page[24:28] = page[92:96] = (7).to_bytes(4, "big")
    stamped = stamp_page1(bytes(page), (1 << 32) + 9)
    assert stamped[24:28] == stamped[92:96] == (9).to_bytes(4, "big")
    assert stamped[:24] == page[:24] and stamped[96:] == page[96:]
    page[92:96] = (6).to_bytes(4, "big")  # header size not valid: it must stay so
    stamped = stamp_page1(bytes(page), 9)
    assert stamped[24:28] == (9).to_bytes(4, "big") and stamped[92:96] == page[92:96]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("42", 42),
        ("label:42", "42"),
        ("nightly", "nightly"),
        ("2026-12-02T08:00:00Z", datetime(2026, 12, 2, 8, tzinfo=UTC)),
        ("2026-12-02 09:00:00+01:00", datetime(2026, 12, 2, 8, tzinfo=UTC)),
    ],
)
def test_parse_at(text: str, expected: object) -> None:
    assert parse_at(text) == expected


def test_parse_at_refuses_a_time_without_offset() -> None:
    with pytest.raises(ConfigError, match="no timezone"):
        parse_at("2026-12-02T08:00:00")
