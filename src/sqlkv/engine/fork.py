"""fork: a new, independent database DST holding a committed state of SRC, copied inside the
engine (pages never travel through a client), in bounded store transactions.

DST's head is written last, so until the fork completes DST does not exist: a reader or
``open(create=False)`` gets ``DatabaseNotFound``, and a crash leaves only keys no head
counts, which the next fork into DST (or a create) removes. Steps (docs/fork-restore.md):

1. ``fork_begin``: SRC's META (snapshot) fixes the txid T and size; DST's META (serializable)
   must be absent (``DatabaseExists``); whatever DST's range holds (an interrupted fork or
   delete) is cleared, and the progress record ``F`` is written with a fresh fork id.
2. ``fork_copy``, once per batch of shards: DST's META must still be absent and ``F`` still
   ours (both serializable: a concurrent create or fork makes one side retry, then this one
   stops with ``ForkAborted``); SRC's pages of the batch's shards at T are read (a SRC shard
   without newer copies in deltas is copied as its LTX bytes, resealed for DST's keys; one
   with PIDX rows is merged with them and re-encoded) and written as DST shards; ``F``
   records the next shard, the shards written and their exact stored bytes. A batch is
   idempotent: a retried one continues from what ``F`` says.
3. ``fork_finish``: ``F`` dropped, the history facts of T written (DST's history starts
   there), SRC's retention window given to DST, and DST's META (generation 1, head txid
   T, every page folded, no delta), its ``storage_used`` = META + facts + the window
   record + the bytes ``F`` recorded.

SRC is read at its head; when SRC commits during the fork (its head txid moves) the rest
is read at T through ``read_at`` (``fork_copy_at``), and only when T is no longer readable
(compaction folded it, no retention window) is the copy started again from the new head,
at most ``ATTEMPTS`` times. DST inherits SRC's quota and
the copy stops with ``QuotaExceeded`` when it would exceed it.
"""

from __future__ import annotations

import bisect
import logging
import struct
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial
from typing import TYPE_CHECKING

from sqlkv.engine.apply import decode_shard
from sqlkv.engine.blobs import encode_pages
from sqlkv.engine.facts import record_facts
from sqlkv.engine.head import CREATION_TXID, Head
from sqlkv.engine.keys import DbKeys
from sqlkv.engine.ledger import Ledger
from sqlkv.engine.pidx import PidxMap
from sqlkv.engine.read import PageSource
from sqlkv.engine.retention import put_window, read_window_ms
from sqlkv.engine.seal import join_chunks, seal, unseal
from sqlkv.errors import (
    DatabaseExists,
    ForkAborted,
    InvalidRequest,
    QuotaExceeded,
    SnapshotTooOld,
)
from sqlkv.store import Transaction

if TYPE_CHECKING:
    from sqlkv.engine.engine import Engine

log = logging.getLogger("sqlkv.engine.fork")

ATTEMPTS = 3
"""Copies started over when SRC commits during the fork, before ``ForkAborted``."""

MAX_SHARDS_PER_BATCH = 32

Progress = Callable[[int, int], None]
"""``progress(done_bytes, total_bytes)`` of the database's pages copied so far."""

_RECORD = struct.Struct(">16sQQIIIIIQQQ")


@dataclass(frozen=True)
class ForkRecord:
    """The progress record ``F`` of a fork into a database that has no META yet."""

    fork_id: bytes
    txid: int  # SRC's state being copied
    quota: int
    db_size_pages: int
    page_size: int
    shard_size: int
    next_shard: int
    end_shard: int  # one past the last shard to copy
    copied_bytes: int  # stored bytes of the shards written so far (keys + values)
    shards: int
    window_ms: int = 0  # SRC's retention window, which DST gets

    def encode(self) -> bytes:
        return _RECORD.pack(
            self.fork_id,
            self.txid,
            self.quota,
            self.db_size_pages,
            self.page_size,
            self.shard_size,
            self.next_shard,
            self.end_shard,
            self.copied_bytes,
            self.shards,
            self.window_ms,
        )

    @classmethod
    def decode(cls, raw: bytes) -> ForkRecord:
        return cls(*_RECORD.unpack(raw))


class _SourceMoved(Exception):
    """SRC committed since the copy began and its state at the copied txid is gone."""


def fork_database(
    engine: Engine, src: str, dst: str, at: int | None = None, progress: Progress | None = None
) -> Head:
    """Copy SRC's state (its head, or the retained txid ``at``) into the new database DST;
    returns DST's head."""
    if src == dst:
        raise InvalidRequest(f"cannot fork database {src!r} into itself; give another name")
    for attempt in range(1, ATTEMPTS + 1):
        fork_id = uuid.uuid4().bytes
        try:
            return _fork_once(engine, src, dst, fork_id, at, progress)
        except _SourceMoved:
            _abandon(engine, dst, fork_id)
            log.info("fork restarted: the source committed", extra={"db": src, "attempt": attempt})
        except (QuotaExceeded, SnapshotTooOld):
            _abandon(engine, dst, fork_id)
            raise
    raise ForkAborted(
        f"database {src!r} committed during each of {ATTEMPTS} attempts to fork it into "
        f"{dst!r}, and compaction folded the state being copied; nothing was created. Give "
        f"it a retention window ('sqlkv retention {src} --window 1h'), or fork it while its "
        "writer is idle"
    )


def _fork_once(
    engine: Engine,
    src: str,
    dst: str,
    fork_id: bytes,
    at: int | None,
    progress: Progress | None,
) -> Head:
    store = engine.store
    skeys, dkeys = engine.keys(src), engine.keys(dst)
    started = time.perf_counter()
    state = None if at is None else (at, engine.snapshot(src, at=at).db_size_pages)
    record = store.transact(
        lambda tr: _begin(Ledger(tr, dst, dkeys), skeys, src, fork_id, state), name="fork_begin"
    )
    total = record.db_size_pages * record.page_size
    if progress:
        progress(0, total)
    sorted_pidx: dict[int, list[int]] = {}  # id(map) -> its page numbers, sorted

    def pidx_pages(pidx: PidxMap) -> list[int]:
        if id(pidx) not in sorted_pidx:
            sorted_pidx.clear()
            sorted_pidx[id(pidx)] = sorted(pidx)
        return sorted_pidx[id(pidx)]

    batch = max(
        1,
        min(
            MAX_SHARDS_PER_BATCH,
            store.limits.max_transaction_bytes // (2 * record.shard_size * record.page_size),
        ),
    )
    moved = False  # SRC committed: the rest is read at T through read_at
    while record.next_shard < record.end_shard:
        if at is None and not moved:
            try:
                record = store.transact(
                    lambda tr: _copy(
                        Ledger(tr, dst, dkeys), engine, skeys, src, fork_id, batch, pidx_pages
                    ),
                    name="fork_copy",
                )
            except _SourceMoved:
                moved = True
        else:
            s0 = record.next_shard
            s1 = min(record.end_shard, s0 + batch)
            per, size = record.shard_size, record.db_size_pages
            wanted = range(max(1, s0 * per), min(s1 * per, size + 1))
            try:
                read = engine.read_at(src, record.txid, wanted).pages if wanted else {}
            except SnapshotTooOld:
                if at is not None:
                    raise
                raise _SourceMoved() from None  # T was folded away: start over
            pages = {p: v for p, v in read.items() if v is not None and v.count(0) != len(v)}
            record = store.transact(
                partial(_write_at_tr, dst, dkeys, fork_id, s0, s1, pages), name="fork_copy_at"
            )
        if progress:
            progress(min(total, record.next_shard * record.shard_size * record.page_size), total)
    head = store.transact(lambda tr: _finish(Ledger(tr, dst, dkeys), fork_id), name="fork_finish")
    engine.acked.ack(dst, head)
    log.info(
        "database forked",
        extra={
            "db": dst,
            "source": src,
            "txid": head.head_txid,
            "pages": head.db_size_pages,
            "storage_used": head.storage_used,
            "seconds": round(time.perf_counter() - started, 3),
        },
    )
    return head


def _read_record(ledger: Ledger, fork_id: bytes | None) -> ForkRecord | None:
    """DST's progress record (serializable); with ``fork_id``: it must be that fork's, and
    DST must still have no META."""
    key = ledger.keys.fork_record
    raw = ledger.get(key, point="read_record")
    record = None if raw is None else ForkRecord.decode(unseal(ledger.keys, key, raw))
    if fork_id is not None:
        if ledger.read_head_if_any() is not None:
            raise ForkAborted(
                f"database {ledger.db!r} was created while it was being forked into; "
                "the fork stopped and that database was left as it is"
            )
        if record is None or record.fork_id != fork_id:
            raise ForkAborted(
                f"another fork into {ledger.db!r} took over this one's partial copy; "
                "this fork stopped"
            )
    return record


def _write_record(ledger: Ledger, record: ForkRecord) -> None:
    key = ledger.keys.fork_record
    ledger.put_uncounted(key, seal(key, record.encode()))


def _source_head(tr: Transaction | Ledger, keys: DbKeys, src: str) -> Head:
    raw = tr.get(keys.meta, snapshot=True, point="read_source_meta")
    if raw is None:
        from sqlkv.errors import DatabaseNotFound

        raise DatabaseNotFound(src)
    return Head.decode(raw, src)


def _begin(
    ledger: Ledger, skeys: DbKeys, src: str, fork_id: bytes, state: tuple[int, int] | None
) -> ForkRecord:
    """``state``: (txid, size) of a retained past state to copy; None: SRC's head."""
    head = _source_head(ledger, skeys, src)
    txid, size = (head.head_txid, head.db_size_pages) if state is None else state
    if ledger.read_head_if_any() is not None:
        raise DatabaseExists(ledger.db)
    _read_record(ledger, None)  # read serializably: a concurrent fork into DST conflicts
    # An interrupted fork's or delete's leftovers: no head counts them.
    ledger.drop_uncounted_range(ledger.keys.all_range())
    record = ForkRecord(
        fork_id=fork_id,
        txid=txid,
        quota=head.storage_quota,
        db_size_pages=size,
        page_size=head.page_size,
        shard_size=head.shard_size,
        next_shard=0,
        end_shard=size // head.shard_size + 1 if size else 0,
        copied_bytes=0,
        shards=0,
        window_ms=read_window_ms(ledger, skeys, "read_source_retention"),
    )
    _write_record(ledger, record)
    return record


def _copy(
    ledger: Ledger,
    engine: Engine,
    skeys: DbKeys,
    src: str,
    fork_id: bytes,
    batch: int,
    pidx_pages: Callable[[PidxMap], list[int]],
) -> ForkRecord:
    record = _read_record(ledger, fork_id)
    assert record is not None
    head = _source_head(ledger, skeys, src)
    if head.head_txid != record.txid:
        raise _SourceMoved()
    pidx = engine.pidx.rows_for(ledger, src, skeys, head)
    s0 = record.next_shard
    s1 = min(record.end_shard, s0 + batch)
    per = record.shard_size
    size = record.db_size_pages
    rows = ledger.get_range(*skeys.shard_range(s0, s1), snapshot=True, point="read_shards")
    by_shard: dict[int, list[tuple[bytes, bytes]]] = {}
    for key, value in rows:
        by_shard.setdefault(skeys.shard_id(key), []).append((key, value))
    ordered = pidx_pages(pidx)
    lo = bisect.bisect_left(ordered, s0 * per)
    hi = bisect.bisect_left(ordered, min(s1 * per, size + 1))
    newer = ordered[lo:hi]
    fresh = PageSource(skeys, head, pidx).read(ledger, newer, "read_pages") if newer else {}
    dkeys = ledger.keys
    written = 0
    for shard in range(s0, s1):
        stored = by_shard.get(shard)
        mine = {p: d for p, d in fresh.items() if p // per == shard and d is not None}
        if not stored and not mine:
            continue
        if stored and not mine:
            data = join_chunks(skeys, stored)  # the LTX file as is, resealed below
        else:
            pages = dict(decode_shard(skeys, stored).pages) if stored else {}
            pages.update(mine)
            kept = sorted((p, d) for p, d in pages.items() if p <= size)
            data = encode_pages(kept, max(2, record.txid), max(size, 1), record.page_size)
        ledger.put_blob(partial(dkeys.shard_chunk, shard), data)
        written += 1
    return _advance(ledger, record, s1, written)


def _write_at_tr(
    dst: str,
    dkeys: DbKeys,
    fork_id: bytes,
    s0: int,
    s1: int,
    pages: dict[int, bytes],
    tr: Transaction,
) -> ForkRecord:
    return _write_at(Ledger(tr, dst, dkeys), fork_id, s0, s1, pages)


def _write_at(
    ledger: Ledger, fork_id: bytes, s0: int, s1: int, pages: dict[int, bytes]
) -> ForkRecord:
    """The shards ``s0 <= s < s1`` of a fork at a past txid, from ``pages`` read with
    ``read_at`` (pages absent from it are zeros); nothing when a retry already wrote them."""
    record = _read_record(ledger, fork_id)
    assert record is not None
    if record.next_shard != s0:
        return record  # this batch landed already (its commit's answer was lost)
    per, size = record.shard_size, record.db_size_pages
    written = 0
    for shard in range(s0, s1):
        mine = sorted((p, d) for p, d in pages.items() if p // per == shard and p <= size)
        if not mine:
            continue
        data = encode_pages(mine, max(2, record.txid), max(size, 1), record.page_size)
        ledger.put_blob(partial(ledger.keys.shard_chunk, shard), data)
        written += 1
    return _advance(ledger, record, s1, written)


def _advance(ledger: Ledger, record: ForkRecord, next_shard: int, written: int) -> ForkRecord:
    """Record a batch: the quota checked on the bytes copied so far, then ``F`` rewritten."""
    copied = record.copied_bytes + ledger.delta
    if record.quota and copied > record.quota:
        raise QuotaExceeded(ledger.db, copied, record.quota)
    record = replace(
        record, next_shard=next_shard, copied_bytes=copied, shards=record.shards + written
    )
    _write_record(ledger, record)
    return record


def _finish(ledger: Ledger, fork_id: bytes) -> Head:
    record = _read_record(ledger, fork_id)
    assert record is not None
    key = ledger.keys.fork_record
    ledger.drop_uncounted_range((key, key + b"\x00"))
    if record.txid > CREATION_TXID:
        # DST's history starts at T: its facts (no pages: every page is in a shard).
        record_facts(ledger, CREATION_TXID, record.txid, record.db_size_pages, ())
    put_window(ledger, record.window_ms)
    return ledger.write_head(
        Head(
            generation=1,
            head_txid=record.txid,
            next_txid=record.txid + 1,
            materialized_txid=record.txid,
            db_size_pages=record.db_size_pages,
            page_size=record.page_size,
            shard_size=record.shard_size,
            created_ms=int(time.time() * 1000),
            storage_quota=record.quota,
            shard_count=record.shards,
        ),
        carried=record.copied_bytes,
    )


def _abandon(engine: Engine, dst: str, fork_id: bytes) -> None:
    """Remove this fork's partial copy (if DST is still this fork's, without META)."""
    dkeys = engine.keys(dst)

    def fn(tr: Transaction) -> None:
        ledger = Ledger(tr, dst, dkeys)
        try:
            _read_record(ledger, fork_id)
        except ForkAborted:
            return
        ledger.drop_uncounted_range(dkeys.all_range())

    engine.store.transact(fn, name="fork_abort")
