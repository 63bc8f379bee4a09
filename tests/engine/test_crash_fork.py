"""Crash at every named store operation of fork (at the head and at a past txid), restore
and checkpoint: a restarted process finds every database exactly before or after the
operation — a fork's destination absent (no head; a partial copy is invisible and the
next fork removes it) or complete, a restored database at its old head or at the restored
state, a label there or not — the other database untouched, every database verified with
exact accounting, and running a fork again completes it.
``crash_plan`` is what ``test_fault_points.py`` checks against the registry.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from engine_support import Owner, check_invariants, database_state, page_of, stored_bytes

from sqlkv.engine import Engine
from sqlkv.engine.keys import DbKeys
from sqlkv.errors import DatabaseNotFound, QuotaExceeded
from sqlkv.store import Limits, MemoryStore
from sqlkv.store.faults import CrashPoint, SimulatedCrash, crash_points

LIMITS = Limits(max_transaction_bytes=1_000_000)  # one shard per fork batch: several batches
SRC, DST = "src", "dst"

State = tuple[int, int, dict[int, bytes], tuple[str, ...]] | None
"""(head_txid, size, pages, labels); None: the database does not exist."""


def _source(mem: MemoryStore) -> Owner:
    o = Owner.open(Engine(mem), SRC)
    o.commit({p: page_of(p) for p in range(1, 151)})
    o.engine.compact_until_done(SRC)
    o.commit({p: page_of(p + 1000) for p in range(100, 201, 3)}, size=200)
    o.commit({}, size=180)
    return o


def _prep_fork(mem: MemoryStore) -> None:
    _source(mem)


def _prep_fork_over_leftovers(mem: MemoryStore) -> None:
    """A fork that died after its first batch left a partial copy."""
    _source(mem)

    def stop(done: int, total: int) -> None:
        if done:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        Engine(mem).fork(SRC, DST, progress=stop)


def _prep_fork_over_quota(mem: MemoryStore) -> None:
    """The copy exceeds the quota: the fork removes its partial copy (fork_abort)."""
    _source(mem)
    from engine_support import edit_head

    edit_head(mem, SRC, storage_quota=3_000)


def _run_fork(engine: Engine) -> object:
    return engine.fork(SRC, DST)


def _prep_restore(mem: MemoryStore) -> None:
    """A history to go back in: the target is the first commit (see ``_target``)."""
    o = _source(mem)
    o.commit({p: page_of(-p) for p in range(1, 60)})


def _target(engine: Engine) -> int:
    """The state restore goes back to: the one before the last commit (what compaction
    folded, and a shard a shrink rewrote, are not retained without a retention window)."""
    return engine.head(SRC).head_txid - 1


def _run_restore(engine: Engine) -> object:
    return engine.restore(SRC, _target(engine))


def _run_fork_at(engine: Engine) -> object:
    return engine.fork(SRC, DST, at=_target(engine))


def _run_checkpoint(engine: Engine) -> object:
    return engine.label(SRC, "restore-point")


def _run_fork_over_quota(engine: Engine) -> object:
    with pytest.raises(QuotaExceeded):
        engine.fork(SRC, DST)
    return None


@dataclass
class Scenario:
    """``db``: the database the operation changes; the other one must not move."""

    prepare: Callable[[MemoryStore], None]
    run: Callable[[Engine], object]
    changes: bool = True
    db: str = DST


SCENARIOS = {
    "fork": Scenario(_prep_fork, _run_fork),
    "fork-over-leftovers": Scenario(_prep_fork_over_leftovers, _run_fork),
    "fork-over-quota": Scenario(_prep_fork_over_quota, _run_fork_over_quota, changes=False),
    "fork-at": Scenario(_prep_restore, _run_fork_at),
    "restore": Scenario(_prep_restore, _run_restore, db=SRC),
    "checkpoint": Scenario(_prep_restore, _run_checkpoint, db=SRC),
}


def read_state(mem: MemoryStore, name: str) -> State:
    """A restarted process reads ``name`` (None: it does not exist), after checking it."""
    engine = Engine(mem)
    try:
        head = engine.head(name)
    except DatabaseNotFound:
        return None
    checked = check_invariants(mem, name)
    assert checked.storage_used == stored_bytes(mem, name)
    size, pages = database_state(engine, name, head.generation)
    labels = tuple(sorted(label for e in engine.history(name) for label in e.labels))
    return head.head_txid, size, pages, labels


def _prepared(name: str) -> tuple[MemoryStore, dict[bytes, bytes]]:
    mem = MemoryStore(limits=LIMITS)
    SCENARIOS[name].prepare(mem)
    return mem, mem.snapshot_state()


@functools.cache
def dry_run(name: str) -> list[str]:
    mem, _ = _prepared(name)
    with mem.recording() as ops:
        SCENARIOS[name].run(Engine(mem))
    return [op.point for op in ops]


def crash_plan() -> set[str]:
    """Every fault point this suite crashes at (``test_fault_points.py``)."""
    return {p.point for name in SCENARIOS for p in crash_points(dry_run(name))}


@functools.cache
def explore(name: str) -> tuple[list[CrashPoint], set[CrashPoint]]:
    scenario = SCENARIOS[name]
    db, other = scenario.db, SRC if scenario.db == DST else DST
    mem, start = _prepared(name)
    other_before = read_state(mem, other)
    before = read_state(mem, db)
    scenario.run(Engine(mem))
    after = read_state(mem, db)
    assert (before != after) == scenario.changes
    points = crash_points(dry_run(name))
    landed: set[CrashPoint] = set()
    for point in points:
        mem.restore_state(start)
        mem.faults.fired.clear()
        mem.faults.arm(point)
        with pytest.raises(SimulatedCrash):
            scenario.run(Engine(mem))
        mem.faults.clear()
        assert mem.faults.fired == [str(point)], f"{point} did not fire exactly once"
        assert read_state(mem, other) == other_before, f"{name}: {point} changed {other}"
        state = read_state(mem, db)
        assert state in (before, after), f"{name}: {point} left {db} neither before nor after"
        if state == after and before != after:
            landed.add(point)
        elif db == DST:  # running it again completes it (removing what the crash left)
            scenario.run(Engine(mem))
            assert read_state(mem, DST) == after, f"{name}: the rerun after {point}"
            if not scenario.changes:
                assert not mem.snapshot_state().keys() - start.keys(), "leftovers kept"
        assert DbKeys(DST).fork_record not in mem.dump() or after is None
    return points, landed


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_crash_at_every_store_operation_leaves_before_or_after(name: str) -> None:
    points, landed = explore(name)
    if SCENARIOS[name].changes:
        # Only a crash after the last commit (the head written) lands the operation.
        assert landed == {[p for p in points if p.after_commit][-1]}
    assert len(points) == len(set(points))
