"""The retention window (docs/history.md §5): every committed txid inside it stays readable
while compaction keeps folding; accounting stays exact; shortening the window frees the
history at the next compaction. Plus a differential test against plain SQLite: a workload
keeps a copy of a plain SQLite database after every commit, and the state read back at
random txids (the whole file assembled with ``read_at``) holds exactly the copy's rows.
"""

from __future__ import annotations

import random
import time

import apsw
import pytest
from engine_support import Owner, check_invariants, db_rows, page_of
from test_history import Recorder, check_past

import sqlkv
from sqlkv.engine import Engine, EngineConfig
from sqlkv.engine.keys import DbKeys
from sqlkv.store import MemoryStore

HISTORY_TAGS = {ord(t) for t in "UVG"}


def history_keys(store: object, name: str = "db") -> int:
    prefix = len(DbKeys(name).prefix)
    return sum(1 for k in db_rows(store, name) if k[prefix] in HISTORY_TAGS)  # type: ignore[arg-type]


def churn(rec: Recorder, engine: Engine, rng: random.Random, steps: int) -> None:
    for step in range(steps):
        size = rec.owner.size
        roll = rng.random()
        if roll < 0.08 and size > 8:
            rec.commit({}, size=rng.randint(1, size))
        elif roll < 0.3:
            engine.compact("db")
        elif roll < 0.36:
            rec.stage_commit([{rng.randint(1, 200): page_of(step * 977 + k)} for k in range(4)])
        else:
            pgnos = {rng.randint(1, 200) for _ in range(rng.randint(1, 20))}
            rec.commit({p: page_of(step * 977 + p) for p in pgnos})


def test_every_txid_in_the_window_stays_readable_across_compaction(
    owner: Owner, engine: Engine
) -> None:
    engine.set_retention("db", 3600)
    rec = Recorder(owner)
    churn(rec, engine, random.Random(1), 60)
    engine.compact_until_done("db")
    check_invariants(engine.store, "db")
    assert history_keys(engine.store) > 0
    for txid in rec.states:
        check_past(engine, rec, txid, must=True)
    fresh = Engine(engine.store)  # a new process answers the same
    for txid in sorted(rec.states)[::5]:
        check_past(fresh, rec, txid, must=True)


def test_random_workloads_with_retention_read_every_state_exactly() -> None:
    for seed in range(4):
        rng = random.Random(seed)
        mem = MemoryStore()
        engine = Engine(mem, EngineConfig(part_pages=8, retention_s=3600))
        rec = Recorder(Owner.open(engine, "db"))
        for _ in range(5):
            churn(rec, engine, rng, 15)
            for txid in rng.sample(sorted(rec.states), min(6, len(rec.states))):
                check_past(engine, rec, txid, must=True)
            check_invariants(mem, "db")


def test_shortening_the_window_frees_the_history(owner: Owner, engine: Engine) -> None:
    engine.set_retention("db", 3600)
    rec = Recorder(owner)
    churn(rec, engine, random.Random(2), 50)
    engine.compact_until_done("db")
    retained = engine.head("db").storage_used
    assert history_keys(engine.store) > 0
    assert engine.retention("db") == 3600
    assert engine.set_retention("db", 0) == 0
    time.sleep(0.002)
    engine.compact_until_done("db")
    head = check_invariants(engine.store, "db")
    assert history_keys(engine.store) == 0
    assert head.storage_used < retained
    owner.assert_reads_back()
    # past states are now what compaction left: exact or SnapshotTooOld, never wrong
    for txid in rec.states:
        check_past(engine, rec, txid, must=txid == owner.head_txid)


def test_the_window_is_set_at_creation_and_counts_in_storage(mem: MemoryStore) -> None:
    engine = Engine(mem, EngineConfig(retention_s=86_400))
    owner = Owner.open(engine, "db")
    assert engine.retention("db") == 86_400
    check_invariants(mem, "db")
    owner.commit({1: page_of(1)})
    assert Engine(mem).retention("db") == 86_400  # stored in the database, not the engine
    assert Engine(mem).retention("db") == engine.retention("db")


def test_a_window_outside_its_range_is_refused(owner: Owner, engine: Engine) -> None:
    from sqlkv.errors import InvalidRequest

    with pytest.raises(InvalidRequest, match="outside"):
        engine.set_retention("db", -1)
    with pytest.raises(InvalidRequest, match="number of seconds"):
        engine.set_retention("db", "1h")  # type: ignore[arg-type]


# ---------------------------------------------------------------------- against SQLite


def _assemble(engine: Engine, name: str, txid: int) -> bytes:
    snap = engine.snapshot(name, at=txid)
    pgnos = list(range(1, snap.db_size_pages + 1))
    pages = engine.read_at(name, txid, pgnos).pages if pgnos else {}
    return b"".join(pages[p] or b"" for p in pgnos)


def _dump(image: bytes) -> list[tuple[object, ...]]:
    conn = apsw.Connection(":memory:")
    if image:
        conn.deserialize("main", image)
    rows: list[tuple[object, ...]] = []
    tables = [r[0] for r in conn.execute("select name from sqlite_schema where type='table'")]
    for table in sorted(tables):
        rows.append(("table", table))
        rows.extend(conn.execute(f"select * from {table} order by rowid"))
    assert conn.execute("pragma integrity_check").fetchall() == [("ok",)]
    return rows


def test_states_read_at_random_txids_equal_a_plain_sqlite_copy(tmp_path: object) -> None:
    rng = random.Random(15)
    mem = MemoryStore()
    engine = Engine(mem, EngineConfig(retention_s=3600))
    conn = sqlkv.connect("diff", engine=engine)
    plain = apsw.Connection(":memory:")
    copies: dict[int, list[tuple[object, ...]]] = {}
    statements = [
        "create table t(id integer primary key, v text, n int)",
        "create index t_n on t(n)",
    ]
    for i in range(120):
        kind = rng.random()
        if kind < 0.5:
            rows = ", ".join(
                f"({rng.randint(1, 5000)}, '{'x' * rng.randint(1, 900)}', {rng.randint(1, 99)})"
                for _ in range(rng.randint(1, 30))
            )
            statements.append(f"insert or replace into t values {rows}")
        elif kind < 0.7:
            statements.append(f"update t set v = v || 'y' where n = {rng.randint(1, 99)}")
        elif kind < 0.85:
            statements.append(f"delete from t where n < {rng.randint(1, 40)}")
        elif kind < 0.9:
            statements.append("vacuum")
        else:
            statements.append(f"create table if not exists s{i % 4}(a)")
    for n, sql in enumerate(statements):
        conn.execute(sql)
        plain.execute(sql)
        copies[engine.head("diff").head_txid] = _dump(plain.serialize("main") or b"")
        if n % 9 == 0:
            engine.compact("diff")
    conn.close()
    engine.compact_until_done("diff")
    check_invariants(mem, "diff")
    txids = sorted(copies)
    for txid in [*rng.sample(txids, 40), txids[0], txids[-1]]:
        assert _dump(_assemble(engine, "diff", txid)) == copies[txid], f"txid {txid}"
