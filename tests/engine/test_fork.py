"""Engine.fork (engine/fork.py): DST gets SRC's state, then both evolve independently; DST
existing, a missing SRC, a concurrent create, SRC committing mid-fork, the quota, and the
accounting (a scan of the stored bytes) — on every driver."""

from __future__ import annotations

import pytest
from engine_support import (
    EngineFactory,
    Owner,
    check_invariants,
    database_state,
    db_rows,
    edit_head,
    page_of,
    stored_bytes,
)

from sqlkv.engine import Engine
from sqlkv.engine.keys import DbKeys
from sqlkv.errors import (
    DatabaseExists,
    DatabaseNotFound,
    ForkAborted,
    InvalidRequest,
    QuotaExceeded,
)
from sqlkv.store import Limits, MemoryStore, Store


def _history(owner: Owner) -> None:
    """Shards (compacted), deltas over them, and a shrink."""
    owner.commit({p: page_of(p) for p in range(1, 301)})
    owner.engine.compact_until_done(owner.name)
    owner.commit({p: page_of(p + 1000) for p in range(50, 260, 3)})
    owner.commit({7: page_of(77)}, size=280)


def _state(engine: Engine, name: str) -> tuple[int, dict[int, bytes]]:
    return database_state(engine, name, engine.head(name).generation)


def _exact(store: Store, name: str) -> None:
    head = check_invariants(store, name)
    assert head.storage_used == stored_bytes(store, name)


def test_fork_copies_the_state_and_both_then_evolve_independently(
    store: Store, make_engine: EngineFactory
) -> None:
    owner = Owner.open(make_engine(), "src")
    _history(owner)
    src_before = _state(owner.engine, "src")
    head = make_engine().fork("src", "dst")
    engine = make_engine()
    assert _state(engine, "dst") == src_before
    assert head.head_txid == owner.head_txid and head.delta_count == 0 and head.pidx_count == 0
    _exact(store, "dst")
    _exact(store, "src")

    fork = Owner.open(engine, "dst")
    fork.model, fork.size = dict(src_before[1]), src_before[0]
    fork.commit({1: page_of(-1), 400: page_of(-400)})
    owner.commit({2: page_of(-2)}, size=100)
    owner.assert_reads_back()
    fork.assert_reads_back()
    engine.compact_until_done("dst")
    owner.engine.compact_until_done("src")
    fork.assert_reads_back()
    owner.assert_reads_back()
    _exact(store, "dst")
    _exact(store, "src")


def test_a_fork_of_a_fork_and_of_an_empty_database(
    store: Store, make_engine: EngineFactory
) -> None:
    engine = make_engine()
    engine.open("empty")
    head = engine.fork("empty", "empty2")
    assert head.db_size_pages == 0 and _state(engine, "empty2") == (0, {})
    _exact(store, "empty2")
    owner = Owner.open(engine, "a")
    _history(owner)
    engine.fork("a", "b")
    engine.fork("b", "c")
    assert _state(engine, "c") == _state(engine, "a")
    _exact(store, "c")


def test_fork_refuses_an_existing_destination_and_a_missing_source(
    store: Store, make_engine: EngineFactory
) -> None:
    engine = make_engine()
    owner = Owner.open(engine, "src")
    owner.commit({1: page_of(1)})
    Owner.open(engine, "dst").commit({1: page_of(2)})
    before = db_rows(store, "dst")
    with pytest.raises(DatabaseExists, match="'dst' already exists"):
        engine.fork("src", "dst")
    assert db_rows(store, "dst") == before
    with pytest.raises(DatabaseNotFound):
        engine.fork("nothing", "new")
    with pytest.raises(InvalidRequest, match="into itself"):
        engine.fork("src", "src")
    assert db_rows(store, "new") == {}


def test_fork_removes_the_leftovers_of_an_interrupted_fork(
    store: Store, make_engine: EngineFactory
) -> None:
    engine = make_engine()
    owner = Owner.open(engine, "src")
    _history(owner)

    def crash_after_first_batch(done: int, total: int) -> None:
        if done:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        engine.fork("src", "dst", progress=crash_after_first_batch)
    assert db_rows(store, "dst")  # a partial copy without META: no database
    with pytest.raises(DatabaseNotFound):
        engine.head("dst")
    engine.fork("src", "dst")
    assert _state(engine, "dst") == _state(engine, "src")
    _exact(store, "dst")


def test_a_database_created_during_the_fork_stops_it(
    store: Store, make_engine: EngineFactory
) -> None:
    engine = make_engine()
    owner = Owner.open(engine, "src")
    _history(owner)
    other = make_engine()

    def create_dst(done: int, total: int) -> None:
        if done == 0:
            other.open("dst")

    with pytest.raises(ForkAborted, match="created while"):
        Engine(store).fork("src", "dst", progress=create_dst)
    # The database that was created is intact and empty.
    assert _state(other, "dst") == (0, {})
    _exact(store, "dst")


def test_a_source_that_commits_during_the_fork_is_copied_as_it_was_when_the_fork_began() -> None:
    store = MemoryStore(limits=Limits(max_transaction_bytes=1_000_000))  # one shard a batch
    engine = Engine(store)
    owner = Owner.open(engine, "src")
    _history(owner)
    began, state = owner.head_txid, _state(engine, "src")
    calls: list[int] = []

    def commit_once(done: int, total: int) -> None:
        calls.append(done)
        if len(calls) == 2:
            owner.commit({3: page_of(333), 200: page_of(200)})

    with store.recording() as ops:
        head = engine.fork("src", "dst", progress=commit_once)
    assert head.head_txid == began < owner.head_txid
    assert _state(engine, "dst") == state
    points = [op.point for op in ops]
    assert "fork_copy.apply" in points and "fork_copy_at.apply" in points  # the rest at T
    _exact(store, "dst")


def test_a_source_whose_state_is_folded_away_restarts_and_may_abort() -> None:
    store = MemoryStore(limits=Limits(max_transaction_bytes=1_000_000))
    engine = Engine(store)  # no retention window: compaction folds the state being copied
    owner = Owner.open(engine, "src")
    _history(owner)
    calls: list[int] = []

    def commit_and_fold(done: int, total: int) -> None:
        calls.append(done)
        if done and len(calls) == 2:
            owner.commit({3: page_of(len(calls))})
            engine.compact_until_done("src")

    head = engine.fork("src", "dst", progress=commit_and_fold)  # restarted once
    assert head.head_txid == owner.head_txid
    assert _state(engine, "dst") == _state(engine, "src")
    _exact(store, "dst")

    def always(done: int, total: int) -> None:
        if done:
            owner.commit({3: page_of(done)})
            engine.compact_until_done("src")

    with pytest.raises(ForkAborted, match="committed during each of 3 attempts"):
        engine.fork("src", "dst2", progress=always)
    assert db_rows(store, "dst2") == {}


def test_the_copy_counts_against_the_quota_it_inherits(
    store: Store, make_engine: EngineFactory
) -> None:
    engine = make_engine()
    owner = Owner.open(engine, "src")
    _history(owner)
    edit_head(store, "src", storage_quota=2_000)  # far below what the copy needs
    with pytest.raises(QuotaExceeded, match="'dst' would use"):
        engine.fork("src", "dst")
    assert db_rows(store, "dst") == {}
    edit_head(store, "src", storage_quota=10_000_000)
    assert engine.fork("src", "dst").storage_quota == 10_000_000
    _exact(store, "dst")


def test_fork_costs_one_transaction_per_batch_plus_two(mem: MemoryStore) -> None:
    engine = Engine(mem)
    owner = Owner.open(engine, "src")
    _history(owner)
    before = mem.stats.transactions
    engine.fork("src", "dst")
    # 280 pages = 5 shards, one batch on the default limits: begin, one copy, finish.
    assert mem.stats.transactions - before == 3
    assert not any(k == DbKeys("dst").fork_record for k in db_rows(mem, "dst"))
