"""Group commit: several commits to DIFFERENT databases in one store transaction.

The engine server (``server/batcher.py``) collects the commits that arrive while one is
landing and lands them together: the store transaction's fixed cost (its snapshot, the
driver's BEGIN/COMMIT, the store's own version row and conflict log, the B-tree pages
every commit touches) is paid once per group instead of once per commit.

Each commit is built exactly as ``Engine.commit`` builds it (``commit.commit_pages`` on
its own ``Ledger``, its META guarded when the engine knows it, else read serializably),
and the group lands through the same entry (``guarded.land``: holding every database's
turn, so no compaction apply of this engine races it, and publishing each commit that
landed as ``Engine.commit`` does), so every database's fence is checked as when it
commits alone, and nothing is acknowledged before the one store transaction has landed.
A group is all or nothing in the store, so one commit must never fail the others:

- a commit whose checks refuse it while the group is built (fenced, behind, too large,
  a bad commit id; nothing was sent to the store) leaves the group and runs alone
  through ``Engine.commit``, which answers it as it would have without the group;
- a guard that fails at commit (``GuardFailed``: that database's META changed, say by
  a compaction pass; nothing was applied) names its database: the group runs again with
  that database's META as the store answered it (as ``Engine.commit`` retries on it), and
  if its guard fails once more, that commit runs alone and the others together;
- any other error of the store transaction (unavailable, retries exhausted: its outcome
  may be unknown on a network store) is every commit's answer, as each would have got it
  alone; none is retried here (the client settles an unknown outcome by its commit id).

At most one commit per database in a group (the caller's rule): two commits of one
database in one transaction would both be checked against the same stored META.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlkv.engine import guarded
from sqlkv.engine.api import CommitResult, Pages
from sqlkv.engine.apply import check_commit_id
from sqlkv.engine.commit import CommitOutcome, commit_pages
from sqlkv.engine.ledger import Ledger
from sqlkv.errors import GuardFailed, StoreError
from sqlkv.store import Transaction

if TYPE_CHECKING:
    from sqlkv.engine.engine import Engine


@dataclass(frozen=True)
class GroupedCommit:
    """The arguments of one ``Engine.commit``."""

    db: str
    generation: int
    expected_head_txid: int
    pages: Pages
    db_size_pages: int
    commit_id: bytes | None = None


Outcome = CommitResult | Exception


@dataclass
class GroupReport:
    """How a group landed (the server's metrics)."""

    together: int = 0  # commits that landed in the shared store transaction
    alone: int = 0  # commits of a group of several that ran alone, through Engine.commit
    guard_retries: int = 0  # group attempts repeated on a META the store answered


def commit_group(
    engine: Engine, commits: Sequence[GroupedCommit], report: GroupReport | None = None
) -> list[Outcome]:
    """Land ``commits`` (distinct databases), together where they can be: each one's
    ``CommitResult``, or the exception ``Engine.commit`` would have raised for it."""
    if len({c.db for c in commits}) != len(commits):
        raise ValueError("a commit group holds at most one commit per database")
    report = report if report is not None else GroupReport()
    results: dict[int, Outcome] = {}
    pending = list(range(len(commits)))
    answered: dict[str, bytes] = {}  # META a failed guard found, per database
    while len(pending) > 1:
        landed = _land_together(engine, [commits[i] for i in pending], answered)
        if isinstance(landed, list):
            results.update(zip(pending, landed, strict=True))
            report.together += len(pending)
            pending = []
        elif isinstance(landed, GuardFailed):  # once more, on what the store answered
            db = next(
                commits[i].db for i in pending if engine.keys(commits[i].db).meta == landed.key
            )
            assert landed.current is not None
            answered[db] = landed.current
            report.guard_retries += 1
        elif isinstance(landed, int):  # that one alone; the others together again
            alone = pending.pop(landed)
            results[alone] = _alone(engine, commits[alone])
            report.alone += 1
        else:  # the store refused the whole transaction: the same answer for each
            results.update((i, landed) for i in pending)
            pending = []
    for i in pending:  # a group of one, or the last one left of a group
        results[i] = _alone(engine, commits[i])
        report.alone += len(commits) > 1
    return [results[i] for i in range(len(commits))]


def _alone(engine: Engine, c: GroupedCommit) -> Outcome:
    try:
        return engine.commit(
            c.db,
            c.generation,
            c.expected_head_txid,
            c.pages,
            c.db_size_pages,
            commit_id=c.commit_id,
        )
    except Exception as exc:
        return exc


def _land_together(
    engine: Engine, commits: list[GroupedCommit], answered: dict[str, bytes]
) -> list[Outcome] | int | GuardFailed | Exception:
    """One store transaction for all of ``commits`` (``guarded.land``: in turn with this
    engine's compaction applies, published as ``Engine.commit`` publishes): their results;
    or the index of the one to run alone (its checks refused it, or its guard failed on a
    META the store had answered before); or the ``GuardFailed`` to retry on; or the
    store's error. ``answered``: META to guard instead of the engine's, per database."""
    building = [-1]  # the commit whose checks run now; -1: the store commits
    dbs = [c.db for c in commits]

    def build(known: guarded.Known) -> Callable[[Transaction], list[CommitOutcome]]:
        def tx(tr: Transaction) -> list[CommitOutcome]:
            outs = []
            for n, c in enumerate(commits):
                building[0] = n
                outs.append(
                    commit_pages(
                        Ledger(tr, c.db, engine.keys(c.db)),
                        engine.config,
                        engine.pidx,
                        c.generation,
                        c.expected_head_txid,
                        c.pages,
                        c.db_size_pages,
                        check_commit_id(c.commit_id),
                        answered.get(c.db) or known[c.db],
                    )
                )
            building[0] = -1
            return outs

        return tx

    try:
        return list(guarded.land(engine, dbs, "commit", "fast", build))
    except GuardFailed as exc:
        for n, c in enumerate(commits):
            if engine.keys(c.db).meta == exc.key:
                if c.db in answered or exc.current is None:
                    return n
                return exc
        return StoreError(f"a commit group's guard on {exc.key!r} failed: not a META it set")
    except Exception as exc:
        return building[0] if building[0] >= 0 else exc
