"""Crash at every named store operation of every engine operation (memory store faults).

For each scenario: record the named store operations (fault points, ``sqlkv.store.faults``)
of the engine operation on a dry run; then for each of its crash points — before every
operation, by name and occurrence (``commit.read_meta #1``), and after every commit
(``commit.apply``: it applied, the answer is lost) — restore the store, arm the point, run
the operation, and restart: a NEW Engine opens the database. It must be exactly in the
state before or exactly in the state after the operation (db size, every page, head_txid),
never between, and its stored DELTAs, PIDX rows and accounting must agree with its head.
``crash_plan`` is what ``test_fault_points.py`` checks against the registry.
"""

from __future__ import annotations

import functools
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from engine_support import Owner, check_invariants, database_state, page_of, write_shard

from sqlkv.engine import Engine, EngineConfig
from sqlkv.store import MemoryStore
from sqlkv.store.faults import CrashPoint, SimulatedCrash, crash_points

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


def _prep_staged_low(o: Owner, mem: MemoryStore) -> dict[str, int]:
    """A staged commit whose pages all lie below 100 (it may shrink the database to 100)."""
    _history(o, mem)
    e = o.engine
    txid = e.commit_stage(NAME, o.generation, None, 0, {p: page_of(-p) for p in range(1, 40)}).txid
    return {**_owner_args(o), "txid": txid}


def _prep_leftovers(o: Owner, mem: MemoryStore) -> dict[str, int]:
    """What a crashed owner leaves: an abandoned staged commit."""
    args = _prep_staged(o, mem)
    o.commit({3: page_of(33)})  # overtakes the staged txid
    o.engine.commit_stage(NAME, o.generation, None, 0, {5: page_of(55)})
    return _owner_args(o) | {"txid": args["txid"]}


def _prep_staged_then_abandoned(o: Owner, mem: MemoryStore) -> dict[str, int]:
    """A staged commit its owner gives up: the next commit removes its parts."""
    _prep_staged(o, mem)
    return _owner_args(o)


def _prep_retained(o: Owner, mem: MemoryStore) -> dict[str, int]:
    """A one-hour retention window, then history: compaction retires shard versions and
    keeps folded deltas for the older states (docs/history.md)."""
    o.engine.set_retention(NAME, 3600)
    _history(o, mem)
    o.engine.compact(NAME)
    o.commit({p: page_of(p + 77) for p in range(60, 140, 2)})
    return _owner_args(o)


def _prep_trimmable(o: Owner, mem: MemoryStore) -> dict[str, int]:
    """Retained history that a shortened window no longer needs."""
    _prep_retained(o, mem)
    o.engine.compact_until_done(NAME)
    o.commit({5: page_of(555)})
    o.engine.set_retention(NAME, 0.001)
    time.sleep(0.01)
    return _owner_args(o)


def _prep_nothing(o: Owner, mem: MemoryStore) -> dict[str, int]:
    """No database at all: the operation creates it."""
    mem.restore_state({})
    return {"g": 0, "h": 1}


CID = uuid.UUID(int=7).bytes

SCENARIOS = {
    "commit": Scenario(
        _prep_plain,
        lambda e, a: e.commit(
            NAME, a["g"], a["h"], {p: page_of(p * 7) for p in range(1, 120, 2)}, 180, commit_id=CID
        ),
    ),
    "commit-over-staged": Scenario(
        _prep_staged_then_abandoned,
        lambda e, a: e.commit(NAME, a["g"], a["h"], {4: page_of(444)}, 180, commit_id=CID),
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
    "finalize-truncate": Scenario(
        _prep_staged_low,
        lambda e, a: e.commit_finalize(NAME, a["g"], a["h"], a["txid"], 100, commit_id=CID),
    ),
    "compact": Scenario(
        _prep_plain,
        lambda e, a: e.compact(NAME),
        changes_pages=False,
    ),
    "compact-retained": Scenario(
        _prep_retained,
        lambda e, a: e.compact(NAME),
        changes_pages=False,
    ),
    "compact-trim": Scenario(
        _prep_trimmable,
        lambda e, a: e.compact(NAME),
        changes_pages=False,
    ),
    "commit-shrink-retained": Scenario(
        _prep_retained,
        lambda e, a: e.commit(NAME, a["g"], a["h"], {70: page_of(7070)}, 100, commit_id=CID),
    ),
    "set_retention": Scenario(
        _prep_retained,
        lambda e, a: e.set_retention(NAME, 60),
        changes_pages=False,
    ),
    "retention": Scenario(
        _prep_retained,
        lambda e, a: e.retention(NAME),
        changes_pages=False,
    ),
    "label": Scenario(
        _prep_plain,
        lambda e, a: e.label(NAME, "restore-point", a["h"] - 1),
        changes_pages=False,
    ),
    "resolve": Scenario(
        _prep_plain,
        lambda e, a: e.resolve(NAME, a["h"] - 1),
        changes_pages=False,
    ),
    "history": Scenario(
        _prep_plain,
        lambda e, a: e.history(NAME, limit=5),
        changes_pages=False,
    ),
    "open": Scenario(
        _prep_leftovers,
        lambda e, a: e.open(NAME, preload=range(1, 100)),
        changes_pages=False,
    ),
    "open-create": Scenario(
        _prep_nothing,
        lambda e, a: e.open(NAME),
        changes_pages=False,
    ),
    "get_pages": Scenario(
        _prep_plain,
        lambda e, a: e.get_pages(NAME, a["g"], range(1, 190)),
        changes_pages=False,
    ),
    "head": Scenario(
        _prep_plain,
        lambda e, a: e.head(NAME),
        changes_pages=False,
    ),
    "snapshot": Scenario(
        _prep_plain,
        lambda e, a: e.snapshot(NAME, preload=range(1, 190)),
        changes_pages=False,
    ),
    "snapshot-past": Scenario(
        _prep_plain,
        lambda e, a: e.snapshot(NAME, at=a["h"] - 1, preload=range(1, 60)),
        changes_pages=False,
    ),
    "read_at": Scenario(
        _prep_plain,
        lambda e, a: e.read_at(NAME, a["h"] - 1, range(1, 60)),
        changes_pages=False,
    ),
    "read_at-head": Scenario(
        _prep_plain,
        lambda e, a: e.read_at(NAME, a["h"], range(1, 190)),
        changes_pages=False,
    ),
    "changes_since": Scenario(
        _prep_plain,
        lambda e, a: e.changes_since(NAME, a["h"] - 2),
        changes_pages=False,
    ),
    "verify": Scenario(
        _prep_plain,
        lambda e, a: e.verify(NAME),
        changes_pages=False,
    ),
}


@dataclass
class Outcome:
    points: list[CrashPoint]
    fired: set[CrashPoint] = field(default_factory=set)
    landed: set[CrashPoint] = field(default_factory=set)


def restart_and_read(mem: MemoryStore, base: int) -> State:
    """A restarted process: a new Engine takes the database over and reads everything."""
    engine = Engine(mem, CONFIG)
    head = engine.open(NAME).head
    check_invariants(mem, NAME)
    size, pages = database_state(engine, NAME, head.generation)
    return head.head_txid - base, size, pages


def _prepared(name: str) -> tuple[MemoryStore, dict[str, int], dict[bytes, bytes]]:
    mem = MemoryStore()
    owner = Owner.open(Engine(mem, CONFIG), NAME)
    args = SCENARIOS[name].prepare(owner, mem)
    return mem, args, mem.snapshot_state()


@functools.cache
def dry_run(name: str) -> list[str]:
    """The fault point names of scenario ``name``'s store operations, in order."""
    mem, args, _ = _prepared(name)
    with mem.recording() as ops:
        SCENARIOS[name].run(Engine(mem, CONFIG), args)
    return [op.point for op in ops]


def crash_plan() -> set[str]:
    """Every fault point this suite crashes at (``test_fault_points.py``)."""
    return {p.point for name in SCENARIOS for p in crash_points(dry_run(name))}


@functools.cache
def explore(name: str) -> Outcome:
    """Crash at every point of scenario ``name`` (asserting before-or-after); what fired."""
    scenario = SCENARIOS[name]
    mem, args, start = _prepared(name)
    base = args["h"]

    before = restart_and_read(mem, base)
    mem.restore_state(start)
    scenario.run(Engine(mem, CONFIG), args)
    after = restart_and_read(mem, base)
    assert (before != after) == scenario.changes_pages
    out = Outcome(crash_points(dry_run(name)))

    for point in out.points:
        mem.restore_state(start)
        mem.faults.fired.clear()
        mem.faults.arm(point)
        with pytest.raises(SimulatedCrash):
            scenario.run(Engine(mem, CONFIG), args)
        mem.faults.clear()
        assert mem.faults.fired == [str(point)], f"{point} did not fire exactly once"
        out.fired.add(point)
        state = restart_and_read(mem, base)
        assert state in (before, after), (
            f"{name}: {point} left a state that is neither before nor after"
        )
        if state == after and before != after:
            out.landed.add(point)
    return out


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_crash_at_every_store_operation_leaves_before_or_after(name: str) -> None:
    out = explore(name)
    if SCENARIOS[name].changes_pages:
        # Only a crash after the commit (the last operation) can land the operation.
        (apply,) = [p for p in out.points if p.after_commit]
        assert out.points[-1] == apply
        assert out.landed == {apply}


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_every_crash_point_is_exercised(name: str) -> None:
    out = explore(name)
    assert len(dry_run(name)) >= (1 if name in ("head", "changes_since") else 2)
    assert out.fired == set(out.points), "some crash points were never exercised"
    assert len(out.points) == len(set(out.points))


def test_a_commit_whose_answer_was_lost_is_resolvable_after_restart() -> None:
    mem = MemoryStore()
    owner = Owner.open(Engine(mem, CONFIG), NAME)
    owner.commit({1: page_of(1)})
    cid = uuid.uuid4().bytes
    for after_commit, landed in ((False, False), (True, True)):
        engine = Engine(mem, CONFIG)
        o = Owner.open(engine, NAME)
        mem.faults.crash_at("commit.apply", after_commit=after_commit)
        with pytest.raises(SimulatedCrash):
            engine.commit(NAME, o.generation, o.head_txid, {2: page_of(22)}, 2, commit_id=cid)
        head = Engine(mem, CONFIG).head(NAME)
        assert (head.last_commit_id == cid and head.head_txid == o.head_txid + 1) == landed
        cid = uuid.uuid4().bytes


def test_a_commit_retried_by_the_same_owner_after_a_lost_answer_applies_once() -> None:
    mem = MemoryStore()
    owner = Owner.open(Engine(mem, CONFIG), NAME)
    cid = uuid.uuid4().bytes
    e, g, h = owner.engine, owner.generation, owner.head_txid
    mem.faults.crash_at("commit.apply", after_commit=True)  # it applies: the answer is lost
    with mem.recording() as ops, pytest.raises(SimulatedCrash):
        e.commit(NAME, g, h, {1: page_of(1)}, 1, commit_id=cid)
    assert [op.point for op in ops] == ["commit.read_meta", "commit.apply"]
    assert mem.faults.fired == ["crash after commit.apply #1"]
    landed = mem.dump()
    retry = e.commit(NAME, g, h, {1: page_of(1)}, 1, commit_id=cid)
    assert retry.already_applied
    assert retry.head.head_txid == h + 1
    assert mem.dump() == landed
