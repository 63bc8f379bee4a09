"""A store that lost acknowledged commits (restored from an older copy, or a head rewritten
to an older one) is reported as ``StoreRewound`` ("from txid X back to Y"), by the engine
that had acknowledged them and by the connection itself; never as a takeover."""

from __future__ import annotations

import apsw
import pytest
from vfs_support import rows

import sqlkv
from sqlkv.engine import Engine
from sqlkv.engine.keys import DbKeys
from sqlkv.engine.rewind import AckedHeads
from sqlkv.errors import ConnectionFenced, StoreRewound
from sqlkv.server.codec import Reader, Writer
from sqlkv.server.codes import read_error, write_error
from sqlkv.store import MemoryStore, Store


def meta(store: Store, db: str) -> bytes:
    raw = store.transact(lambda tr: tr.get(DbKeys(db).meta))
    assert raw is not None
    return raw


def set_meta(store: Store, db: str, raw: bytes) -> None:
    store.transact(lambda tr: tr.set(DbKeys(db).meta, raw))


def committed(n: int, conn: apsw.Connection) -> None:
    for i in range(n):
        conn.execute("INSERT INTO t VALUES (?, randomblob(3000))", (i,))


@pytest.mark.parametrize("engine_saw_it", [True, False], ids=["engine", "client"])
def test_restored_older_snapshot_is_reported_as_lost_commits(engine_saw_it: bool) -> None:
    store = MemoryStore()
    engine = Engine(store)
    conn = sqlkv.connect("db", engine=engine)
    conn.execute("CREATE TABLE t(n INTEGER, v BLOB)")
    committed(3, conn)
    older = store.snapshot_state()
    old_txid = conn.sqlkv_head().head_txid
    committed(5, conn)
    acked = conn.sqlkv_head().head_txid
    store.restore_state(older)  # the store went back in time under a live connection
    if not engine_saw_it:
        engine.acked = AckedHeads()  # as after an engine restart: only the client knows
    with pytest.raises(apsw.IOError) as lost:
        conn.execute("INSERT INTO t VALUES (99, 'x')")
    assert isinstance(lost.value, StoreRewound)
    assert not isinstance(lost.value, ConnectionFenced)
    assert f"from txid {acked} back to {old_txid}" in str(lost.value)
    assert "durability" in str(lost.value)
    with pytest.raises(StoreRewound):  # the connection stays dead
        conn.execute("SELECT count(*) FROM t").fetchall()
    conn.close()
    fresh = sqlkv.connect("db", engine=engine)  # what the store holds now
    assert rows(fresh, "SELECT count(*) FROM t") == [(3,)]
    fresh.close()


def test_head_rewritten_to_an_older_copy_is_reported(store: Store) -> None:
    """On every driver (PostgreSQL included): META rewritten to an older copy."""
    engine = Engine(store)
    conn = sqlkv.connect("db", engine=engine)
    conn.execute("CREATE TABLE t(n INTEGER, v BLOB)")
    committed(2, conn)
    older = meta(store, "db")
    committed(4, conn)
    set_meta(store, "db", older)
    with pytest.raises(StoreRewound) as lost:
        conn.execute("INSERT INTO t VALUES (99, 'x')")
    assert "back to" in str(lost.value)
    conn.close()


def test_engine_reports_a_rewind_once_then_serves_what_the_store_holds() -> None:
    store = MemoryStore()
    engine = Engine(store)
    head = engine.open("db").head
    older = store.snapshot_state()
    done = engine.commit("db", head.generation, head.head_txid, {1: bytes(4096)}, 1).head
    store.restore_state(older)
    with pytest.raises(StoreRewound) as lost:
        engine.get_pages("db", head.generation, [1])
    assert (lost.value.acknowledged_txid, lost.value.found_txid) == (
        done.head_txid,
        head.head_txid,
    )
    assert engine.head("db").head_txid == head.head_txid  # reported once, then adopted


def test_takeover_is_still_a_fence_not_a_rewind() -> None:
    engine = Engine(MemoryStore())
    first = sqlkv.connect("db", engine=engine)
    first.execute("CREATE TABLE t(n)")
    second = sqlkv.connect("db", engine=engine)
    second.execute("INSERT INTO t VALUES (1)")
    with pytest.raises(ConnectionFenced) as fenced:
        first.execute("INSERT INTO t VALUES (2)")
    assert not isinstance(fenced.value, StoreRewound)
    first.close()
    second.close()


def test_store_rewound_crosses_the_wire_with_its_fields() -> None:
    w = Writer()
    write_error(w, StoreRewound("orders", 12, 7))
    back = read_error(Reader(w.getvalue()))
    assert isinstance(back, StoreRewound)
    assert (back.name, back.acknowledged_txid, back.found_txid) == ("orders", 12, 7)
    assert "from txid 12 back to 7" in str(back)


def test_a_read_older_than_a_commit_acknowledged_while_it_ran_is_not_a_rewind() -> None:
    engine = Engine(MemoryStore())
    head = engine.open("db").head
    acked = AckedHeads()
    since = acked.now()  # a read begins here...
    newer = engine.commit("db", head.generation, head.head_txid, {1: bytes(4096)}, 1).head
    acked.ack("db", newer)  # ...a commit lands and is acknowledged while it runs
    acked.check("db", head, since=since)  # its older snapshot is fine
    with pytest.raises(StoreRewound):
        acked.check("db", head, since=acked.now())  # a read that began after it is not
