"""restore: make a retained past state of a database its newest state, as one new commit.

Built from the engine's public calls only, so it runs on any ``EngineApi`` (in process, as
``Engine.restore`` and ``sqlkv restore`` do, or over the network):

1. ``resolve(db, to)``: the target txid T (a txid, a time or a label);
2. ``open(db, create=False)``: a takeover. **The current owner is fenced out** (its next
   commit answers ``FenceMismatch``; it reopens and sees the restored state): sqlkv keeps
   no lease or liveness record — the generation is the only ownership record — so "refuse
   while an owner holds it" cannot be told apart from "an owner crashed long ago";
3. ``changes_since(db, T)``: the pages written after T (one round trip), checked to be
   answered at the head this takeover saw (pages a shrink cut are in it too);
   ``snapshot(db, at=T)``: the size at T;
4. ``read_at(db, T, pages)`` in batches of ``READ_BATCH`` pages;
5. one ``commit`` of those pages with the size at T (the shrink drops every page above
   it), or ``commit_stage`` batches and one ``commit_finalize`` when it is large: atomic
   either way, fenced like any commit (``expected_head_txid`` = the head of step 2).

A crash anywhere leaves the database as it was (at most with a new generation, or staged
parts that the next takeover removes) or restored. The state before the restore stays in
the history like any other commit, so a restore is undone by restoring to the txid it
reports as ``before_txid``. docs/fork-restore.md.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlkv.engine.api import CommitResult, EngineApi, Pages
from sqlkv.engine.head import Head
from sqlkv.errors import CommitTooLarge, FenceMismatch, InvalidRequest
from sqlkv.ltx import lock_pgno

log = logging.getLogger("sqlkv.engine.restore")

READ_BATCH = 1024
"""Pages per ``read_at`` call and per ``commit_stage`` call (4 MiB of pages)."""

Progress = Callable[[int, int], None]
"""``progress(done_pages, total_pages)`` read at the target so far."""


@dataclass(frozen=True)
class RestoreResult:
    head: Head  # the new head: its head_txid is the restore's commit
    target_txid: int  # the state restored
    before_txid: int  # the newest state before the restore (restore to it to undo)
    pages_written: int
    db_size_pages: int


def resolve_state(api: EngineApi, db: str, to: int | datetime | str) -> int:
    """The txid ``to`` names: itself, or what ``resolve`` answers for a time or a label."""
    return to if isinstance(to, int) else api.resolve(db, to)


def restore_database(
    api: EngineApi, db: str, to: int | datetime | str, progress: Progress | None = None
) -> RestoreResult:
    target = resolve_state(api, db, to)
    opened = api.open(db, create=False)
    head = opened.head
    if target > head.head_txid:
        raise InvalidRequest(
            f"txid {target} of database {db!r} is newer than its head {head.head_txid}"
        )
    changes = api.changes_since(db, target)
    if changes.txid != head.head_txid or changes.head.generation != head.generation:
        raise FenceMismatch(
            f"database {db!r} was taken over again while it was being restored; nothing was "
            "restored. Run the restore again",
            changes.head,
        )
    size = int(api.snapshot(db, at=target).db_size_pages)
    if changes.changed is None:  # the engine cannot tell: rewrite every page
        wanted = set(range(1, size + 1))
    else:  # pages written or cut by a shrink since the target
        wanted = {p for p in changes.changed if p <= size}
    wanted.discard(lock_pgno(head.page_size))
    pgnos = sorted(wanted)
    batches = [pgnos[i : i + READ_BATCH] for i in range(0, len(pgnos), READ_BATCH)]
    done = 0
    if progress:
        progress(0, len(pgnos))

    def read(batch: list[int]) -> Pages:
        nonlocal done
        got = api.read_at(db, target, batch).pages
        done += len(batch)
        if progress:
            progress(done, len(pgnos))
        return {p: v for p, v in got.items() if v is not None}

    cid = uuid.uuid4().bytes
    g, h = head.generation, head.head_txid
    result: CommitResult | None = None
    if len(batches) <= 1:
        pages = read(batches[0]) if batches else {}
        try:
            result = api.commit(db, g, h, pages, size, commit_id=cid)
        except CommitTooLarge:  # incompressible pages: stage them
            done = 0
    if result is None:  # staged: bounded memory, one atomic finalize
        txid = None
        for seq, batch in enumerate(batches):
            txid = api.commit_stage(db, g, txid, seq, read(batch)).txid
        assert txid is not None
        result = api.commit_finalize(db, g, h, txid, size, commit_id=cid)
    log.info(
        "database restored",
        extra={
            "db": db,
            "target_txid": target,
            "before_txid": head.head_txid,
            "head_txid": result.head.head_txid,
            "pages": len(pgnos),
        },
    )
    return RestoreResult(result.head, target, head.head_txid, len(pgnos), size)
