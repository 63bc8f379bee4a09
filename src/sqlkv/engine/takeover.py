"""open / takeover: create the head, or become the database's new owner.

One store transaction: read META serializably; create it if absent (and allowed), else
bump the generation (fencing every earlier owner out) and remove what a crashed owner may
have left: DELTAs above head_txid (abandoned staged commits), staging manifests and the
DELTA parts they name. Page 1 and the hinted pages (bounded by ``preload_bytes``) are read
in the same transaction, so a cold start costs one round trip.

No crash leaves a PIDX row naming a missing delta part (the row, the delta and META are
written in one transaction; compaction drops rows before their deltas), so such a row
means the store lost data: ``CorruptionError``, and nothing is "cleaned up" — removing
the row would silently serve an older copy of the page. Every value read is checked.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from sqlkv.engine.config import EngineConfig
from sqlkv.engine.head import CREATION_TXID, Head
from sqlkv.engine.keys import DbKeys
from sqlkv.engine.pidx import PidxMap, parse_rows
from sqlkv.engine.read import PageSource, check_pgnos
from sqlkv.engine.staging import drop_staged_rows
from sqlkv.errors import CorruptionError, DatabaseNotFound
from sqlkv.store import Transaction


@dataclass
class TakeoverOutcome:
    head: Head
    pages: dict[int, bytes]
    pidx: PidxMap
    orphans_removed: int = 0
    created: bool = False


def open_database(
    tr: Transaction,
    db: str,
    keys: DbKeys,
    config: EngineConfig,
    preload: Sequence[int],
    preload_bytes: int,
    create: bool,
) -> TakeoverOutcome:
    raw = tr.get(keys.meta)
    if raw is None:
        if not create:
            raise DatabaseNotFound(db)
        head = Head(
            generation=1,
            head_txid=CREATION_TXID,
            next_txid=CREATION_TXID + 1,
            materialized_txid=CREATION_TXID,
            db_size_pages=0,
            page_size=config.page_size,
            shard_size=config.shard_size,
            created_ms=int(time.time() * 1000),
            storage_quota=config.default_quota_bytes,
        )
        head = head.with_changes(storage_used=len(keys.meta) + len(head.encode()))
        # Leftovers of an interrupted delete (META goes first) must not join the new head.
        tr.clear_range(*keys.all_range())
        tr.set(keys.meta, head.encode())
        return TakeoverOutcome(head, {}, {}, created=True)

    old = Head.decode(raw, db)
    orphans = 0
    used = old.storage_used
    # One round trip: staging manifests, any DELTA above head, and the PIDX rows.
    staged, above, pidx_rows = tr.get_ranges(
        [
            (*keys.stage_range(), 0, False),
            (*keys.deltas_from(old.head_txid + 1), 1, False),
            (*keys.pidx_range(), 0, False),
        ]
    )
    # Staged parts (manifest + DELTA chunks) that were never finalized belong to no commit.
    used -= drop_staged_rows(tr, keys, staged)
    orphans += len(staged)
    # Any other DELTA above head was never committed (nor counted: it has no manifest).
    if above:
        orphans += 1
        tr.clear_range(*keys.deltas_from(old.head_txid + 1))
    pidx = parse_rows(keys, old, pidx_rows)
    dangling = _dangling_rows(tr, keys, pidx)
    if dangling:
        txid, part = pidx[dangling[0]]
        raise CorruptionError(
            db,
            "DELTA",
            f"txid {txid} part {part}",
            f"the PIDX rows of {len(dangling)} page(s) (first: page {dangling[0]}) name delta "
            "parts that are missing from the store",
        )

    head = old.with_changes(generation=old.generation + 1, storage_used=used)
    tr.set(keys.meta, head.encode())

    wanted = [1] + [p for p in check_pgnos(preload) if p != 1]
    budget = max(1, preload_bytes // head.page_size)
    wanted = [p for p in wanted if p <= head.db_size_pages][:budget]
    pages = PageSource(keys, head, pidx).read(tr, wanted) if wanted else {}
    return TakeoverOutcome(
        head, {p: v for p, v in pages.items() if v is not None}, pidx, orphans_removed=orphans
    )


def _dangling_rows(tr: Transaction, keys: DbKeys, pidx: PidxMap) -> list[int]:
    """PIDX rows whose DELTA part has no first chunk."""
    locations = sorted(set(pidx.values()))
    if not locations:
        return []
    firsts = tr.get_many([keys.delta_chunk(t, p, 0) for t, p in locations], snapshot=True)
    missing = {loc for loc, v in zip(locations, firsts, strict=True) if v is None}
    return [pgno for pgno, loc in pidx.items() if loc in missing]
