"""commit_stage / commit_finalize: large commits staged invisibly, made the next txid at once."""

from __future__ import annotations

import random
import uuid

import pytest
from engine_support import (
    PAGE,
    ZERO,
    EngineFactory,
    Owner,
    check_invariants,
    db_rows,
    page_of,
    random_page,
)

from sqlkv.engine import Engine, EngineConfig
from sqlkv.errors import CompactionBehind, FenceMismatch, InvalidRequest
from sqlkv.store import Store

MiB = 1024 * 1024


def test_staged_pages_are_invisible_until_finalized(owner: Owner, store: Store) -> None:
    owner.commit({1: page_of(1)})
    e, g = owner.engine, owner.generation
    txid = e.commit_stage("db", g, None, 0, {1: page_of(10), 2: page_of(20)}).txid
    e.commit_stage("db", g, txid, 1, {3: page_of(30)})
    assert txid == owner.head_txid + 1
    assert e.head("db").head_txid == owner.head_txid
    assert owner.read([1, 2, 3]) == {1: page_of(1), 2: None, 3: None}

    result = e.commit_finalize("db", g, owner.head_txid, txid, 3)

    assert result.head.head_txid == txid
    assert owner.read([1, 2, 3]) == {1: page_of(10), 2: page_of(20), 3: page_of(30)}
    check_invariants(store, "db")


def test_later_stage_call_wins_for_a_page_staged_twice(owner: Owner) -> None:
    owner.stage_commit([{1: page_of(1), 2: page_of(2)}, {2: page_of(22)}])
    assert owner.read([1, 2]) == {1: page_of(1), 2: page_of(22)}


def test_restaging_the_same_seq_replaces_it(owner: Owner, store: Store) -> None:
    e, g = owner.engine, owner.generation
    txid = e.commit_stage("db", g, None, 0, {1: page_of(1), 2: page_of(2)}).txid
    e.commit_stage("db", g, txid, 0, {1: page_of(11)})  # a retried request, new content
    e.commit_finalize("db", g, owner.head_txid, txid, 2)
    assert owner.read([1, 2]) == {1: page_of(11), 2: ZERO}
    check_invariants(store, "db")


def test_finalize_may_shrink_and_grow(owner: Owner, store: Store) -> None:
    owner.commit({p: page_of(p) for p in range(1, 50)})
    owner.stage_commit([{3: page_of(33)}], size=10)
    assert owner.read([3, 10, 11]) == {3: page_of(33), 10: page_of(10), 11: None}
    owner.stage_commit([{20: page_of(2020)}], size=20)
    assert owner.read([11, 20]) == {11: ZERO, 20: page_of(2020)}
    owner.assert_reads_back()
    check_invariants(store, "db")


def test_finalize_retried_after_it_landed_answers_already_applied(
    owner: Owner, store: Store
) -> None:
    e, g, base = owner.engine, owner.generation, owner.head_txid
    txid = e.commit_stage("db", g, None, 0, {1: page_of(1)}).txid
    cid = uuid.uuid4().bytes
    first = e.commit_finalize("db", g, base, txid, 1, commit_id=cid)
    landed = db_rows(store, "db")
    retry = e.commit_finalize("db", g, base, txid, 1, commit_id=cid)
    assert retry.already_applied
    assert retry.head == first.head
    assert db_rows(store, "db") == landed
    with pytest.raises(FenceMismatch):
        e.commit_finalize("db", g, base, txid, 1, commit_id=uuid.uuid4().bytes)


def test_finalize_of_a_page_above_the_stated_size_is_refused(owner: Owner, store: Store) -> None:
    e, g = owner.engine, owner.generation
    txid = e.commit_stage("db", g, None, 0, {5: page_of(5)}).txid
    before = db_rows(store, "db")
    with pytest.raises(InvalidRequest):
        e.commit_finalize("db", g, owner.head_txid, txid, 4)
    assert db_rows(store, "db") == before


def test_finalize_of_an_unreserved_or_empty_txid_is_refused(owner: Owner, store: Store) -> None:
    e, g = owner.engine, owner.generation
    before = db_rows(store, "db")
    for txid in (owner.head_txid, owner.head_txid + 1, 10**6):
        with pytest.raises(InvalidRequest):
            e.commit_finalize("db", g, owner.head_txid, txid, 1)
    assert db_rows(store, "db") == before


def test_stage_with_an_unreserved_txid_or_bad_seq_is_refused(owner: Owner, store: Store) -> None:
    e, g = owner.engine, owner.generation
    before = db_rows(store, "db")
    with pytest.raises(InvalidRequest):
        e.commit_stage("db", g, owner.head_txid + 5, 0, {1: page_of(1)})
    with pytest.raises(InvalidRequest):
        e.commit_stage("db", g, None, 1 << 16, {1: page_of(1)})
    with pytest.raises(InvalidRequest):
        e.commit_stage("db", g, None, -1, {1: page_of(1)})
    assert db_rows(store, "db") == before


@pytest.mark.parametrize(
    "pages",
    [{0: page_of(0)}, {1: b"x" * 100}, {262145: page_of(1)}],
    ids=["page-0", "short-page", "lock-page"],
)
def test_stage_of_invalid_pages_is_refused(
    owner: Owner, store: Store, pages: dict[int, bytes]
) -> None:
    before = db_rows(store, "db")
    with pytest.raises(InvalidRequest):
        owner.engine.commit_stage("db", owner.generation, None, 0, pages)
    assert db_rows(store, "db") == before


def test_a_plain_commit_after_staging_orphans_the_stage(owner: Owner) -> None:
    e, g = owner.engine, owner.generation
    txid = e.commit_stage("db", g, None, 0, {1: page_of(1)}).txid
    owner.commit({2: page_of(2)})
    assert owner.head_txid > txid
    with pytest.raises((InvalidRequest, FenceMismatch)):
        e.commit_finalize("db", g, owner.head_txid, txid, 2)
    owner.assert_reads_back()


def test_a_50_mib_transaction_commits_through_stage_and_finalize(
    owner: Owner, store: Store
) -> None:
    # About a second per driver on memory/embedded/lmdb, so not marked slow.
    rng = random.Random(50)
    total = 50 * MiB // PAGE  # 12800 incompressible pages
    batch = 1800  # ~7 MiB encoded per stage call, under max_delta_bytes and the store limit
    batches = [
        {p: random_page(rng) for p in range(lo, min(lo + batch, total + 1))}
        for lo in range(1, total + 1, batch)
    ]
    assert sum(len(b) for b in batches) == total

    owner.stage_commit(batches)

    assert owner.size == total
    got = owner.read(range(1, total + 1))
    assert all(got[p] == owner.model[p] for p in range(1, total + 1))
    check_invariants(store, "db")


def test_restaging_a_seq_with_fewer_parts_drops_its_old_parts(
    make_engine: EngineFactory, store: Store
) -> None:
    owner = Owner.open(make_engine(part_pages=4), "db")
    e, g = owner.engine, owner.generation
    txid = e.commit_stage("db", g, None, 0, {p: page_of(p) for p in range(1, 21)}).txid
    e.commit_stage("db", g, txid, 0, {1: page_of(100)})  # seq 0 again: now only page 1
    e.commit_finalize("db", g, owner.head_txid, txid, 20)
    assert owner.read(range(1, 21)) == {1: page_of(100), **dict.fromkeys(range(2, 21), ZERO)}


def test_an_empty_commit_is_not_held_back_by_backpressure(store: Store) -> None:
    """A commit that adds no delta (a shrink, a fence probe) passes even when compaction is
    behind: it cannot make the backlog worse."""
    owner = Owner.open(Engine(store, EngineConfig(max_live_deltas=2)), "db")
    owner.commit({1: page_of(1)})
    owner.commit({2: page_of(2)})
    with pytest.raises(CompactionBehind):
        owner.commit({3: page_of(3)})
    owner.commit({}, size=2)
    check_invariants(store, "db")
