"""The guarded commit: the one way a commit (or finalize) lands in this engine.

``land`` is the entry both ``Engine.commit`` / ``Engine.commit_finalize`` (through
``commit_one``) and the group commit (``commit_group.py``) use. It holds the ``turn`` of
every database it commits (``MetaCache.turn``: the striped locks this engine's compaction
applies take around their store operation, so a commit never races a pass's apply in this
engine; across engines the guard on META decides), runs the one store transaction on the
META this engine knows (guarded, no META read) or, where it knows none, reading META
serializably, and, still in turn, publishes what landed (``landed``): the acknowledged
head, the META cache, the PIDX map, the commit metrics and the compaction notice.

``commit_one`` adds the retry policy of one commit: a failed guard is tried once more on
the META it answered, then (as after an engine error raised on an assumed META: a refusal,
or rows that disagree with a stale head) decided again from META read serializably. A
``FenceMismatch`` that stands forgets the database's cached META; a refusal is counted.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from sqlkv.engine.api import CommitResult
from sqlkv.engine.commit import CommitOutcome
from sqlkv.errors import EngineError, FenceMismatch, GuardFailed, SqlkvError
from sqlkv.store import Transaction

if TYPE_CHECKING:
    from sqlkv.engine.engine import Engine

log = logging.getLogger("sqlkv.engine")

Known = Mapping[str, bytes | None]
"""The META each commit guards, per database (None: read it serializably)."""
Build = Callable[[Known], Callable[[Transaction], Sequence[CommitOutcome]]]
"""Builds the store transaction of the commits from the METAs to guard."""


def turns(engine: Engine, dbs: Sequence[str]) -> list[threading.RLock]:
    """The turns of ``dbs``, each stripe once, in the one order every holder of several
    takes them (no deadlock between two groups, nor with a compaction apply, which holds
    one). The caller acquires them in this order and releases them."""
    if len(dbs) == 1:
        return [engine.heads.turn(dbs[0])]
    locks = {id(lock): lock for lock in map(engine.heads.turn, dbs)}
    return [locks[key] for key in sorted(locks)]


def land(
    engine: Engine,
    dbs: Sequence[str],
    name: str,
    path: str,
    build: Build,
    known: Known | None = None,
    start: float | None = None,
) -> list[CommitResult]:
    """Land the commits of ``dbs`` (distinct databases) in one store transaction, in turn;
    each one's result, in order. ``known``: the META to guard per database (default: this
    engine's cache). Errors (``GuardFailed``, refusals, the store's) are the caller's;
    ``path`` and ``start`` (``perf_counter`` when the commit began): for the metrics."""
    start = time.perf_counter() if start is None else start
    held = turns(engine, dbs)
    for lock in held:
        lock.acquire()
    try:
        if known is None:
            known = {db: engine.heads.get(db) for db in dbs}
        outs = engine.store.transact(build(known), name=name)
        return [landed(engine, db, out, path, start) for db, out in zip(dbs, outs, strict=True)]
    finally:
        for lock in reversed(held):
            lock.release()


def commit_one(
    engine: Engine,
    db: str,
    name: str,
    path: str,
    attempt: Callable[[bytes | None], Callable[[Transaction], CommitOutcome]],
) -> CommitResult:
    """One commit or finalize (``attempt(known)`` builds its transaction), with the retry
    policy of the module docstring; a refusal is counted (``Engine._refused``)."""
    start = time.perf_counter()
    since = engine.acked.now()

    def build(known: Known) -> Callable[[Transaction], Sequence[CommitOutcome]]:
        tx = attempt(known[db])
        return lambda tr: (tx(tr),)

    try:
        with engine.heads.turn(db):
            known = engine.heads.get(db)
            for _ in range(2):
                if known is None:
                    break
                try:
                    return land(engine, (db,), name, path, build, {db: known}, start)[0]
                except GuardFailed as exc:
                    known = exc.current
                except EngineError:
                    break
            return land(engine, (db,), name, path, build, {db: None}, start)[0]
    except SqlkvError as exc:
        if isinstance(exc, FenceMismatch):
            engine.heads.forget(db)
        engine._refused(exc, db, since)
        raise


def landed(engine: Engine, db: str, out: CommitOutcome, path: str, start: float) -> CommitResult:
    """Publish a commit that landed: acknowledged head, META cache, PIDX map, metrics,
    compaction notice."""
    head = out.head
    engine.acked.ack(db, head)
    if out.meta is not None:
        engine.heads.put(db, *out.meta)
    if out.pidx is None:
        engine.metrics.committed(path, time.perf_counter() - start)
    else:
        engine.pidx.publish(db, head, out.pidx)
        behind = (head.delta_count, head.head_txid - head.materialized_txid)
        engine.metrics.committed(path, time.perf_counter() - start, out.pages, db, behind)
        if engine.compactor is not None:
            engine.compactor.notify(db, head)
    if log.isEnabledFor(logging.DEBUG):
        log.debug(
            "commit landed",
            extra={
                "db": db,
                "head_txid": head.head_txid,
                "pages": out.pages,
                "already_applied": out.already_applied,
            },
        )
    return CommitResult(head, already_applied=out.already_applied)
