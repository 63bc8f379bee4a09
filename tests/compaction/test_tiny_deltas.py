"""Compaction of many tiny deltas (docs/hot-path.md "Compaction of tiny deltas"): a pass is
two planning reads and one apply, the dead deltas go as one range, the owner's engine
applies on its newest META without a failed guard, and the coordinator runs passes only
while the database is due."""

from __future__ import annotations

import pytest
from compaction_support import Db, page

import sqlkv.engine.engine as engine_module
from sqlkv.engine import Engine, EngineConfig
from sqlkv.engine.compaction import CompactionConfig, CompactionCoordinator
from sqlkv.store import MemoryStore, Transaction


def tiny_commits(db: Db, n: int, first: int = 0) -> None:
    for i in range(first, first + n):
        db.commit({1: page(i, 1), 2 + i % 3: page(i, 2 + i % 3)})


def test_a_pass_over_tiny_deltas_is_two_reads_and_one_apply(
    mem_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = Db(mem_engine)
    db.commit({p: page(0, p) for p in range(1, 100)})
    mem_engine.compact_until_done("db")
    tiny_commits(db, 40)
    ranges: list[tuple[bytes, bytes]] = []
    clear_range = Transaction.clear_range

    def counted(self: Transaction, begin: bytes, end: bytes) -> None:
        ranges.append((begin, end))
        clear_range(self, begin, end)

    monkeypatch.setattr(Transaction, "clear_range", counted)
    store = mem_engine.store
    assert isinstance(store, MemoryStore)
    with store.recording() as ops:
        out = mem_engine.compact("db")
    assert [op.point for op in ops] == ["compact.read_meta", "compact.read_delta", "compact.apply"]
    assert out.deltas_deleted == 40 and out.head.delta_count == 0
    prefix = mem_engine.keys("db").prefix
    deltas = [r for r in ranges if r[0][len(prefix) : len(prefix) + 1] == b"D"]
    assert len(deltas) == 1, "the 40 dead deltas go as one range"
    db.head = out.head
    assert db.head.storage_used == db.stored()
    db.check()


def test_the_owners_pass_applies_on_its_newest_meta_without_a_failed_guard(
    mem_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Commits landing between the plan and the apply: the apply takes their META from the
    engine and the PIDX rows they rewrote from its map, so it lands in one operation."""
    db = Db(mem_engine)
    db.commit({p: page(0, p) for p in range(1, 100)})
    tiny_commits(db, 20)
    plan_pass = engine_module.plan_pass
    racing = [3]

    def plan_then_commit(*args: object, **kw: object) -> object:
        plan = plan_pass(*args, **kw)  # type: ignore[arg-type]
        if racing:
            tiny_commits(db, racing.pop(), first=100)  # rewrites pages 1..4, folded here
        return plan

    absorbed: list[bytes] = []
    absorb = engine_module.absorb
    monkeypatch.setattr(engine_module, "plan_pass", plan_then_commit)
    monkeypatch.setattr(
        engine_module, "absorb", lambda k, p, s, f: absorbed.append(f.key) or absorb(k, p, s, f)
    )
    out = mem_engine.compact("db")
    assert not racing and out.changed and absorbed == []
    db.head = mem_engine.head("db")
    assert db.head.storage_used == db.stored()
    db.check()
    db.head = mem_engine.compact_until_done("db")
    assert db.head.delta_count == 0
    db.check()


def test_tiny_deltas_wait_for_the_count_limit_large_ones_do_not() -> None:
    engine = Engine(MemoryStore(), EngineConfig(max_live_deltas=50))
    head = engine.open("db").head
    coordinator = CompactionCoordinator(engine, CompactionConfig())
    try:
        tiny = head.with_changes(delta_count=20, delta_bytes=20 * 400)
        large = head.with_changes(delta_count=20, delta_bytes=20 * 40_000)
        assert not coordinator.due(tiny) and coordinator.due(large)
        # the limit is capped at half the back-pressure limit (50 // 2)
        assert coordinator.due(head.with_changes(delta_count=25, delta_bytes=25 * 400))
        assert coordinator.due(head.with_changes(delta_count=1, delta_bytes=4 << 20))
    finally:
        coordinator.close()
        engine.close()


def test_commits_wake_passes_while_due_and_the_idle_timer_drains() -> None:
    config = CompactionConfig(idle_seconds=3600)  # the drain is scheduled by hand below
    engine = Engine(MemoryStore(), EngineConfig(), compaction=config)
    try:
        db = Db(engine)
        db.commit({p: page(0, p) for p in range(1, 20)})
        tiny_commits(db, 40)
        assert engine.compactor is not None and engine.compactor.wait_idle(30)
        head = engine.head("db")
        assert 1 <= head.fold_epoch <= 3, "a few passes, not one per commit"
        assert head.delta_count < 32
        tiny_commits(db, 5, first=40)  # not due: no pass
        assert engine.compactor.wait_idle(30)
        assert engine.head("db").delta_count == head.delta_count + 5
        engine.compactor.schedule("db", drain=True)  # what the idle timer does
        assert engine.compactor.wait_idle(30)
        db.head = engine.head("db")
        assert db.head.delta_count == 0, "the idle timer's run folds every live delta"
        db.check()
    finally:
        engine.close()


def test_a_rerun_woken_during_a_pass_runs_no_pass_once_the_database_is_not_due() -> None:
    """Commits landing during a pass wake the worker again; the pass may have folded them,
    and a pass over the few left would double the passes per commit."""
    config = CompactionConfig(idle_seconds=3600)
    engine = Engine(MemoryStore(), EngineConfig(), compaction=config)
    try:
        db = Db(engine)
        db.commit({p: page(0, p) for p in range(1, 20)})
        tiny_commits(db, 5)
        assert engine.compactor is not None and engine.compactor.wait_idle(30)
        before = engine.head("db")
        engine.compactor.schedule("db")  # what a commit's wake-up during a pass leaves
        assert engine.compactor.wait_idle(30)
        after = engine.head("db")
        assert after.fold_epoch == before.fold_epoch and after.delta_count == 6
    finally:
        engine.close()
