"""One compaction pass over one database, in one store transaction.

It folds the PIDX pages of up to ``shards_per_pass`` shards (those holding the oldest
unfolded txids first) into their SHARD blobs — the PIDX row names the newest copy, so
newest wins — deletes the folded PIDX rows, then deletes every delta older than the oldest
txid any remaining row refers to (with its directory row), and advances
``materialized_txid`` to just below that txid. META is read serializably, so a commit or
a takeover racing with the pass makes one of them retry: never a rewound head or a lost
commit. A pass given ``expected_generation`` is fenced (``FenceMismatch``, nothing written)
when a takeover happened since the caller looked.

A pass that changes anything bumps ``fold_epoch`` in META, which invalidates every
engine's PIDX cache for the database. Every value it reads is checked first (``seal``);
a damaged one raises ``CorruptionError`` and the pass writes nothing.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from functools import partial

from sqlkv.engine.apply import check_generation, decode_shard, read_head
from sqlkv.engine.blobs import encode_pages, read_blob, write_blob
from sqlkv.engine.head import Head
from sqlkv.engine.keys import DbKeys
from sqlkv.engine.pidx import PidxCache, PidxMap, pidx_row_bytes
from sqlkv.engine.seal import corrupt, unseal
from sqlkv.errors import CorruptionError, LtxError
from sqlkv.ltx import read_page, read_page_index
from sqlkv.ltx.header import PageIndexEntry
from sqlkv.store import Transaction


@dataclass
class PassOutcome:
    head: Head
    pidx: PidxMap
    shards_written: int = 0
    pages_folded: int = 0
    deltas_deleted: int = 0
    bytes_folded: int = 0

    @property
    def changed(self) -> bool:
        return bool(self.shards_written or self.pages_folded or self.deltas_deleted)


class _DeltaReader:
    """Delta parts fetched once per pass, with their page index."""

    def __init__(self, tr: Transaction, keys: DbKeys) -> None:
        self._tr = tr
        self._keys = keys
        self._parts: dict[tuple[int, int], tuple[bytes, dict[int, PageIndexEntry]]] = {}

    def page(self, pgno: int, loc: tuple[int, int]) -> bytes:
        where = f"txid {loc[0]} part {loc[1]}"
        name = self._keys.name
        entry = self._parts.get(loc)
        try:
            if entry is None:
                blob = read_blob(self._tr, self._keys, self._keys.delta_part_range(*loc))
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


def _choose_shards(pidx: PidxMap, shard_size: int, limit: int) -> dict[int, list[int]]:
    by_shard: dict[int, list[int]] = {}
    oldest: dict[int, int] = {}
    for pgno, (txid, _) in pidx.items():
        sid = pgno // shard_size
        by_shard.setdefault(sid, []).append(pgno)
        if txid < oldest.get(sid, 1 << 64):
            oldest[sid] = txid
    chosen = sorted(by_shard, key=lambda sid: (oldest[sid], sid))[:limit]
    return {sid: sorted(by_shard[sid]) for sid in chosen}


def fold_pass(
    tr: Transaction,
    db: str,
    keys: DbKeys,
    cache: PidxCache,
    shards_per_pass: int,
    expected_generation: int | None,
) -> PassOutcome:
    head = read_head(tr, db, keys)
    if expected_generation is not None:
        check_generation(db, head, expected_generation)
    pidx = dict(cache.rows_for(tr, db, keys, head))
    out = PassOutcome(head, pidx)
    used = head.storage_used
    chunk = tr.limits.max_value_bytes
    deltas = _DeltaReader(tr, keys)
    row_bytes = pidx_row_bytes(keys)
    shard_txid = max(2, head.head_txid)
    shard_count = head.shard_count
    for sid, pgnos in _choose_shards(pidx, head.shard_size, shards_per_pass).items():
        old = tr.get_range(*keys.shard_range(sid, sid + 1), snapshot=True)
        pages: dict[int, bytes] = {}
        if old:
            used -= sum(len(k) + len(v) for k, v in old)
            pages.update(decode_shard(keys, old).pages)
            tr.clear_range(*keys.shard_range(sid, sid + 1))
            shard_count -= 1
        for pgno in pgnos:
            pages[pgno] = deltas.page(pgno, pidx.pop(pgno))
            tr.clear(keys.pidx(pgno))
        used -= len(pgnos) * row_bytes
        kept = sorted((p, d) for p, d in pages.items() if p <= head.db_size_pages)
        if kept:
            blob = encode_pages(kept, shard_txid, head.db_size_pages, head.page_size)
            used += write_blob(tr, partial(keys.shard_chunk, sid), blob, chunk)
            shard_count += 1
        out.shards_written += 1
        out.pages_folded += len(pgnos)
        out.bytes_folded += len(pgnos) * head.page_size

    # Every delta older than the oldest one still referenced is dead.
    first_live = min((t for t, _ in pidx.values()), default=head.head_txid + 1)
    freed_delta = 0
    for key, value in tr.get_range(
        *keys.delta_dir_range(head.materialized_txid + 1, first_live), snapshot=True
    ):
        txid = keys.delta_dir_txid(key)
        payload = unseal(keys, key, value)
        if len(payload) != 8:
            raise corrupt(keys, key, f"a directory row of {len(payload)} bytes is malformed")
        (size,) = struct.unpack(">Q", payload)
        tr.clear_range(*keys.delta_txid_range(txid))
        tr.clear(key)
        freed_delta += size
        used -= size + len(key) + len(value)
        out.deltas_deleted += 1
    materialized = max(head.materialized_txid, first_live - 1)
    if out.changed or materialized != head.materialized_txid:
        out.head = head.with_changes(
            materialized_txid=materialized,
            storage_used=used,
            delta_bytes=head.delta_bytes - freed_delta,
            delta_count=head.delta_count - out.deltas_deleted,
            fold_epoch=head.fold_epoch + 1,
            pidx_count=len(pidx),
            shard_count=shard_count,
        )
        tr.set(keys.meta, out.head.encode())
    return out
