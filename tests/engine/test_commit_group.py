"""Group commit (``engine/commit_group.py``): commits to distinct databases land in one store
transaction, each checked as when it lands alone, and one that fails never fails the others.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from engine_support import Owner, check_invariants, page_of

from sqlkv.engine import Engine
from sqlkv.engine.api import CommitResult
from sqlkv.engine.commit_group import GroupedCommit, commit_group
from sqlkv.engine.head import Head
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


def test_a_group_commit_and_a_compaction_pass_of_one_database_take_turns() -> None:
    """The group holds each database's turn (``guarded.land``) as ``Engine.commit`` does:
    a compaction pass of this engine applies only after the group's transaction landed."""
    mem = MemoryStore()
    engine = Engine(mem)
    a, b = owners(engine, 2)
    for i in range(4):  # live deltas for a pass to fold
        a.commit({1: page_of(i), 2: page_of(i + 10)})
    events: list[str] = []
    inside, go = threading.Event(), threading.Event()
    real = mem.transact

    def transact(fn: Callable[[Any], Any], **kw: Any) -> Any:
        group = threading.current_thread().name == "group"
        if group and kw.get("name") == "commit":
            inside.set()
            assert go.wait(10)
        elif kw.get("name") == "compact":
            events.append("compact")
        try:
            return real(fn, **kw)
        finally:
            if group:
                events.append("group landed")

    mem.transact = transact  # type: ignore[method-assign]
    pages = {3: page_of(3)}
    outcomes: list[object] = []
    grouping = threading.Thread(
        target=lambda: outcomes.extend(
            commit_group(engine, [grouped(a, pages), grouped(b, pages)])
        ),
        name="group",
    )
    grouping.start()
    assert inside.wait(10)
    # the group's transaction is under way: another thread cannot take a's turn
    assert not engine.heads.turn(a.name).acquire(blocking=False)
    passes: list[object] = []
    compacting = threading.Thread(target=lambda: passes.append(engine.compact(a.name)))
    compacting.start()
    deadline = time.monotonic() + 10
    while "compact" not in events and time.monotonic() < deadline:  # its plan: no turn
        time.sleep(0.001)
    time.sleep(0.05)  # room for an apply that would not wait for the turn
    assert events == ["compact"]  # planned, not applied
    go.set()
    grouping.join(10)
    compacting.join(10)
    assert events[:3] == ["compact", "group landed", "compact"], events  # then applied
    for o, out in zip((a, b), outcomes, strict=True):
        landed(o, out, pages)
        o.assert_reads_back()
        check_invariants(mem, o.name)
    assert len(passes) == 1 and passes[0].changed  # type: ignore[attr-defined]


class _Notices:
    def __init__(self) -> None:
        self.heads: list[tuple[str, Head]] = []

    def notify(self, db: str, head: Head) -> None:
        self.heads.append((db, head))


def test_a_group_commit_is_published_as_engine_commit_publishes_it(store: Store) -> None:
    """PIDX map, META cache, metrics and the compaction notice follow a group's commits."""
    engine = Engine(store)
    group = owners(engine, 3)
    for o in group:
        o.commit({1: page_of(1)})
    notices = _Notices()
    engine.compactor = notices  # type: ignore[assignment]
    fast = engine.metrics.commit_seconds["fast"]
    commits_before = sum(fast.counts)
    pages = {2: page_of(2)}
    outcomes = commit_group(engine, [grouped(o, pages) for o in group])
    assert sum(fast.counts) == commits_before + 3
    for o, out in zip(group, outcomes, strict=True):
        landed(o, out, pages)
        cached = engine.pidx.peek(o.name)
        assert cached is not None and cached[0].head_txid == o.head_txid
        meta = engine.heads.get(o.name)
        assert meta is not None and Head.decode(meta, o.name).head_txid == o.head_txid
    assert [(db, h.head_txid) for db, h in notices.heads] == [(o.name, o.head_txid) for o in group]
    before = store.stats.snapshot()
    group[0].commit({3: page_of(3)})  # on the META the group left: no META read
    assert (store.stats - before).transactions == 1
