"""``connect(at=txid)`` against plain SQLite: a writer mirrors every transaction on a plain
SQLite database and records its rows and ``.dump`` after each commit; a connection opened
at a random txid returns exactly that copy's rows and dump (docs/read-replicas.md)."""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator
from typing import Any

import pytest
from history_fake import history_engine
from replicas_support import ROWS_SQL, SCHEMA, Oracle, apply, digest, random_transaction

import sqlkv
import sqlkv.dbapi2 as dbapi2
from sqlkv.errors import SnapshotTooOld


@pytest.fixture(params=["fake", "engine"])
def fake(request: pytest.FixtureRequest) -> Iterator[Any]:
    engine = history_engine(request.param)
    yield engine
    engine.close()


def _record(fake: Any, seed: int) -> Oracle:
    """A random workload on ``db`` mirrored on plain SQLite, recorded after each commit."""
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
    w.close()
    return oracle


def _equal_to_copy(fake: Any, txid: int, oracle: Oracle) -> None:
    with contextlib.closing(dbapi2.connect("db", engine=fake, at=txid)) as past:
        assert digest(past.execute(ROWS_SQL)) == oracle.digests[txid], txid
        assert list(past.iterdump()) == oracle.dumps[txid], txid
        assert past.execute("PRAGMA integrity_check").fetchall() == [("ok",)]


@pytest.mark.parametrize("seed", [1, 2])
def test_connect_at_txid_equals_the_plain_sqlite_copy(fake: Any, seed: int) -> None:
    oracle = _record(fake, seed)
    for txid in random.Random(seed).sample(sorted(oracle.dumps), 15):
        _equal_to_copy(fake, txid, oracle)


@pytest.mark.parametrize("fake", ["engine"], indirect=True)
def test_after_compaction_a_past_state_is_the_copy_or_snapshot_too_old(fake: Any) -> None:
    oracle = _record(fake, 3)
    fake.engine.compact_until_done("db")
    outcomes = {"equal": 0, "too old": 0}
    for txid in sorted(oracle.dumps):
        try:
            _equal_to_copy(fake, txid, oracle)
            outcomes["equal"] += 1
        except SnapshotTooOld:
            outcomes["too old"] += 1
    assert outcomes["equal"] >= 1  # the head at least; never a wrong state
