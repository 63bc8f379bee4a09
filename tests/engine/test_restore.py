"""Engine.restore (engine/restore.py): a past state becomes the newest commit; the owner
is fenced out; the state before stays restorable; shrinks and growth in between; a large
restore is staged; a state no longer retained is refused — on every driver."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from engine_support import EngineFactory, Owner, check_invariants, database_state, page_of

from sqlkv.engine import Engine
from sqlkv.engine.restore import READ_BATCH
from sqlkv.errors import DatabaseNotFound, FenceMismatch
from sqlkv.store import MemoryStore, Store


def _state(engine: Engine, name: str = "db") -> tuple[int, dict[int, bytes]]:
    return database_state(engine, name, engine.head(name).generation)


def _exact(store: Store, name: str = "db") -> None:
    from engine_support import stored_bytes

    assert check_invariants(store, name).storage_used == stored_bytes(store, name)


def test_restore_makes_a_past_state_the_newest_and_can_be_undone(
    store: Store, make_engine: EngineFactory
) -> None:
    owner = Owner.open(make_engine(), "db")
    owner.commit({p: page_of(p) for p in range(1, 101)})
    target = owner.head_txid
    at_target = _state(owner.engine)
    owner.commit({p: page_of(p + 500) for p in range(50, 150)})  # grows to 149
    owner.commit({3: page_of(3333)}, size=60)  # shrinks below the target's size
    latest = _state(owner.engine)

    engine = make_engine()
    out = engine.restore("db", target)
    assert (out.target_txid, out.before_txid) == (target, owner.head_txid)
    assert out.head.head_txid == owner.head_txid + 1 and out.db_size_pages == 100
    assert _state(engine) == at_target
    _exact(store)
    with pytest.raises(FenceMismatch):  # the owner before the restore is fenced out
        owner.commit({4: page_of(4)})

    undo = engine.restore("db", out.before_txid)
    assert _state(engine) == latest and undo.target_txid == out.before_txid
    _exact(store)


def test_restore_to_a_label_and_to_a_time(store: Store, make_engine: EngineFactory) -> None:
    engine = make_engine()
    owner = Owner.open(engine, "db")
    owner.commit({1: page_of(1), 2: page_of(2)})
    engine.label("db", "good")
    at_label = _state(engine)
    committed = engine.history("db", limit=1)[0].committed_ms
    time.sleep(0.01)  # the next commit gets a later commit time
    owner.commit({1: page_of(11)})
    engine.restore("db", "good")
    assert _state(engine) == at_label
    owner.reopen()
    owner.commit({2: page_of(22)})
    engine.restore("db", datetime.fromtimestamp((committed + 1) / 1000, UTC))
    assert _state(engine) == at_label
    _exact(store)


def test_with_a_retention_window_compacted_states_are_restored_and_forked(
    store: Store, make_engine: EngineFactory
) -> None:
    engine = make_engine(retention_s=3600)
    owner = Owner.open(engine, "db")
    owner.commit({p: page_of(p) for p in range(1, 151)})
    target, at_target = owner.head_txid, _state(engine)
    owner.commit({p: page_of(-p) for p in range(60, 200)})
    engine.compact_until_done("db")
    owner.commit({5: page_of(555)}, size=100)
    engine.compact_until_done("db")
    engine.fork("db", "copy", at=target)
    assert _state(engine, "copy") == at_target
    assert engine.retention("copy") == engine.retention("db") == 3600
    engine.restore("db", target)
    assert _state(engine) == at_target
    _exact(store)
    _exact(store, "copy")


def test_a_large_restore_is_staged_and_atomic(mem: MemoryStore) -> None:
    engine = Engine(mem)
    owner = Owner.open(engine, "db")
    n = READ_BATCH * 2 + 10
    owner.commit({p: page_of(p) for p in range(1, 1001)})
    owner.commit({p: page_of(p) for p in range(1001, n + 1)})
    target = owner.head_txid
    at_target = _state(engine)
    for first in range(1, n + 1, 1000):
        owner.commit({p: page_of(-p) for p in range(first, min(n, first + 999) + 1)})
    with mem.recording() as ops:
        out = engine.restore("db", target)
    names = [op.point for op in ops]
    assert names.count("stage.apply") == 3 and names.count("finalize.apply") == 1
    assert "commit.apply" not in names
    assert out.pages_written == n
    assert _state(engine) == at_target
    _exact(mem)


def test_restore_of_a_missing_database_creates_nothing(engine: Engine) -> None:
    with pytest.raises(DatabaseNotFound):
        engine.restore("nothing", 1)
    with pytest.raises(DatabaseNotFound):
        engine.head("nothing")
