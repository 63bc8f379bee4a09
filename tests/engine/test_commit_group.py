"""Group commit (``engine/commit_group.py``): commits to distinct databases land in one store
transaction, each checked as when it lands alone, and one that fails never fails the others.
"""

from __future__ import annotations

import os

import pytest
from engine_support import Owner, check_invariants, page_of

from sqlkv.engine import Engine
from sqlkv.engine.api import CommitResult
from sqlkv.engine.commit_group import GroupedCommit, commit_group
from sqlkv.errors import FenceMismatch, InvalidRequest
from sqlkv.store import MemoryStore, Store


def grouped(owner: Owner, pages: dict[int, bytes], commit_id: bytes | None = None) -> GroupedCommit:
    size = max([owner.size, *pages])
    return GroupedCommit(owner.name, owner.generation, owner.head_txid, pages, size, commit_id)


def landed(owner: Owner, outcome: object, pages: dict[int, bytes]) -> None:
    assert isinstance(outcome, CommitResult), outcome
    owner._landed(outcome, pages, max([owner.size, *pages]))


def owners(engine: Engine, n: int) -> list[Owner]:
    return [Owner.open(engine, f"g{i}") for i in range(n)]


def test_commits_to_distinct_databases_land_in_one_store_transaction(store: Store) -> None:
    engine = Engine(store)
    group = owners(engine, 4)
    for o in group:  # the engine knows each META: the group commits on guards
        o.commit({1: page_of(1)})
    heads = [o.head_txid for o in group]
    before = store.stats.snapshot()
    pages = [{2: page_of(10 + i)} for i in range(4)]
    outcomes = commit_group(engine, [grouped(o, p) for o, p in zip(group, pages, strict=True)])
    assert (store.stats - before).transactions == 1
    for o, out, p, head in zip(group, outcomes, pages, heads, strict=True):
        landed(o, out, p)
        assert o.head_txid == head + 1
        o.assert_reads_back()
        check_invariants(store, o.name)
    # the engine's caches follow: each next commit, alone, lands on its guard
    group[0].commit({3: page_of(3)})
    group[0].assert_reads_back()


def test_a_refused_commit_leaves_the_group_and_gets_its_own_answer(store: Store) -> None:
    engine = Engine(store)
    a, b, c = owners(engine, 3)
    stale = Owner(engine, b.name, b.generation, b.head_txid)
    b.reopen(Engine(store))  # another owner took b over: b's old generation is fenced
    commits = [grouped(a, {1: page_of(1)}), grouped(stale, {1: page_of(2)})]
    commits.append(grouped(c, {1: page_of(3)}, commit_id=b"short"))  # not 16 bytes
    before = store.stats.snapshot()
    out_a, out_b, out_c = commit_group(engine, commits)
    landed(a, out_a, {1: page_of(1)})
    a.assert_reads_back()
    assert isinstance(out_b, FenceMismatch)
    assert isinstance(out_c, InvalidRequest)
    assert c.engine.head(c.name).head_txid == c.head_txid  # nothing landed for c
    assert (store.stats - before).transactions <= 4  # the group, then each refusal alone


def test_a_failed_guard_lands_the_others_and_retries_that_one_alone() -> None:
    mem = MemoryStore()
    engine = Engine(mem)
    a, b, c = owners(engine, 3)
    for o in (a, b, c):
        o.commit({1: page_of(1)})  # the engine now guards META it knows
    # b's META changes behind this engine's back (a second engine of the same owner, as a
    # second server process would): the group's guard on b fails, nothing is applied
    other = Engine(mem)
    b.engine = other
    b.commit({2: page_of(2)})
    b.engine = engine
    heads = [o.head_txid for o in (a, b, c)]
    pages = {3: page_of(3)}
    outcomes = commit_group(engine, [grouped(o, pages) for o in (a, b, c)])
    for o, out, head in zip((a, b, c), outcomes, heads, strict=True):
        landed(o, out, pages)
        assert o.head_txid == head + 1
        o.assert_reads_back()
        check_invariants(mem, o.name)


def test_a_retried_group_commit_is_applied_once(store: Store) -> None:
    engine = Engine(store)
    a, b = owners(engine, 2)
    ids = [os.urandom(16), os.urandom(16)]
    commits = [grouped(o, {1: page_of(7)}, i) for o, i in zip((a, b), ids, strict=True)]
    first = commit_group(engine, commits)
    again = commit_group(engine, commits)  # the answers were lost: the client sends again
    for o, out, retry in zip((a, b), first, again, strict=True):
        assert isinstance(out, CommitResult) and isinstance(retry, CommitResult)
        assert retry.already_applied and retry.head.head_txid == out.head.head_txid
        landed(o, out, {1: page_of(7)})
        o.assert_reads_back()


def test_two_commits_of_one_database_are_never_grouped(store: Store) -> None:
    engine = Engine(store)
    (a,) = owners(engine, 1)
    with pytest.raises(ValueError, match="one commit per database"):
        commit_group(engine, [grouped(a, {1: page_of(1)}), grouped(a, {2: page_of(2)})])
