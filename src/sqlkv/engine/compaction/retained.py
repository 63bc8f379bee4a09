"""A compaction pass while history is retained (docs/history.md): one store transaction.

When the database has a retention record, a pass must keep what the window needs (retired
shard versions, buried deltas, history facts), which ``retention.Keeper`` decides with
reads and writes interleaved through the ledger. Such a pass runs as one store
transaction that reads META serializably (the fence), as every pass did before issue 13;
``Engine.compact`` sends every other pass through ``fold.plan_pass`` and ``fold.apply_pass``
(a read-only plan and one guarded apply). The body below is that single-transaction pass.
"""

from __future__ import annotations

import struct
from functools import partial

from sqlkv.engine.apply import check_generation, decode_shard
from sqlkv.engine.blobs import encode_pages, read_blob
from sqlkv.engine.compaction.fold import PassOutcome, choose_shards
from sqlkv.engine.facts import drop_facts_below
from sqlkv.engine.keys import DbKeys
from sqlkv.engine.ledger import Ledger, StoreReader
from sqlkv.engine.pidx import PIDX_VALUE_BYTES, Location, PidxCache, freeze
from sqlkv.engine.retention import Keeper
from sqlkv.engine.seal import corrupt, unseal
from sqlkv.errors import CorruptionError, LtxError
from sqlkv.ltx import read_page, read_page_index
from sqlkv.ltx.header import PageIndexEntry


class _DeltaReader:
    """Delta parts fetched once per pass, with their page index."""

    def __init__(self, tr: StoreReader, keys: DbKeys) -> None:
        self._tr = tr
        self._keys = keys
        self._parts: dict[Location, tuple[bytes, dict[int, PageIndexEntry]]] = {}

    def page(self, pgno: int, loc: Location) -> bytes:
        where = f"txid {loc[0]} part {loc[1]}"
        name = self._keys.name
        entry = self._parts.get(loc)
        try:
            if entry is None:
                blob = read_blob(
                    self._tr, self._keys, self._keys.delta_part_range(*loc), "read_delta"
                )
                if blob is None:
                    raise CorruptionError(
                        name, "DELTA", where, f"page {pgno}'s PIDX row names it; it is missing"
                    )
                entry = self._parts[loc] = (blob, read_page_index(blob))
            page = read_page(entry[0], pgno, entry[1])
        except LtxError as exc:
            raise CorruptionError(name, "DELTA", where, f"its LTX file: {exc}") from exc
        if page is None:
            raise CorruptionError(
                name, "DELTA", where, f"it does not hold page {pgno}, which its PIDX row names"
            )
        return page


def fold_pass(
    ledger: Ledger,
    cache: PidxCache,
    shards_per_pass: int,
    expected_generation: int | None,
) -> PassOutcome:
    db, keys = ledger.db, ledger.keys
    head = ledger.read_head()
    if expected_generation is not None:
        check_generation(db, head, expected_generation)
    published = cache.rows_for(ledger, db, keys, head)
    pidx = dict(published)
    keeper = Keeper(ledger, head)  # what the retention window keeps (docs/history.md)
    budget = ledger.limits.max_transaction_bytes // 3
    deltas = _DeltaReader(ledger, keys)
    shard_txid = max(2, head.head_txid)
    shards_written = pages_folded = 0
    shard_count = head.shard_count
    for sid, pgnos in choose_shards(published, head.shard_size, shards_per_pass).items():
        if keeper.active and shards_written and ledger.size > budget:
            break  # retired copies double a pass's bytes: stay well inside one transaction
        shard = keys.shard_range(sid, sid + 1)
        old = ledger.get_range(*shard, snapshot=True, point="read_shard")
        pages: dict[int, bytes] = {}
        decoded = decode_shard(keys, old) if old else None  # checked before it is cleared
        keeper.replaced(sid, old, decoded)
        if decoded is not None:
            pages.update(decoded.pages)
            ledger.drop_range(shard, old)
            shard_count -= 1
        for pgno in pgnos:
            pages[pgno] = deltas.page(pgno, pidx.pop(pgno))
            ledger.drop(keys.pidx(pgno), PIDX_VALUE_BYTES)
        kept = sorted((p, d) for p, d in pages.items() if p <= head.db_size_pages)
        if kept:
            blob = encode_pages(kept, shard_txid, head.db_size_pages, head.page_size)
            ledger.put_blob(partial(keys.shard_chunk, sid), blob)
            shard_count += 1
        shards_written += 1
        pages_folded += len(pgnos)

    # Every delta older than the oldest one still referenced is dead.
    first_live = min((t for t, _ in pidx.values()), default=head.head_txid + 1)
    freed_delta = deleted = 0
    for key, value in ledger.get_range(
        *keys.delta_dir_range(head.materialized_txid + 1, first_live),
        snapshot=True,
        point="read_delta_dir",
    ):
        txid = keys.delta_dir_txid(key)
        payload = unseal(keys, key, value)
        if len(payload) != 8:
            raise corrupt(keys, key, f"a directory row of {len(payload)} bytes is malformed")
        (size,) = struct.unpack(">Q", payload)
        if keeper.keeps_delta():
            keeper.bury(txid, size)  # folded, but older states in the window still read it
        else:
            ledger.drop_counted_range(keys.delta_txid_range(txid), size)
        ledger.drop_rows([(key, value)])
        freed_delta += size
        deleted += 1
    facts_bound = keeper.trim(first_live)
    out = PassOutcome(
        head, freeze(pidx), shards_written, pages_folded, deleted, pages_folded * head.page_size
    )
    materialized = max(head.materialized_txid, first_live - 1)
    # History facts below both the new materialized txid and what retention keeps describe
    # no readable state any more.
    moved = materialized != head.materialized_txid
    if (moved or keeper.window_ms or keeper.changed) and drop_facts_below(
        ledger, 0, min(materialized, facts_bound)
    ):
        out.history_changed = True
    out.history_changed = out.history_changed or keeper.changed
    out.retained_bytes = keeper.retained_bytes
    if out.changed or materialized != head.materialized_txid:
        out.head = ledger.write_head(
            head.with_changes(
                materialized_txid=materialized,
                delta_bytes=head.delta_bytes - freed_delta,
                delta_count=head.delta_count - deleted,
                fold_epoch=head.fold_epoch + 1,
                pidx_count=len(pidx),
                shard_count=shard_count,
            )
        )
    return out
