"""Restore and fork against plain SQLite: a random workload runs on sqlkv and on an
in-memory SQLite oracle, and a serialized copy of the oracle is kept after every commit,
by txid. For random txids, ``restore`` makes the live database equal to that copy
(contents and ``.dump``), and ``fork(at=txid)`` gives a database equal to it that then
evolves on its own while the source stays as it was."""

from __future__ import annotations

import random

import apsw
import pytest
from engine_support import check_invariants, stored_bytes

from sqlkv.engine import Engine, EngineConfig
from sqlkv.store import MemoryStore
from sqlkv.vfs.v2 import connect_v2
from sqlkv.workloads import dump, integrity_ok

NAME = "live"


Tx = list[tuple[str, tuple[object, ...]]]


def _statements(rng: random.Random, n: int) -> list[Tx]:
    """``n`` transactions of a few statements with values drawn here (so both sides get the
    same ones): inserts, updates, deletes, a new table, a dropped table and a VACUUM (which
    shrinks the file)."""
    out: list[Tx] = [[("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT, n INTEGER)", ())]]
    tables = ["t"]
    for i in range(n):
        kind = rng.random()
        if kind < 0.05 and len(tables) < 4:
            tables.append(f"u{i}")
            blob = rng.randbytes(3000)
            out.append([(f"CREATE TABLE u{i}(x)", ()), (f"INSERT INTO u{i} VALUES (?)", (blob,))])
        elif kind < 0.08 and len(tables) > 1:
            out.append([(f"DROP TABLE {tables.pop()}", ())])
        elif kind < 0.1:
            out.append([("VACUUM", ())])
        elif kind < 0.35:
            out.append([("DELETE FROM t WHERE id % ? = ?", (rng.randint(3, 9), rng.randint(0, 2)))])
        elif kind < 0.55:
            out.append([("UPDATE t SET n = n + 1, v = v || 'x' WHERE id % 5 = ?", (i % 5,))])
        else:
            size = rng.choice([10, 200, 1500])
            out.append(
                [
                    ("INSERT INTO t(v, n) VALUES (?, ?)", (rng.randbytes(size).hex(), j))
                    for j in range(rng.randint(1, 60))
                ]
            )
    return out


def _run(conn: apsw.Connection, tx: Tx) -> None:
    if tx[0][0] == "VACUUM":
        conn.execute("VACUUM")
        return
    with conn:
        for sql, params in tx:
            conn.execute(sql, params)


class History:
    """The live database and its oracle, with a serialized oracle copy per txid."""

    def __init__(self, engine: Engine, seed: int, n: int, compact_every: int = 0) -> None:
        self.engine = engine
        self.conn = connect_v2(NAME, engine)
        self.oracle = apsw.Connection(":memory:")
        self.copies: dict[int, bytes] = {}
        for i, tx in enumerate(_statements(random.Random(seed), n), 1):
            self.step(tx)
            if compact_every and i % compact_every == 0:
                engine.compact_until_done(NAME)  # folds: the window keeps every state

    def step(self, tx: Tx) -> None:
        _run(self.conn, tx)
        _run(self.oracle, tx)
        self.copies[self.conn.sqlkv_head().head_txid] = self.oracle.serialize("main")


def _oracle_at(copy: bytes) -> apsw.Connection:
    conn = apsw.Connection(":memory:")
    conn.deserialize("main", copy)
    return conn


@pytest.mark.parametrize(
    ("seed", "retained"), [(1, False), (2, False), (3, True), (4, True)], ids=str
)
def test_restore_and_fork_at_random_txids_equal_the_sqlite_copies(
    seed: int, retained: bool
) -> None:
    """Without a retention window nothing is compacted (every delta is kept); with one,
    compaction folds every few commits and the window keeps the states readable."""
    mem = MemoryStore()
    engine = Engine(mem, EngineConfig(retention_s=3600 if retained else 0))
    h = History(engine, seed, 40, compact_every=4 if retained else 0)
    rng = random.Random(seed * 7)
    txids = sorted(h.copies)
    for i, txid in enumerate(rng.sample(txids[:-1], 4)):
        want = dump(_oracle_at(h.copies[txid]))
        live_before = dump(h.conn)

        # fork at txid: equal to the copy, then evolves on its own
        fork = f"fork{i}"
        engine.fork(NAME, fork, at=txid)
        fconn = connect_v2(fork, Engine(mem))
        assert dump(fconn) == want and integrity_ok(fconn)
        oracle = _oracle_at(h.copies[txid])
        tx: Tx = [
            ("INSERT INTO t(v, n) VALUES ('only in the fork', 1)", ()),
            ("DELETE FROM t WHERE id = 3", ()),
        ]
        _run(fconn, tx)
        _run(oracle, tx)
        assert dump(fconn) == dump(oracle)
        assert dump(h.conn) == live_before  # the source did not move
        fconn.close()
        check_invariants(mem, fork)
        assert engine.head(fork).storage_used == stored_bytes(mem, fork)

        # restore to txid: the live database becomes the copy (a new owner sees it)
        h.conn.close()
        out = engine.restore(NAME, txid)
        assert out.target_txid == txid and out.head.head_txid > out.before_txid
        h.conn = connect_v2(NAME, engine)
        assert dump(h.conn) == want and integrity_ok(h.conn)
        check_invariants(mem, NAME)
        assert engine.head(NAME).storage_used == stored_bytes(mem, NAME)
        # ... and keeps working: more commits on top of the restored state
        h.oracle = _oracle_at(h.copies[txid])
        h.step([("INSERT INTO t(v, n) VALUES ('after the restore', 2)", ())])
        assert dump(h.conn) == dump(h.oracle)
    h.conn.close()
