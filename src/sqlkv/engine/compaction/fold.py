"""One compaction pass over one database: planned from a snapshot, applied in one guarded
store operation that conflicts on META.

**Plan** (``plan_pass``, a read-only transaction of snapshot reads, however long it takes):
META, the PIDX map, the ``shards_per_pass`` shards holding the oldest unfolded txids, the
DELTA parts their pages live in (one multi-range read), and the directory rows of the
deltas that will be dead. It builds each new SHARD blob (the PIDX row names the newest
copy, so newest wins) and the new ``materialized_txid``: just below the oldest txid any
unfolded row refers to.

**Apply** (``apply_pass``, one store operation, no reads): the writes, guarded
(``Transaction.guard``): META equals the bytes assumed (``ApplyState.meta``: the newest
the engine knows), each PIDX row dropped still names what was folded, each shard replaced
is still what the plan read. The guard on META is the fence: it is in the read-conflict
set, so a commit, a takeover or another pass landing first makes this one fail or retry,
as the serializable read did (never a rewound head or a lost commit). A failed guard
answers the value it found and is absorbed (``absorb``): a newer META (commits since the
plan change only what the apply recomputes from it), or a PIDX row a commit rewrote (it
names a newer copy, which wins over the shard's: the row is kept); the apply is sent again.
A takeover, another pass, a shrink, a changed shard or a row that vanished makes the pass
plan again (``None`` / ``absorb`` False); with ``expected_generation`` a takeover is
``FenceMismatch``. The apply writes the shards, drops the folded PIDX rows and every dead
delta (with its directory row) and writes META on the head assumed: ``materialized_txid``,
delta counters, ``fold_epoch`` + 1 (which invalidates every engine's PIDX cache).

So the time a pass can conflict with commits is one store operation, not the whole pass: a
steady commit stream no longer starves compaction (issue 13). Every value read is checked
first (``seal``); a damaged one raises ``CorruptionError`` and the pass writes nothing.
"""

from __future__ import annotations

import struct
import time
from dataclasses import dataclass, field
from functools import partial

from sqlkv.engine.apply import check_generation, decode_shard
from sqlkv.engine.blobs import encode_pages
from sqlkv.engine.head import Head
from sqlkv.engine.keys import DbKeys, pack_pidx
from sqlkv.engine.ledger import Ledger, Rows, StoreReader
from sqlkv.engine.pidx import (
    PIDX_VALUE_BYTES,
    Location,
    PidxCache,
    PidxMap,
    freeze,
    tag_of,
)
from sqlkv.engine.retention import graves_range, retention_key, versions_range
from sqlkv.engine.seal import corrupt, join_chunks, seal, unseal
from sqlkv.errors import CorruptionError, DatabaseNotFound, GuardFailed, LtxError
from sqlkv.ltx import HEADER_FLAG_NO_CHECKSUM, LtxHeader, read_page, read_page_index
from sqlkv.ltx.header import PageIndexEntry
from sqlkv.ltx.splice import NotSpliceable, splice
from sqlkv.store.ranges import RangeRead, key_after

DELTA_READS_PER_TRIP = 64
"""DELTA parts fetched per multi-range read while planning."""


@dataclass
class PassOutcome:
    head: Head
    pidx: PidxMap | None  # None: the new map is not known here (readers reload it)
    shards_written: int = 0
    pages_folded: int = 0
    deltas_deleted: int = 0
    bytes_folded: int = 0
    meta: tuple[Head, bytes] | None = None  # META as written
    history_changed: bool = False  # retention kept or trimmed history (docs/history.md)
    retained_bytes: int = 0  # bytes kept only for past states after this pass

    @property
    def changed(self) -> bool:
        return bool(
            self.shards_written or self.pages_folded or self.deltas_deleted or self.history_changed
        )


@dataclass
class FoldPlan:
    """What one pass will write, planned from the snapshot at ``head`` (stored as ``meta``)."""

    head: Head
    meta: bytes
    pidx: PidxMap
    folded: dict[int, Location] = field(default_factory=dict)  # page -> the row folded
    shards: dict[int, tuple[Rows, bytes | None]] = field(default_factory=dict)  # old, new
    dead: list[tuple[bytes, bytes, int]] = field(default_factory=list)  # dir row, bytes
    materialized: int = 0
    facts: Rows = field(default_factory=list)  # history facts below ``materialized``
    retention: bytes | None = None  # the retention record (set: ``retained.fold_pass``)

    @property
    def changes(self) -> bool:
        return bool(self.shards or self.dead or self.materialized != self.head.materialized_txid)


def choose_shards(pidx: PidxMap, shard_size: int, limit: int) -> dict[int, list[int]]:
    by_shard: dict[int, list[int]] = {}
    oldest: dict[int, int] = {}
    for pgno, (txid, _) in pidx.items():
        sid = pgno // shard_size
        by_shard.setdefault(sid, []).append(pgno)
        if txid < oldest.get(sid, 1 << 64):
            oldest[sid] = txid
    chosen = sorted(by_shard, key=lambda sid: (oldest[sid], sid))[:limit]
    return {sid: sorted(by_shard[sid]) for sid in chosen}


def _read_parts(
    tr: StoreReader, keys: DbKeys, locations: list[Location], extra: list[RangeRead]
) -> tuple[dict[Location, tuple[bytes, dict[int, PageIndexEntry]]], list[Rows]]:
    """Every DELTA part of ``locations``, joined and indexed, a few dozen per round trip,
    and the rows of ``extra`` (read with the first of those round trips)."""
    out: dict[Location, tuple[bytes, dict[int, PageIndexEntry]]] = {}
    more: list[Rows] = []
    for i in range(0, max(1, len(locations)), DELTA_READS_PER_TRIP):
        batch = locations[i : i + DELTA_READS_PER_TRIP]
        answers = tr.get_ranges(
            [(*keys.delta_part_range(*loc), 0, False) for loc in batch] + (extra if i == 0 else []),
            snapshot=True,
            point="read_delta",
        )
        if i == 0:
            more = answers[len(batch) :]
        for loc, rows in zip(batch, answers, strict=False):
            where = f"txid {loc[0]} part {loc[1]}"
            if not rows:
                raise CorruptionError(
                    keys.name, "DELTA", where, "a PIDX row names it; it is missing"
                )
            blob = join_chunks(keys, rows)
            try:
                out[loc] = (blob, read_page_index(blob))
            except LtxError as exc:
                raise CorruptionError(keys.name, "DELTA", where, f"its LTX file: {exc}") from exc
    return out, more


def _page(
    keys: DbKeys,
    parts: dict[Location, tuple[bytes, dict[int, PageIndexEntry]]],
    pgno: int,
    loc: Location,
) -> bytes:
    blob, index = parts[loc]
    where = f"txid {loc[0]} part {loc[1]}"
    try:
        page = read_page(blob, pgno, index)
    except LtxError as exc:
        raise CorruptionError(keys.name, "DELTA", where, f"its LTX file: {exc}") from exc
    if page is None:
        raise CorruptionError(
            keys.name, "DELTA", where, f"it does not hold page {pgno}, which its PIDX row names"
        )
    return page


def plan_pass(
    tr: StoreReader,
    db: str,
    keys: DbKeys,
    cache: PidxCache,
    shards_per_pass: int,
    expected_generation: int | None,
) -> FoldPlan:
    """Plan one pass from snapshot reads (this transaction writes nothing): META with the
    retention rows in one round trip; then, from the PIDX map (cached), the DELTA parts, the
    shards, the dead deltas' directory rows and the history facts below the new
    ``materialized_txid`` in one more (one per further 64 parts)."""
    record_key = retention_key(keys)
    meta, record, graves, versions = tr.get_ranges(
        [
            (keys.meta, key_after(keys.meta), 1, False),
            (record_key, key_after(record_key), 1, False),
            (*graves_range(keys), 1, False),
            (*versions_range(keys), 1, False),
        ],
        snapshot=True,
        point="read_meta",
    )
    if not meta:
        raise DatabaseNotFound(db)
    raw = meta[0][1]
    head = Head.decode(raw, db)
    if expected_generation is not None:
        check_generation(db, head, expected_generation)
    pidx = cache.rows_for(tr, db, keys, head)
    plan = FoldPlan(head, raw, pidx)
    if record or graves or versions:
        plan.retention = record[0][1] if record else b""
        return plan  # history is retained: the pass runs as one transaction
    chosen = choose_shards(pidx, head.shard_size, shards_per_pass)
    for pgnos in chosen.values():
        for pgno in pgnos:
            plan.folded[pgno] = pidx[pgno]
    # Every delta older than the oldest one an unfolded row refers to is dead; the history
    # facts of txids below the new materialized txid (written by commits, which never write
    # there again) are deleted with them.
    first_live = min(
        (t for p, (t, _) in pidx.items() if p not in plan.folded), default=head.head_txid + 1
    )
    plan.materialized = max(head.materialized_txid, first_live - 1)
    extra: list[RangeRead] = [(*keys.shard_range(sid, sid + 1), 0, False) for sid in chosen]
    extra.append((*keys.delta_dir_range(head.materialized_txid + 1, first_live), 0, False))
    if plan.materialized != head.materialized_txid:
        extra.append((*keys.history_range(0, plan.materialized), 0, False))
    parts, more = _read_parts(tr, keys, sorted(set(plan.folded.values())), extra)
    shard_txid = max(2, head.head_txid)
    for (sid, pgnos), old in zip(chosen.items(), more, strict=False):
        new = {pgno: _page(keys, parts, pgno, pidx[pgno]) for pgno in pgnos}
        plan.shards[sid] = (old, fold_shard(keys, sid, old, new, head, shard_txid))
    for key, value in more[len(chosen)]:
        payload = unseal(keys, key, value)
        if len(payload) != 8:
            raise corrupt(keys, key, f"a directory row of {len(payload)} bytes is malformed")
        plan.dead.append((key, value, struct.unpack(">Q", payload)[0]))
    if plan.materialized != head.materialized_txid:
        plan.facts = more[len(chosen) + 1]
    return plan


def fold_shard(
    keys: DbKeys, sid: int, old: Rows, new: dict[int, bytes], head: Head, txid: int
) -> bytes | None:
    """The blob of shard ``sid``: ``old``'s pages (its chunk rows, checked before it is
    replaced) with ``new`` over them, pages above the database's end dropped; None when no
    page is left. The frames of the pages that stay are copied (``ltx.splice``)."""
    header = LtxHeader(
        flags=HEADER_FLAG_NO_CHECKSUM,
        page_size=head.page_size,
        commit=head.db_size_pages,
        min_txid=txid,
        max_txid=txid,
        timestamp_ms=int(time.time() * 1000),
    )
    try:
        return splice(join_chunks(keys, old) if old else None, new, header)
    except NotSpliceable:
        pass
    except LtxError as exc:
        raise CorruptionError(keys.name, "SHARD", f"shard {sid}", f"its LTX file: {exc}") from exc
    pages: dict[int, bytes] = {}
    if old:
        pages.update(decode_shard(keys, old).pages)
    pages.update(new)
    kept = sorted((p, d) for p, d in pages.items() if p <= head.db_size_pages)
    return encode_pages(kept, txid, head.db_size_pages, head.page_size) if kept else None


@dataclass
class ApplyState:
    """What one apply attempt assumes: META's bytes, and the folded pages whose PIDX row a
    commit has rewritten since the plan (kept, not dropped): on the first attempt, those
    this engine's PIDX map at the head assumed shows; then, those failed guards named."""

    meta: bytes
    moved: set[int] = field(default_factory=set)
    first: bool = True


def apply_pass(
    ledger: Ledger,
    plan: FoldPlan,
    cache: PidxCache,
    expected_generation: int | None,
    state: ApplyState,
) -> PassOutcome | None:
    """Write what ``plan`` folded, guarded instead of read: META is ``state.meta``, each
    PIDX row dropped still names what was folded, each shard replaced is still what the plan
    read. A guard that fails raises ``GuardFailed`` (the caller updates ``state`` and tries
    again, ``absorb``); None: the database changed in a way the plan cannot absorb."""
    db, keys = ledger.db, ledger.keys
    head = Head.decode(state.meta, db)
    if expected_generation is not None:
        check_generation(db, head, expected_generation)
    was = plan.head
    if (
        head.generation != was.generation
        or head.fold_epoch != was.fold_epoch
        or head.db_size_pages < was.db_size_pages
    ):
        return None  # a takeover, another pass or a shrink since the plan: plan again
    ledger.assume_head(head, state.meta)
    base = cache.peek(db)
    if state.first and base is not None and tag_of(base[0]) == tag_of(head):
        # The rows commits rewrote since the plan, from this engine's map at the head
        # assumed, instead of one failed guard each (the guards below still check them).
        state.moved.update(p for p, loc in plan.folded.items() if base[1].get(p, loc) != loc)
    state.first = False
    ledger.guard(retention_key(keys), None)  # a window set since: plan again
    shard_count = head.shard_count
    for sid, (old, blob) in plan.shards.items():
        for key, value in old:  # the shard is what the plan read, and no more
            ledger.guard(key, value)
        ledger.guard(keys.shard_chunk(sid, len(old)), None)
        if old:
            ledger.drop_range(keys.shard_range(sid, sid + 1), old)
            shard_count -= 1
        if blob is not None:
            ledger.put_blob(partial(keys.shard_chunk, sid), blob)
            shard_count += 1
    dropped = [pgno for pgno in plan.folded if pgno not in state.moved]
    for pgno in dropped:
        key = keys.pidx(pgno)
        ledger.guard(key, seal(key, pack_pidx(*plan.folded[pgno])))
        ledger.drop(key, PIDX_VALUE_BYTES)
    freed = sum(stored for _, _, stored in plan.dead)
    if plan.dead:
        # The dead deltas are every txid in [first, end): the directory read holds every row
        # there, and commits write only above the plan's head. One range for all their DELTA
        # chunks, and the directory rows as read.
        first = keys.delta_dir_txid(plan.dead[0][0])
        end = keys.delta_dir_txid(plan.dead[-1][0]) + 1
        ledger.drop_counted_range(keys.delta_txids_range(first, end), freed)
        ledger.drop_rows([(k, v) for k, v, _ in plan.dead])
    if plan.facts:
        # History facts below the new materialized txid describe no readable state any more.
        ledger.drop_range(keys.history_range(0, plan.materialized), plan.facts)
    new = ledger.write_head(
        head.with_changes(
            materialized_txid=max(head.materialized_txid, plan.materialized),
            delta_bytes=head.delta_bytes - freed,
            delta_count=head.delta_count - len(plan.dead),
            fold_epoch=head.fold_epoch + 1,
            pidx_count=head.pidx_count - len(dropped),
            shard_count=shard_count,
        )
    )
    # The new map, when this engine holds the one at the head assumed.
    pidx = None
    if base is not None and tag_of(base[0]) == tag_of(head):
        rows = dict(base[1])
        for pgno in dropped:
            del rows[pgno]
        pidx = freeze(rows)
    folded = len(plan.folded)
    return PassOutcome(
        new,
        pidx,
        shards_written=len(plan.shards),
        pages_folded=folded,
        deltas_deleted=len(plan.dead),
        bytes_folded=folded * head.page_size,
        meta=ledger.written,
    )


def absorb(keys: DbKeys, plan: FoldPlan, state: ApplyState, failed: GuardFailed) -> bool:
    """Update ``state`` from a failed guard of ``apply_pass``; False: plan again."""
    if failed.key == keys.meta:
        if failed.current is None:
            raise DatabaseNotFound(keys.name)
        state.meta = failed.current
        return True
    if keys.pidx_range()[0] <= failed.key < keys.pidx_range()[1] and failed.current:
        pgno = keys.pidx_pgno(failed.key)
        if pgno in plan.folded and pgno not in state.moved:
            state.moved.add(pgno)  # a commit rewrote it: it names a newer copy, kept
            return True
    return False  # a shard changed, or a folded page's row vanished (a shrink)
