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
from sqlkv.engine.ledger import Ledger
from sqlkv.engine.pidx import Location, PidxMap, freeze, parse_rows
from sqlkv.engine.read import PageSource, check_pgnos
from sqlkv.engine.retention import put_window
from sqlkv.engine.staging import drop_staged_rows
from sqlkv.errors import CorruptionError, DatabaseNotFound


@dataclass
class TakeoverOutcome:
    head: Head
    pages: dict[int, bytes]
    pidx: PidxMap
    orphans_removed: int = 0
    created: bool = False


def open_database(
    ledger: Ledger,
    config: EngineConfig,
    preload: Sequence[int],
    preload_bytes: int,
    create: bool,
) -> TakeoverOutcome:
    db, keys = ledger.db, ledger.keys
    old = ledger.read_head_if_any()
    if old is None:
        if not create:
            raise DatabaseNotFound(db)
        # Leftovers of an interrupted delete (META goes first) must not join the new head.
        ledger.drop_uncounted_range(keys.all_range())
        put_window(ledger, round(config.retention_s * 1000))  # docs/history.md
        head = ledger.write_head(
            Head(
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
        )
        return TakeoverOutcome(head, {}, freeze({}), created=True)

    orphans = 0
    # One round trip: staging manifests, any DELTA above head, and the PIDX rows.
    staged, above, pidx_rows = ledger.get_ranges(
        [
            (*keys.stage_range(), 0, False),
            (*keys.deltas_from(old.head_txid + 1), 1, False),
            (*keys.pidx_range(), 0, False),
        ],
        point="read_leftovers",
    )
    # Staged parts (manifest + DELTA chunks) that were never finalized belong to no commit.
    drop_staged_rows(ledger, staged)
    orphans += len(staged)
    # Any other DELTA above head was never committed (nor counted: it has no manifest).
    if above:
        orphans += 1
        ledger.drop_uncounted_range(keys.deltas_from(old.head_txid + 1))
    pidx = parse_rows(keys, old, pidx_rows)
    dangling = _dangling_rows(ledger, pidx)
    if dangling:
        txid, part = pidx[dangling[0]]
        raise CorruptionError(
            db,
            "DELTA",
            f"txid {txid} part {part}",
            f"the PIDX rows of {len(dangling)} page(s) (first: page {dangling[0]}) name delta "
            "parts that are missing from the store",
        )

    head = ledger.write_head(old.with_changes(generation=old.generation + 1))

    wanted = [1] + [p for p in check_pgnos(preload) if p != 1]
    budget = max(1, preload_bytes // head.page_size)
    wanted = [p for p in wanted if p <= head.db_size_pages][:budget]
    frozen = freeze(pidx)
    pages = PageSource(keys, head, frozen).read(ledger, wanted, "read_pages") if wanted else {}
    return TakeoverOutcome(
        head, {p: v for p, v in pages.items() if v is not None}, frozen, orphans_removed=orphans
    )


def _dangling_rows(ledger: Ledger, pidx: dict[int, Location]) -> list[int]:
    """PIDX rows whose DELTA part has no first chunk."""
    locations = sorted(set(pidx.values()))
    if not locations:
        return []
    keys = ledger.keys
    firsts = ledger.get_many(
        [keys.delta_chunk(t, p, 0) for t, p in locations], snapshot=True, point="check_deltas"
    )
    missing = {loc for loc, v in zip(locations, firsts, strict=True) if v is None}
    return [pgno for pgno, loc in pidx.items() if loc in missing]
