"""Crash at every store operation of every engine operation (memory store fault plan).

For each scenario: count the driver operations of the engine operation on a dry run, then
for every index i, restore the store, arm ``crash_nth(i)`` (the process dies before op i)
and ``crash_nth(i, after_commit=True)`` (for a commit op: it applied, the answer is lost),
run the operation, and restart: a NEW Engine opens the database. It must be exactly in the
state before or exactly in the state after the operation (db size, every page, head_txid),
never between, and its stored DELTAs, PIDX rows and accounting must agree with its head.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from engine_support import Owner, check_invariants, database_state, page_of, write_shard

from sqlkv.engine import Engine, EngineConfig
from sqlkv.errors import SimulatedCrash
from sqlkv.store import MemoryStore

CONFIG = EngineConfig(part_pages=16)  # several LTX parts per delta: more store operations
NAME = "db"

State = tuple[int, int, dict[int, bytes]]  # (head_txid - base, db size, pages)


@dataclass
class Scenario:
    """``prepare`` builds the state before; ``run`` is the operation (on a fresh Engine)."""

    prepare: Callable[[Owner, MemoryStore], dict[str, int]]
    run: Callable[[Engine, dict[str, int]], object]
    changes_pages: bool = True


def _history(o: Owner, mem: MemoryStore) -> None:
    """A few deltas, a shrink, and shards written by hand."""
    o.commit({p: page_of(p) for p in range(1, 151)})
    o.commit({p: page_of(p + 1000) for p in range(100, 201, 3)}, size=200)
    o.commit({}, size=180)
    write_shard(mem, NAME, 1, {p: page_of(p + 5000) for p in range(64, 128)})
    write_shard(mem, NAME, 2, {p: page_of(p + 5000) for p in range(128, 181)})


def _owner_args(o: Owner) -> dict[str, int]:
    return {"g": o.generation, "h": o.head_txid}


def _prep_plain(o: Owner, mem: MemoryStore) -> dict[str, int]:
    _history(o, mem)
    return _owner_args(o)


def _prep_staged(o: Owner, mem: MemoryStore) -> dict[str, int]:
    _history(o, mem)
    e = o.engine
    txid = e.commit_stage(NAME, o.generation, None, 0, {p: page_of(-p) for p in range(1, 40)}).txid
    e.commit_stage(NAME, o.generation, txid, 1, {p: page_of(-p) for p in range(150, 190)})
    return {**_owner_args(o), "txid": txid}


def _prep_leftovers(o: Owner, mem: MemoryStore) -> dict[str, int]:
    """What a crashed owner leaves: an abandoned staged commit."""
    args = _prep_staged(o, mem)
    o.commit({3: page_of(33)})  # overtakes the staged txid
    o.engine.commit_stage(NAME, o.generation, None, 0, {5: page_of(55)})
    return _owner_args(o) | {"txid": args["txid"]}


CID = uuid.UUID(int=7).bytes

SCENARIOS = {
    "commit": Scenario(
        _prep_plain,
        lambda e, a: e.commit(
            NAME, a["g"], a["h"], {p: page_of(p * 7) for p in range(1, 120, 2)}, 180, commit_id=CID
        ),
    ),
    "commit-shrink": Scenario(
        _prep_plain,
        lambda e, a: e.commit(NAME, a["g"], a["h"], {70: page_of(7070)}, 100, commit_id=CID),
    ),
    "stage-first": Scenario(
        _prep_plain,
        lambda e, a: e.commit_stage(NAME, a["g"], None, 0, {2: page_of(2222)}),
        changes_pages=False,
    ),
    "stage-next": Scenario(
        _prep_staged,
        lambda e, a: e.commit_stage(NAME, a["g"], a["txid"], 2, {9: page_of(9999)}),
        changes_pages=False,
    ),
    "finalize": Scenario(
        _prep_staged,
        lambda e, a: e.commit_finalize(NAME, a["g"], a["h"], a["txid"], 190, commit_id=CID),
    ),
    "finalize-shrink": Scenario(
        _prep_staged,
        lambda e, a: e.commit_finalize(NAME, a["g"], a["h"], a["txid"], 189, commit_id=CID),
    ),
    "compact": Scenario(
        _prep_plain,
        lambda e, a: e.compact(NAME),
        changes_pages=False,
    ),
    "open": Scenario(
        _prep_leftovers,
        lambda e, a: e.open(NAME, preload=range(1, 100)),
        changes_pages=False,
    ),
}


@dataclass
class Outcome:
    ops: int
    fired: dict[bool, set[int]] = field(default_factory=lambda: {False: set(), True: set()})
    landed: dict[bool, set[int]] = field(default_factory=lambda: {False: set(), True: set()})


def restart_and_read(mem: MemoryStore, base: int) -> State:
    """A restarted process: a new Engine takes the database over and reads everything."""
    engine = Engine(mem, CONFIG)
    head = engine.open(NAME).head
    check_invariants(mem, NAME)
    size, pages = database_state(engine, NAME, head.generation)
    return head.head_txid - base, size, pages


@functools.cache
def explore(name: str) -> Outcome:
    """Crash at every op of scenario ``name`` (asserting before-or-after); what was covered."""
    scenario = SCENARIOS[name]
    mem = MemoryStore(record_ops=True)
    owner = Owner.open(Engine(mem, CONFIG), NAME)
    args = scenario.prepare(owner, mem)
    start = mem.snapshot_state()
    base = args["h"]

    before = restart_and_read(mem, base)
    mem.restore_state(start)
    first = mem.op_count
    scenario.run(Engine(mem, CONFIG), args)
    out = Outcome(ops=mem.op_count - first)
    after = restart_and_read(mem, base)
    assert (before != after) == scenario.changes_pages

    for i in range(1, out.ops + 1):
        for after_commit in (False, True):
            mem.restore_state(start)
            mem.faults.fired.clear()
            mem.faults.crash_nth(i, after_commit=after_commit)
            with pytest.raises(SimulatedCrash):
                scenario.run(Engine(mem, CONFIG), args)
            mem.faults.clear()
            assert len(mem.faults.fired) == 1, f"crash at op {i} did not fire exactly once"
            out.fired[after_commit].add(i)
            state = restart_and_read(mem, base)
            assert state in (before, after), (
                f"{name}: crash {'after' if after_commit else 'before'} op {i} of {out.ops} "
                f"left a state that is neither before nor after ({mem.faults.fired})"
            )
            if state == after and before != after:
                out.landed[after_commit].add(i)
    return out


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_crash_at_every_store_operation_leaves_before_or_after(name: str) -> None:
    out = explore(name)
    if SCENARIOS[name].changes_pages:
        # Only a crash after the commit op (the last op) can land the operation.
        assert out.landed == {False: set(), True: {out.ops}}


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_every_crash_point_is_exercised(name: str) -> None:
    out = explore(name)
    every = set(range(1, out.ops + 1))
    assert out.ops >= 2
    assert out.fired[False] == every, "some crash points before an op were never exercised"
    assert out.fired[True] == every, "some crash points after an op were never exercised"


def test_a_commit_whose_answer_was_lost_is_resolvable_after_restart() -> None:
    mem = MemoryStore(record_ops=True)
    owner = Owner.open(Engine(mem, CONFIG), NAME)
    owner.commit({1: page_of(1)})
    cid = uuid.uuid4().bytes
    first = mem.op_count
    owner.engine.commit(NAME, owner.generation, owner.head_txid, {2: page_of(2)}, 2, commit_id=cid)
    ops = mem.op_count - first
    for after_commit, landed in ((False, False), (True, True)):
        engine = Engine(mem, CONFIG)
        o = Owner.open(engine, NAME)
        mem.faults.crash_nth(ops, after_commit=after_commit)
        with pytest.raises(SimulatedCrash):
            engine.commit(NAME, o.generation, o.head_txid, {2: page_of(22)}, 2, commit_id=cid)
        head = Engine(mem, CONFIG).head(NAME)
        assert (head.last_commit_id == cid and head.head_txid == o.head_txid + 1) == landed
        cid = uuid.uuid4().bytes


def test_a_commit_retried_by_the_same_owner_after_a_lost_answer_applies_once() -> None:
    mem = MemoryStore(record_ops=True)
    owner = Owner.open(Engine(mem, CONFIG), NAME)
    cid = uuid.uuid4().bytes
    e, g, h = owner.engine, owner.generation, owner.head_txid
    mem.faults.crash_nth(2, after_commit=True)  # get META, then the commit applies: answer lost
    with pytest.raises(SimulatedCrash):
        e.commit(NAME, g, h, {1: page_of(1)}, 1, commit_id=cid)
    assert mem.faults.fired == ["crash after commit #2"]
    landed = mem.dump()
    retry = e.commit(NAME, g, h, {1: page_of(1)}, 1, commit_id=cid)
    assert retry.already_applied
    assert retry.head.head_txid == h + 1
    assert mem.dump() == landed
