"""Crash at every store operation of the one-round-trip paths: operations on the owner's
WARM engine (it knows META and the PIDX map), which ``test_crash_points.py`` (a fresh
engine per run) never reaches: the guarded commit, the guarded finalize, a commit whose
guard fails and is retried on the META it answered, ``get_pages`` in one read, and a
compaction pass on the owner's engine. A restarted engine must find the database exactly
before or exactly after the operation. ``crash_plan`` feeds ``test_fault_points.py``.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from engine_support import Owner, page_of
from test_crash_points import CONFIG, NAME, restart_and_read

from sqlkv.engine import Engine
from sqlkv.store import MemoryStore
from sqlkv.store.faults import CrashPoint, SimulatedCrash, crash_points

CID = uuid.UUID(int=11).bytes


@dataclass
class Warm:
    mem: MemoryStore
    owner: Owner
    txid: int = 0  # the staged commit's


def _warm(other_engine_compacts: bool = False, staged: bool = False) -> Warm:
    mem = MemoryStore()
    owner = Owner.open(Engine(mem, CONFIG), NAME)
    owner.commit({p: page_of(p) for p in range(1, 151)})
    owner.commit({p: page_of(p + 1000) for p in range(100, 151, 3)})  # the engine is warm
    if other_engine_compacts:
        Engine(mem, CONFIG).compact(NAME)  # META and PIDX change behind the owner's back
    txid = 0
    if staged:
        txid = owner.engine.commit_stage(NAME, owner.generation, None, 0, {3: page_of(333)}).txid
    return Warm(mem, owner, txid)


def _commit(w: Warm) -> object:
    o = w.owner
    pages = {p: page_of(p * 7) for p in range(1, 120, 2)}
    return o.engine.commit(NAME, o.generation, o.head_txid, pages, 150, commit_id=CID)


def _finalize(w: Warm) -> object:
    o = w.owner
    return o.engine.commit_finalize(NAME, o.generation, o.head_txid, w.txid, 150, commit_id=CID)


SCENARIOS: dict[str, tuple[Callable[[], Warm], Callable[[Warm], object], bool]] = {
    # name: (prepare, run, changes pages)
    "commit-guarded": (_warm, _commit, True),
    "commit-guard-failed": (functools.partial(_warm, other_engine_compacts=True), _commit, True),
    "finalize-guarded": (functools.partial(_warm, staged=True), _finalize, True),
    "get_pages-warm": (
        _warm,
        lambda w: w.owner.engine.get_pages(NAME, w.owner.generation, range(1, 151)),
        False,
    ),
    "compact-warm": (_warm, lambda w: w.owner.engine.compact(NAME), False),
}


@functools.cache
def dry_run(name: str) -> list[str]:
    prepare, run, _ = SCENARIOS[name]
    w = prepare()
    with w.mem.recording() as ops:
        run(w)
    return [op.point for op in ops]


def crash_plan() -> set[str]:
    """Every fault point this suite crashes at (``test_fault_points.py``)."""
    return {p.point for name in SCENARIOS for p in crash_points(dry_run(name))}


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_a_crash_on_the_warm_path_leaves_before_or_after(name: str) -> None:
    prepare, run, changes = SCENARIOS[name]
    w = prepare()
    base = w.owner.head_txid
    start = w.mem.snapshot_state()
    before = restart_and_read(w.mem, base)
    w.mem.restore_state(start)
    w = prepare()
    run(w)
    after = restart_and_read(w.mem, base)
    assert (before != after) == changes
    points = crash_points(dry_run(name))
    landed: set[CrashPoint] = set()
    for point in points:
        w = prepare()
        w.mem.faults.arm(point)
        with pytest.raises(SimulatedCrash):
            run(w)
        assert w.mem.faults.fired == [str(point)], f"{point} did not fire exactly once"
        w.mem.faults.clear()
        state = restart_and_read(w.mem, base)
        assert state in (before, after), f"{name}: {point} left a state between"
        if state == after and before != after:
            landed.add(point)
    if changes:
        assert landed == {points[-1]} and points[-1].after_commit


def test_the_warm_paths_are_the_operations_of_the_issue() -> None:
    assert dry_run("commit-guarded") == ["commit.apply"]
    assert dry_run("get_pages-warm") == ["get_pages.read_all"]
    assert dry_run("commit-guard-failed") == ["commit.apply", "commit.read_pidx", "commit.apply"]
    assert dry_run("finalize-guarded") == ["finalize.read_staged", "finalize.apply"]
