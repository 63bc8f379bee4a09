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
    fence_commit,
    record_delta,
    set_pidx_rows,
    shrink,
)
from sqlkv.engine.blobs import blob_size
from sqlkv.engine.commit import TRANSACTION_OVERHEAD, CommitOutcome, encode_parts
from sqlkv.engine.config import EngineConfig
from sqlkv.engine.facts import group_by_part, record_facts
from sqlkv.engine.ledger import Ledger
from sqlkv.engine.pidx import PidxCache, freeze
from sqlkv.engine.staging import manifest, read_manifest
from sqlkv.errors import CommitTooLarge, InvalidRequest

MAX_SEQ = 1 << 16


def _check_reserved(db: str, head_txid: int, next_txid: int, txid: int) -> None:
    if not head_txid < txid < next_txid:
        raise InvalidRequest(
            f"txid {txid} is not a staged commit of database {db!r} "
            f"(head {head_txid}, next {next_txid}); start over with commit_stage(txid=None)"
        )


def stage_pages(
    ledger: Ledger,
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
    db, keys = ledger.db, ledger.keys
    head = ledger.read_head()
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
        ledger.size
        + sum(blob_size(p, key_len, ledger.limits.max_value_bytes) for p in parts)
        + len(ordered) * 4
        + len(parts) * (len(keys.stage(txid, 0)) + 8)
        + TRANSACTION_OVERHEAD
    )
    if needed > ledger.limits.max_transaction_bytes:
        raise CommitTooLarge(needed, ledger.limits.max_transaction_bytes)
    first, end = seq << 16, (seq + 1) << 16
    _drop_staged(ledger, txid, first, end)
    step = config.part_pages
    for k, data in enumerate(parts):
        part = first | k
        part_used = ledger.put_blob(partial(keys.delta_chunk, txid, part), data)
        manifest_key = keys.stage(txid, part)
        row = manifest(manifest_key, part_used, [p for p, _ in ordered[k * step : (k + 1) * step]])
        ledger.put(manifest_key, row)
    ledger.write_head(head.with_changes(next_txid=next_txid), check_quota=True, staged=True)
    return txid, len(parts)


def _drop_staged(ledger: Ledger, txid: int, first: int, end: int) -> None:
    """Remove staged parts ``[first, end)`` of ``txid`` (what this seq staged before)."""
    keys = ledger.keys
    rows = ledger.get_range(*keys.stage_parts_range(txid, first, end), point="read_staged")
    if rows:
        chunks = sum(read_manifest(keys, key, value)[0] for key, value in rows)  # all checked
        ledger.drop_range(keys.stage_parts_range(txid, first, end), rows)
        ledger.drop_counted_range(keys.delta_parts_range(txid, first, end), chunks)


def _staged(
    rows: list[tuple[bytes, bytes]], ledger: Ledger
) -> Iterator[tuple[int, int, list[int]]]:
    """(part, chunk bytes, page numbers) of each staging manifest row."""
    for key, value in rows:
        _, part = ledger.keys.stage_txid_part(key)
        used, pgnos = read_manifest(ledger.keys, key, value)
        yield part, used, pgnos


def finalize(
    ledger: Ledger,
    config: EngineConfig,
    cache: PidxCache,
    generation: int,
    expected_head_txid: int,
    txid: int,
    db_size_pages: int,
    commit_id: bytes,
    known: bytes | None = None,
) -> CommitOutcome:
    db, keys = ledger.db, ledger.keys
    head, applied = fence_commit(
        ledger,
        config,
        generation,
        expected_head_txid,
        commit_id,
        db_size_pages,
        adds_delta=True,
        known=known,
    )
    if applied:
        return CommitOutcome(head, None, already_applied=True)
    _check_reserved(db, head.head_txid, head.next_txid, txid)
    manifests = ledger.get_range(*keys.stage_range(txid), point="read_staged")
    if not manifests:
        raise InvalidRequest(f"nothing is staged for txid {txid} of database {db!r}")
    located: dict[int, tuple[int, int]] = {}
    delta_bytes = 0
    for part, part_used, pgnos in list(_staged(manifests, ledger)):  # all checked first
        delta_bytes += part_used
        for pgno in pgnos:
            located[pgno] = (txid, part)
    top = max(located)
    if top > db_size_pages:
        raise InvalidRequest(
            f"page {top} was staged but is above the stated database size of {db_size_pages}"
        )
    pidx = dict(cache.rows_for(ledger, db, keys, head))
    # The staged chunks are counted already (they become the delta); their manifests go now.
    shards_removed = shrink(ledger, head, db_size_pages, pidx, txid)  # checks before it writes
    ledger.drop_range(keys.stage_range(txid), manifests)
    set_pidx_rows(ledger, pidx, located)
    record_delta(ledger, txid, delta_bytes)
    record_facts(ledger, head.head_txid, txid, db_size_pages, group_by_part(located))
    new_head = ledger.write_head(
        head.with_changes(
            head_txid=txid,
            db_size_pages=db_size_pages,
            last_commit_id=commit_id,
            delta_bytes=head.delta_bytes + delta_bytes,
            delta_count=head.delta_count + 1,
            pidx_count=len(pidx),
            shard_count=head.shard_count - shards_removed,
        ),
        check_quota=True,
        pages=len(located),
        delta_bytes=delta_bytes,
    )
    return CommitOutcome(new_head, freeze(pidx), pages=len(located), meta=ledger.written)
