"""``connect(at=txid)`` against plain SQLite: a writer mirrors every transaction on a plain
SQLite database and records its rows and ``.dump`` after each commit; a connection opened
at a random txid returns exactly that copy's rows and dump (docs/read-replicas.md)."""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator

import pytest
from history_fake import HistoryFake
from replicas_support import ROWS_SQL, SCHEMA, Oracle, apply, digest, random_transaction

import sqlkv
import sqlkv.dbapi2 as dbapi2


@pytest.fixture
def fake() -> Iterator[HistoryFake]:
    engine = HistoryFake()
    yield engine
    engine.close()


@pytest.mark.parametrize("seed", [1, 2])
def test_connect_at_txid_equals_the_plain_sqlite_copy(fake: HistoryFake, seed: int) -> None:
    rng = random.Random(seed)
    oracle = Oracle()
    w = sqlkv.connect("db", engine=fake)
    for target in (w, oracle.conn):
        target.execute(SCHEMA)
    oracle.record(w.sqlkv_txid, dump=True)
    next_key = [0]
    for i in range(60):
        statements = random_transaction(rng, next_key)
        with w:
            apply(w.execute, statements)
        with oracle.conn:
            apply(oracle.conn.execute, statements)
        if i % 20 == 19:  # shrink the file, so later commits regrow over cut pages
            w.execute("DELETE FROM t WHERE k % 3 = 0")
            w.execute("VACUUM")
            oracle.conn.execute("DELETE FROM t WHERE k % 3 = 0")
            oracle.conn.commit()
        oracle.record(w.sqlkv_txid, dump=True)
    assert digest(w.execute(ROWS_SQL)) == oracle.digests[w.sqlkv_txid]
    for txid in rng.sample(sorted(oracle.dumps), 15):
        with contextlib.closing(dbapi2.connect("db", engine=fake, at=txid)) as past:
            assert digest(past.execute(ROWS_SQL)) == oracle.digests[txid], txid
            assert list(past.iterdump()) == oracle.dumps[txid], txid
            assert past.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    w.close()
