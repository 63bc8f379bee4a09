"""commit_stage / commit_finalize: the path for transactions too large for one commit.

``commit_stage`` reserves a txid on its first call (bumping ``next_txid``, so the txid is
never reused even if the commit is abandoned) and writes each call's pages as DELTA parts
of that txid, plus one staging manifest per part (its page numbers and stored bytes).
Nothing points at staged parts and they sit above ``head_txid``, so no reader can see them;
their bytes count in ``storage_used`` and against the quota from the stage on.
``commit_finalize`` checks the fence and, in one store transaction, points the PIDX rows at
the staged parts, drops the manifests and moves ``head_txid`` to the reserved txid.
Takeover removes whatever an owner staged and never finalized.

Part ids are ``seq << 16 | k``: call ``seq`` of the stage, k-th part of that call.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial

from sqlkv.engine.apply import (
    check_generation,
    check_pages,
    check_quota,
    fence_commit,
    read_head,
    record_delta,
    set_pidx_rows,
    shrink,
)
from sqlkv.engine.blobs import blob_size, write_blob
from sqlkv.engine.commit import TRANSACTION_OVERHEAD, CommitOutcome, encode_parts
from sqlkv.engine.config import EngineConfig
from sqlkv.engine.keys import DbKeys
from sqlkv.engine.pidx import PidxCache
from sqlkv.engine.staging import manifest, read_manifest
from sqlkv.errors import CommitTooLarge, InvalidRequest
from sqlkv.store import Transaction

MAX_SEQ = 1 << 16


def _check_reserved(db: str, head_txid: int, next_txid: int, txid: int) -> None:
    if not head_txid < txid < next_txid:
        raise InvalidRequest(
            f"txid {txid} is not a staged commit of database {db!r} "
            f"(head {head_txid}, next {next_txid}); start over with commit_stage(txid=None)"
        )


def stage_pages(
    tr: Transaction,
    db: str,
    keys: DbKeys,
    config: EngineConfig,
    generation: int,
    txid: int | None,
    seq: int,
    pages: dict[int, bytes],
) -> tuple[int, int]:
    """Write one batch of a large commit; returns (txid, parts written).

    Staged bytes count in ``storage_used`` (and against the quota) from this moment; a
    repeated ``seq`` replaces what that seq staged before.
    """
    head = read_head(tr, db, keys)
    check_generation(db, head, generation)
    if not 0 <= seq < MAX_SEQ:
        raise InvalidRequest(f"stage seq {seq} is out of range 0..{MAX_SEQ - 1}")
    ordered = sorted(pages.items())
    check_pages(ordered, head.page_size, None)
    next_txid = head.next_txid
    if txid is None:
        txid = next_txid
        next_txid += 1
    else:
        _check_reserved(db, head.head_txid, head.next_txid, txid)
    commit = max((p for p, _ in ordered), default=1)
    parts = encode_parts(ordered, txid, commit, config)
    encoded = sum(len(p) for p in parts)
    if encoded > config.max_delta_bytes:
        raise CommitTooLarge(encoded, config.max_delta_bytes)
    # A store with a small transaction limit (etcd's request size) takes smaller batches:
    # CommitTooLarge makes the client split this one, before anything is written.
    key_len = len(keys.delta_chunk(txid, 0, 0))
    needed = (
        tr.size
        + sum(blob_size(p, key_len, tr.limits.max_value_bytes) for p in parts)
        + len(ordered) * 4
        + len(parts) * (len(keys.stage(txid, 0)) + 8)
        + TRANSACTION_OVERHEAD
    )
    if needed > tr.limits.max_transaction_bytes:
        raise CommitTooLarge(needed, tr.limits.max_transaction_bytes)
    first, end = seq << 16, (seq + 1) << 16
    used = head.storage_used - _drop_staged(tr, keys, txid, first, end)
    chunk = tr.limits.max_value_bytes
    step = config.part_pages
    for k, data in enumerate(parts):
        part = first | k
        part_used = write_blob(tr, partial(keys.delta_chunk, txid, part), data, chunk)
        manifest_key = keys.stage(txid, part)
        row = manifest(manifest_key, part_used, [p for p, _ in ordered[k * step : (k + 1) * step]])
        tr.set(manifest_key, row)
        used += part_used + len(manifest_key) + len(row)
    check_quota(db, head, used)
    tr.set(keys.meta, head.with_changes(next_txid=next_txid, storage_used=used).encode())
    return txid, len(parts)


def _drop_staged(tr: Transaction, keys: DbKeys, txid: int, first: int, end: int) -> int:
    """Remove staged parts ``[first, end)`` of ``txid``; returns the bytes they occupied."""
    freed = 0
    for key, value in tr.get_range(*keys.stage_parts_range(txid, first, end)):
        part_used, _ = read_manifest(keys, key, value)
        freed += part_used + len(key) + len(value)
    if freed:
        tr.clear_range(*keys.stage_parts_range(txid, first, end))
        tr.clear_range(*keys.delta_parts_range(txid, first, end))
    return freed


def _staged(tr: Transaction, keys: DbKeys, txid: int) -> Iterator[tuple[int, int, int, list[int]]]:
    """(part, chunk bytes, manifest bytes, page numbers) of each staged part of ``txid``."""
    for key, value in tr.get_range(*keys.stage_range(txid)):
        _, part = keys.stage_txid_part(key)
        used, pgnos = read_manifest(keys, key, value)
        yield part, used, len(key) + len(value), pgnos


def finalize(
    tr: Transaction,
    db: str,
    keys: DbKeys,
    config: EngineConfig,
    cache: PidxCache,
    generation: int,
    expected_head_txid: int,
    txid: int,
    db_size_pages: int,
    commit_id: bytes,
) -> CommitOutcome:
    head, applied = fence_commit(
        tr,
        db,
        keys,
        config,
        generation,
        expected_head_txid,
        commit_id,
        db_size_pages,
        adds_delta=True,
    )
    if applied:
        return CommitOutcome(head, None, already_applied=True)
    _check_reserved(db, head.head_txid, head.next_txid, txid)
    staged = list(_staged(tr, keys, txid))
    if not staged:
        raise InvalidRequest(f"nothing is staged for txid {txid} of database {db!r}")
    located: dict[int, tuple[int, int]] = {}
    delta_bytes = manifest_bytes = 0
    for part, part_used, manifest_size, pgnos in staged:
        delta_bytes += part_used
        manifest_bytes += manifest_size
        for pgno in pgnos:
            located[pgno] = (txid, part)
    top = max(located)
    if top > db_size_pages:
        raise InvalidRequest(
            f"page {top} was staged but is above the stated database size of {db_size_pages}"
        )
    pidx = dict(cache.rows_for(tr, db, keys, head))
    # The staged chunks are counted already; their manifests go now.
    freed, shards_removed = shrink(tr, keys, head, db_size_pages, pidx)
    used = head.storage_used - manifest_bytes - freed
    used += set_pidx_rows(tr, keys, pidx, located)
    used += record_delta(tr, keys, txid, delta_bytes)
    check_quota(
        db, head, used, db_size_pages=db_size_pages, pages=len(located), delta_bytes=delta_bytes
    )
    tr.clear_range(*keys.stage_range(txid))
    new_head = head.with_changes(
        head_txid=txid,
        db_size_pages=db_size_pages,
        storage_used=used,
        last_commit_id=commit_id,
        delta_bytes=head.delta_bytes + delta_bytes,
        delta_count=head.delta_count + 1,
        pidx_count=len(pidx),
        shard_count=head.shard_count - shards_removed,
    )
    tr.set(keys.meta, new_head.encode())
    return CommitOutcome(new_head, pidx, pages=len(located))
