"""Named fault points (``sqlkv.store.faults``): every registered point is crashed at by a
crash suite — the engine's (``test_crash_points.py``, ``test_crash_points_warm.py``,
``test_crash_fork.py``), the v1 VFS's
(``tests/vfs_v1/test_crash.py``) and migration's (``tests/migrate/test_migrate.py``) — as apsw
and LiteFS check theirs; and the memory store's fault plan keeps its contract.

Each suite's ``crash_plan()`` dry-runs the same actions its tests crash at, point by point,
asserting each armed point fires; so a registered point missing from every plan is a step
no test ever crashes at.
"""

from __future__ import annotations

import pytest
import test_crash_fork as fork_suite
import test_crash_points as engine_suite
import test_crash_points_warm as warm_suite
from migrate import test_migrate as migrate_suite
from vfs_v1 import test_crash as v1_suite

from sqlkv.errors import RetriesExhausted, StoreUnavailable
from sqlkv.store import MemoryStore
from sqlkv.store.faults import (
    POINTS,
    CrashPoint,
    SimulatedCrash,
    UnregisteredPoint,
    crash_points,
)
from sqlkv.store.faults import __name__ as faults_module


def test_every_registered_fault_point_is_exercised_by_the_crash_suites() -> None:
    plans = {
        "engine": engine_suite.crash_plan(),
        "fork": fork_suite.crash_plan(),
        "engine-warm": warm_suite.crash_plan(),
        "v1": v1_suite.crash_plan(),
        "migrate": migrate_suite.crash_plan(),
    }
    exercised = set().union(*plans.values())
    missing = sorted(set(POINTS) - exercised)
    assert not missing, (
        f"fault points no crash suite crashes at: {missing}; add a scenario that reaches "
        f"them to a crash suite, or remove them from {faults_module}.POINTS"
    )
    assert exercised <= set(POINTS)


def test_fault_point_names_are_transaction_dot_step() -> None:
    for name in POINTS:
        transaction, _, step = name.rpartition(".")
        assert transaction and step.isidentifier(), name


def test_an_unregistered_point_is_refused_by_the_memory_store() -> None:
    store = MemoryStore()
    with pytest.raises(UnregisteredPoint, match=r"'commit\.read_typo' is not a registered"):
        store.transact(lambda tr: tr.get(b"k", point="read_typo"), name="commit")
    with pytest.raises(UnregisteredPoint):
        store.faults.crash_at("commit.never")


def test_an_unnamed_store_operation_has_no_crash_point() -> None:
    assert store_points(lambda tr: tr.get(b"k")) == [""]
    with pytest.raises(UnregisteredPoint, match="no fault point name"):
        crash_points([""])


def store_points(fn: object) -> list[str]:
    store = MemoryStore()
    with store.recording() as ops:
        store.transact(fn)  # type: ignore[arg-type]
    return [op.point for op in ops]


def test_crash_points_are_before_each_operation_and_after_each_commit() -> None:
    names = ["commit.read_meta", "compact.read_delta", "compact.read_delta", "commit.apply"]
    assert crash_points(names) == [
        CrashPoint("commit.read_meta", 1),
        CrashPoint("compact.read_delta", 1),
        CrashPoint("compact.read_delta", 2),
        CrashPoint("commit.apply", 1),
        CrashPoint("commit.apply", 1, after_commit=True),
    ]


def test_a_crash_after_is_only_for_a_commit() -> None:
    with pytest.raises(ValueError, match="only a commit"):
        MemoryStore().faults.crash_at("commit.read_meta", after_commit=True)


def test_a_failure_is_a_retryable_production_error_that_transact_retries() -> None:
    store = MemoryStore()
    store.faults.fail_at("commit.read_meta", 1)
    value = store.transact(lambda tr: tr.get(b"k", point="read_meta"), name="commit")
    assert value is None and store.faults.fired == ["fail commit.read_meta #1"]
    assert store.stats.conflicts == 1
    store.faults.fail_at("commit.read_meta", 1, error=StoreUnavailable)
    with pytest.raises(RetriesExhausted) as info:
        store.transact(lambda tr: tr.get(b"k", point="read_meta"), name="commit", max_attempts=1)
    assert isinstance(info.value.last, StoreUnavailable) and info.value.last.retryable


def test_a_crash_after_a_commit_applies_it_and_loses_the_answer() -> None:
    store = MemoryStore()
    store.faults.crash_at("commit.apply", after_commit=True)
    with pytest.raises(SimulatedCrash):
        store.transact(lambda tr: tr.set(b"k", b"v"), name="commit")
    assert store.dump() == {b"k": b"v"}
    store.faults.crash_at("commit.apply")
    with pytest.raises(SimulatedCrash):
        store.transact(lambda tr: tr.set(b"k", b"w"), name="commit")
    assert store.dump() == {b"k": b"v"}


def test_test_only_errors_are_outside_the_production_tree() -> None:
    import sqlkv.errors
    from sqlkv.server.codes import CODES

    assert not issubclass(SimulatedCrash, sqlkv.errors.SqlkvError)
    assert not issubclass(SimulatedCrash, Exception)
    assert not hasattr(sqlkv.errors, "InjectedFault")
    assert not hasattr(sqlkv.errors, "SimulatedCrash")
    assert all(cls.__module__ == "sqlkv.errors" for cls in CODES.values())
