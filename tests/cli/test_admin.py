"""``sqlkv inspect``, ``compact``, ``list`` and ``delete`` against real stores, checked
against the engine and the store directly."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from pathlib import Path

import pytest

from sqlkv.cli.scan import delete_database, list_databases, v1_range
from sqlkv.engine import Engine
from sqlkv.engine.keys import DbKeys
from sqlkv.keyspace import FORMAT_V1, FORMAT_V2, decode_db_prefix
from sqlkv.store import MemoryStore, Store
from sqlkv.store.embedded import EmbeddedStore
from sqlkv.vfs.v1 import connect_v1
from sqlkv.vfs.v2 import connect_v2

from .cli_support import store_keys
from .conftest import Workdir


def in_range(key: bytes, rng: tuple[bytes, bytes]) -> bool:
    return rng[0] <= key < rng[1]


def make_v1(store: Store, name: str, rows: int = 50) -> None:
    conn = connect_v1(name, store)
    conn.execute("CREATE TABLE t(x)")
    with conn:
        conn.executemany("INSERT INTO t VALUES (?)", [(f"row {i}",) for i in range(rows)])
    conn.close()


def make_v2(store: Store, name: str, rows: int = 50) -> None:
    engine = Engine(store)
    conn = connect_v2(name, engine)
    conn.execute("CREATE TABLE t(x)")
    for i in range(3):  # a few deltas
        with conn:
            conn.executemany("INSERT INTO t VALUES (?)", [(f"{i} row {j}",) for j in range(rows)])
    conn.close()


def test_inspect_json_matches_the_engine(work: Workdir, source_small: Path) -> None:
    assert work.run("import", "--no-compact", str(source_small), "db").code == 0
    with EmbeddedStore(work.store) as store:
        make_v2(store, "db")  # takes it over and adds deltas on top of the import
    result = work.run("inspect", "--json", "db")
    assert result.code == 0, result.err
    report = json.loads(result.out)
    with EmbeddedStore(work.store) as store:
        head = Engine(store).head("db")
        keys = store_keys(store)
    expected = dataclasses.asdict(head)
    expected["last_commit_id"] = head.last_commit_id.hex()
    assert report["head"] == expected
    assert report["format"] == "v2"
    assert report["size_bytes"] == head.db_size_pages * 4096
    assert report["compaction_lag"] == {
        "txids": head.head_txid - head.materialized_txid,
        "deltas": head.delta_count,
        "bytes": head.delta_bytes,
    }
    mine = {k: v for k, v in keys.items() if in_range(k, DbKeys("db").all_range())}
    assert report["keys"]["total_bytes"] == sum(len(k) + len(v) for k, v in mine.items())
    assert report["accounting_ok"] is True
    assert report["keys"]["deltas"]["objects"] == head.delta_count >= 4
    assert report["keys"]["delta_directory"]["keys"] == head.delta_count
    assert report["keys"]["pidx"]["keys"] == len(
        [k for k in mine if k[len(DbKeys("db").prefix)] == ord("P")]
    )


def test_compact_folds_every_delta_and_inspect_shows_it(work: Workdir, source_small: Path) -> None:
    assert work.run("import", "--no-compact", str(source_small), "db").code == 0
    before = json.loads(work.run("inspect", "--json", "db").out)
    assert before["compaction_lag"]["deltas"] == 1
    result = work.run("compact", "db")
    assert result.code == 0, result.err
    assert result.out.startswith("compacted 'db' in ")
    assert "live deltas 1 -> 0" in result.out
    after = json.loads(work.run("inspect", "--json", "db").out)
    assert after["compaction_lag"] == {"txids": 0, "deltas": 0, "bytes": 0}
    assert after["keys"]["shards"]["objects"] == -(-before["head"]["db_size_pages"] // 64)
    assert after["accounting_ok"] is True
    text = work.run("inspect", "db").out
    assert "compaction lag  0 txids" in text and "keys add up to storage used" in text


def test_list_shows_every_database_of_both_formats(work: Workdir, source_small: Path) -> None:
    assert work.run("import", str(source_small), "imported").code == 0
    with EmbeddedStore(work.store) as store:
        make_v1(store, "legacy")
        make_v2(store, "fresh")
    result = work.run("list", "--json")
    assert result.code == 0, result.err
    listed = {(e["name"], e["format"]): e for e in json.loads(result.out)}
    assert set(listed) == {("imported", "v2"), ("legacy", "v1"), ("fresh", "v2")}
    assert listed[("imported", "v2")]["size_bytes"] == source_small.stat().st_size
    assert all(e["complete"] for e in listed.values())
    assert listed[("legacy", "v1")]["size_bytes"] % 4096 == 0
    text = work.run("list").out.splitlines()
    assert text[0].split() == ["NAME", "FORMAT", "SIZE", "STORED"]
    assert [line.split()[0] for line in text[1:]] == ["fresh", "imported", "legacy"]


def test_list_of_an_empty_store(work: Workdir) -> None:
    work.store.mkdir()
    assert work.run("list").out == f"no databases in {work.store}\n"
    assert work.run("list", "--json").out == "[]\n"


def test_delete_removes_every_key_of_the_database_and_nothing_else(
    work: Workdir, source_small: Path
) -> None:
    for name in ("orders", "orders2", "order"):
        assert work.run("import", str(source_small), name).code == 0
    with EmbeddedStore(work.store) as store:
        make_v1(store, "orders")  # the same name in the other format goes too
        make_v1(store, "orders.old")
        before = store_keys(store)
    result = work.run("delete", "--yes", "orders")
    assert result.code == 0, result.err
    assert result.out.startswith("deleted 'orders' (v2): ")
    assert "deleted 'orders' (v1): " in result.out
    with EmbeddedStore(work.store) as store:
        after = store_keys(store)
    gone = {
        k
        for k in before
        if in_range(k, DbKeys("orders").all_range()) or in_range(k, v1_range("orders"))
    }
    assert gone, "the database had keys"
    assert after == {k: v for k, v in before.items() if k not in gone}
    names = {(e.name, e.format) for e in list_databases(EmbeddedStore(work.store))}
    assert names == {("orders2", "v2"), ("order", "v2"), ("orders.old", "v1")}


@pytest.mark.parametrize("victim", ["a", "a b", "ab", "a\u00e9"])
def test_delete_spares_names_that_share_a_prefix_in_key_bytes(victim: str) -> None:
    store = MemoryStore()
    names = ["a", "a b", "a!", "ab", "a\u00e9", "aa", "!"]
    for name in names:
        make_v2(store, name, rows=5)
        make_v1(store, name, rows=5)
    before = store.dump()
    for fmt in ("v2", "v1"):
        delete_database(store, victim, fmt)
    after = store.dump()
    mine = {k for k in before if decode_db_prefix(k)[1] == victim}  # the name in the key
    assert {decode_db_prefix(k)[0] for k in mine} == {FORMAT_V1, FORMAT_V2}
    assert after == {k: v for k, v in before.items() if k not in mine}
    assert {(e.name, e.format) for e in list_databases(store)} == {
        (n, f) for n in names if n != victim for f in ("v1", "v2")
    }


def test_delete_works_in_bounded_transactions(source_small: Path, tmp_path: Path) -> None:
    store = MemoryStore()
    make_v2(store, "db", rows=2000)
    keys = len([k for k in store.dump() if k.startswith(DbKeys("db").prefix)])
    result = delete_database(store, "db", "v2")
    assert result.keys == keys
    assert result.transactions >= 1 + keys // 100
    assert not [k for k in store.dump() if k.startswith(DbKeys("db").prefix)]


def test_delete_asks_on_a_terminal(work: Workdir, source_small: Path) -> None:
    assert work.run("import", str(source_small), "db").code == 0
    code, text = work.answer("delete", "db", prompt="This cannot be undone. [y/N]", reply="n")
    assert code == 1 and "not deleted" in text
    assert "db" in work.run("list").out
    code, text = work.answer("delete", "db", prompt="[y/N]", reply="y")
    assert code == 0 and "deleted 'db' (v2)" in text
    assert work.run("list").out.startswith("no databases")


def test_v1_databases_are_inspected_exported_and_opened_in_the_shell(work: Workdir) -> None:
    work.store.mkdir()
    with EmbeddedStore(work.store) as store:
        make_v1(store, "legacy", rows=300)
    report = json.loads(work.run("inspect", "--json", "legacy").out)
    assert report["format"] == "v1"
    assert report["files"]["db"] == report["size_bytes"] > 0
    assert "(v1)" in work.run("inspect", "legacy").out
    exported = work.run("export", "--format", "v1", "--check", "legacy", "legacy.db")
    assert exported.code == 0, exported.err
    conn = sqlite3.connect(work.path / "legacy.db")
    assert conn.execute("SELECT count(*) FROM t").fetchone() == (300,)
    conn.close()
    shell = work.run("shell", "--format", "v1", "legacy", "SELECT count(*) FROM t")
    assert (shell.code, shell.out) == (0, "300\n")
    missing = work.run("export", "--format", "v1", "nothing", "n.db")
    assert missing.code == 1 and "database 'nothing' does not exist" in missing.err
