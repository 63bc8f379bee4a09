"""commit: one SQLite transaction's dirty pages become the next txid, in one store
transaction: read META serializably (or, when the engine knows META, guard it instead:
``known``, one store round trip), check the fence, write the DELTA parts, the PIDX rows and
the new META. A shrink removes PIDX rows and shard pages above the new end.
An encoded delta over ``max_delta_bytes`` answers ``CommitTooLarge`` (use stage/finalize);
one that would exceed the quota answers ``QuotaExceeded``; either way nothing changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

from sqlkv.engine.apply import check_pages, fence_commit, record_delta, set_pidx_rows, shrink
from sqlkv.engine.blobs import blob_size, encode_pages
from sqlkv.engine.config import EngineConfig
from sqlkv.engine.facts import facts_size, record_facts
from sqlkv.engine.head import Head
from sqlkv.engine.ledger import Ledger
from sqlkv.engine.pidx import PidxCache, PidxMap, freeze, pidx_row_bytes
from sqlkv.engine.staging import drop_all_staged
from sqlkv.errors import CommitTooLarge

TRANSACTION_OVERHEAD = 4096
"""Room kept for META, the delta directory row and shrink clears in a commit."""


@dataclass
class CommitOutcome:
    head: Head
    pidx: PidxMap | None  # None when nothing changed (an already applied retry)
    already_applied: bool = False
    pages: int = 0
    meta: tuple[Head, bytes] | None = None  # META as written (what a next commit may guard)


def encode_parts(
    pages: list[tuple[int, bytes]], txid: int, commit: int, config: EngineConfig
) -> list[bytes]:
    """The delta's LTX parts: ``part_pages`` pages each, in page order."""
    step = config.part_pages
    return [
        encode_pages(pages[i : i + step], txid, commit, config.page_size)
        for i in range(0, len(pages), step)
    ]


def _part_pages(
    ordered: list[tuple[int, bytes]], parts: int, step: int
) -> list[tuple[int, list[int]]]:
    return [(n, [p for p, _ in ordered[n * step : (n + 1) * step]]) for n in range(parts)]


def commit_pages(
    ledger: Ledger,
    config: EngineConfig,
    cache: PidxCache,
    generation: int,
    expected_head_txid: int,
    pages: dict[int, bytes],
    db_size_pages: int,
    commit_id: bytes,
    known: bytes | None = None,
) -> CommitOutcome:
    # A commit that adds no delta (a shrink, a fence probe) is never held back.
    head, applied = fence_commit(
        ledger,
        config,
        generation,
        expected_head_txid,
        commit_id,
        db_size_pages,
        adds_delta=bool(pages),
        known=known,
    )
    if applied:
        return CommitOutcome(head, None, already_applied=True)
    ordered = sorted(pages.items())
    check_pages(ordered, head.page_size, db_size_pages)

    txid = head.next_txid
    parts = encode_parts(ordered, txid, max(db_size_pages, 1), config)
    encoded = sum(len(p) for p in parts)
    if encoded > config.max_delta_bytes:
        raise CommitTooLarge(encoded, config.max_delta_bytes)
    # The PIDX rows go into the same store transaction: many small pages can fill it too.
    keys = ledger.keys
    limits = ledger.limits
    key_len = len(keys.delta_chunk(0, 0, 0))
    needed = (
        ledger.size
        + sum(blob_size(p, key_len, limits.max_value_bytes) for p in parts)
        + len(ordered) * pidx_row_bytes(keys)
        + facts_size(len(ordered), len(parts))
        + TRANSACTION_OVERHEAD
    )
    if needed > limits.max_transaction_bytes:
        raise CommitTooLarge(needed, limits.max_transaction_bytes)

    pidx = dict(cache.rows_for(ledger, ledger.db, keys, head))
    if head.next_txid > head.head_txid + 1:
        # A txid was reserved by commit_stage and never finalized: the owner gave that large
        # commit up (it commits something else now), so its staged parts go.
        drop_all_staged(ledger)
    shards_removed = shrink(ledger, head, db_size_pages, pidx, txid)
    located: dict[int, tuple[int, int]] = {}
    step = config.part_pages
    delta_bytes = 0
    for n, data in enumerate(parts):
        delta_bytes += ledger.put_blob(partial(keys.delta_chunk, txid, n), data)
        for pgno, _ in ordered[n * step : (n + 1) * step]:
            located[pgno] = (txid, n)
    set_pidx_rows(ledger, pidx, located)
    live = 0
    if parts:
        record_delta(ledger, txid, delta_bytes)
        live = 1
    record_facts(
        ledger, head.head_txid, txid, db_size_pages, _part_pages(ordered, len(parts), step)
    )
    new_head = ledger.write_head(
        head.with_changes(
            head_txid=txid,
            next_txid=txid + 1,
            db_size_pages=db_size_pages,
            last_commit_id=commit_id,
            delta_bytes=head.delta_bytes + delta_bytes,
            delta_count=head.delta_count + live,
            pidx_count=len(pidx),
            shard_count=head.shard_count - shards_removed,
        ),
        check_quota=True,
        pages=len(ordered),
        delta_bytes=delta_bytes,
    )
    return CommitOutcome(new_head, freeze(pidx), pages=len(ordered), meta=ledger.written)
