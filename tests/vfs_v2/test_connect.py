"""``sqlkv.connect``: stores, engines, options, formats, closing, and ``sqlkv demo``."""

from __future__ import annotations

import gc
import threading
from pathlib import Path

import apsw
import pytest
from vfs_support import rows

import sqlkv
from sqlkv.cli.main import main
from sqlkv.engine import Engine
from sqlkv.errors import ConfigError
from sqlkv.store import MemoryStore
from sqlkv.vfs.v2 import Connection, VfsConfig, parse_cache_size


def test_default_store_is_the_embedded_one_named_by_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SQLKV_STORE", str(tmp_path / "data"))
    conn = sqlkv.connect("db")
    conn.execute("CREATE TABLE t(x)")
    conn.execute("INSERT INTO t VALUES (42)")
    conn.close()
    assert (tmp_path / "data").is_dir()
    conn = sqlkv.connect("db", str(tmp_path / "data"))
    assert rows(conn, "SELECT x FROM t") == [(42,)]
    conn.close()


def test_connection_is_apsw_with_counters_and_settings(tmp_path: Path) -> None:
    conn = sqlkv.connect("db", str(tmp_path / "data"))
    assert isinstance(conn, apsw.Connection) and isinstance(conn, Connection)
    pragmas = {
        p: conn.execute(f"PRAGMA {p}").fetchone()[0]  # type: ignore[index]
        for p in ("page_size", "journal_mode", "locking_mode", "auto_vacuum", "temp_store")
    }
    assert pragmas == {
        "page_size": 4096,
        "journal_mode": "memory",
        "locking_mode": "exclusive",
        "auto_vacuum": 0,
        "temp_store": 2,
    }
    assert conn.sqlkv_stats.round_trips == 1
    conn.close()
    conn.close()  # closing twice is harmless


def test_with_block_is_an_apsw_transaction(tmp_path: Path) -> None:
    conn = sqlkv.connect("db", str(tmp_path / "data"))
    conn.execute("CREATE TABLE t(x)")
    with pytest.raises(ZeroDivisionError), conn:
        conn.execute("INSERT INTO t VALUES (1)")
        raise ZeroDivisionError
    assert rows(conn, "SELECT count(*) FROM t") == [(0,)]
    conn.close()


def test_closing_closes_the_store_it_opened_but_not_one_given() -> None:
    given = MemoryStore()
    conn = sqlkv.connect("db", given)
    conn.close()
    conn = sqlkv.connect("db", given)  # still usable
    conn.close()
    given.close()


def test_a_connection_dropped_without_close_stops_its_compaction_and_closes_its_store(
    tmp_path: Path,
) -> None:
    def compactors() -> int:
        return sum(t.name.startswith("sqlkv-compact") for t in threading.enumerate())

    before = compactors()
    conn = sqlkv.connect("db", str(tmp_path / "store"))
    conn.execute("CREATE TABLE t(x)")
    assert compactors() == before + 1
    del conn
    gc.collect()
    assert compactors() == before
    again = sqlkv.connect("db", str(tmp_path / "store"))
    assert rows(again, "SELECT count(*) FROM t") == [(0,)]
    again.close()


def test_an_engine_can_be_given_instead_of_a_store() -> None:
    engine = Engine(MemoryStore())
    conn = sqlkv.connect("db", engine=engine)
    conn.execute("CREATE TABLE t(x)")
    conn.close()
    assert engine.head("db").head_txid >= 1
    with pytest.raises(ConfigError, match="not both"):
        sqlkv.connect("db", MemoryStore(), engine=engine)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (0, 0),
        (123_456, 123_456),
        ("64MiB", 64 << 20),
        ("512 KiB", 512 << 10),
        ("1GB", 10**9),
        ("2000 pages", 2000 * 4096),
        ("10p", 40960),
    ],
)
def test_cache_size_in_bytes_or_pages(given: int | str, expected: int) -> None:
    assert parse_cache_size(given) == expected


def test_bad_options_are_refused_with_the_valid_ones_listed() -> None:
    with pytest.raises(ConfigError, match="cache_size"):
        parse_cache_size("lots")
    with pytest.raises(ConfigError, match=r"unknown connect option\(s\) \['cache_sise'\]"):
        sqlkv.connect("db", MemoryStore(), cache_sise=5)
    with pytest.raises(ConfigError, match="retry_attempts"):
        VfsConfig(retry_attempts=0).validate()
    with pytest.raises(ConfigError, match="unknown format"):
        sqlkv.connect("db", MemoryStore(), format="v3")
    with pytest.raises(ConfigError, match="invalid database name '': it is empty"):
        sqlkv.connect("", MemoryStore())


def test_format_v1_routes_to_the_v1_client() -> None:
    store = MemoryStore()
    conn = sqlkv.connect("db", store, format="v1", cache_size="1MiB")
    conn.execute("CREATE TABLE t(x)")
    assert not isinstance(conn, Connection)
    conn.close()


def test_vacuum_shrinks_and_keeps_everything(tmp_path: Path) -> None:
    conn = sqlkv.connect("db", str(tmp_path / "data"))
    with conn:
        conn.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)")
        conn.executemany("INSERT INTO t(v) VALUES (randomblob(2000))", [()] * 2000)
    conn.execute("DELETE FROM t WHERE id % 4 != 0")
    before = conn.sqlkv_head().db_size_pages
    expected = rows(conn, "SELECT id, v FROM t ORDER BY id")
    conn.execute("VACUUM")
    after = conn.sqlkv_head().db_size_pages
    assert after < before / 2
    conn.close()
    conn = sqlkv.connect("db", str(tmp_path / "data"))
    assert rows(conn, "SELECT id, v FROM t ORDER BY id") == expected
    assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    conn.close()


def test_demo_runs_on_the_given_store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--store", str(tmp_path / "data"), "demo"]) == 0
    out = capsys.readouterr().out
    assert "write: 5100 rows in 103 commits" in out
    assert "cold reopen and read" in out
    assert "stored: " in out
    assert main(["--store", str(tmp_path / "data"), "demo", "--db", "other"]) == 0


def test_known_head_is_the_head_the_last_commit_landed_without_a_round_trip() -> None:
    conn = sqlkv.connect("db", MemoryStore(), compaction="off")
    opened = conn.sqlkv_known_head
    assert opened is not None
    conn.execute("CREATE TABLE t(x)")
    conn.execute("INSERT INTO t VALUES (1)")
    trips = conn.sqlkv_stats.round_trips
    known = conn.sqlkv_known_head
    assert conn.sqlkv_stats.round_trips == trips  # reading it costs nothing
    fresh = conn.sqlkv_head()
    assert known is not None and known.head_txid == fresh.head_txid > opened.head_txid
    assert known.delta_count == fresh.delta_count == opened.delta_count + 2
    conn.close()
