"""Crash-suite tools shared by the v1 VFS and migration suites (the engine's suite has its
own scenario runner): the crash points of an action, found by a dry run on the memory store,
and running an action with one named point armed (``sqlkv.store.faults``)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from sqlkv.store import MemoryStore
from sqlkv.store.faults import CrashPoint, SimulatedCrash, crash_points


def plan_of(store: MemoryStore, action: Callable[[], object]) -> list[CrashPoint]:
    """Every crash point of ``action`` (which runs once here), in the order it reaches them."""
    with store.recording() as ops:
        action()
    return crash_points([op.point for op in ops])


def crash(store: MemoryStore, point: CrashPoint, action: Callable[[], object]) -> BaseException:
    """Run ``action`` with ``point`` armed: it must end in an exception (returned) after the
    point fired, exactly once."""
    fired = len(store.faults.fired)
    store.faults.arm(point)
    try:
        with pytest.raises(BaseException) as info:
            action()
    finally:
        store.faults.clear()
    assert store.faults.fired[fired:] == [str(point)], point
    return info.value


def crash_in_chain(exc: BaseException | None) -> SimulatedCrash | None:
    """The simulated crash ``exc`` is, or was caused by (SQLite wraps it in its errors)."""
    while exc is not None and not isinstance(exc, SimulatedCrash):
        exc = exc.__context__ or exc.__cause__
    return exc
