"""What commit and commit_finalize share: fence checks, page validation, the shrink rule and
PIDX updates. Every write goes through the operation's ``Ledger`` (exact accounting)."""

from __future__ import annotations

import functools
import struct
from collections.abc import Iterable

from sqlkv.engine.blobs import encode_pages
from sqlkv.engine.config import EngineConfig
from sqlkv.engine.head import NO_COMMIT_ID, Head
from sqlkv.engine.keys import DbKeys, pack_pidx
from sqlkv.engine.ledger import Ledger
from sqlkv.engine.pidx import PIDX_VALUE_BYTES, Location, pidx_row_bytes
from sqlkv.engine.retention import retire_cut_shards
from sqlkv.engine.seal import join_chunks, seal
from sqlkv.errors import (
    CompactionBehind,
    CorruptionError,
    FenceMismatch,
    InvalidRequest,
    LtxError,
)
from sqlkv.ltx import LtxFile, decode, lock_pgno


def check_generation(db: str, head: Head, generation: int) -> None:
    if head.generation != generation:
        raise FenceMismatch(
            f"database {db!r} is owned by generation {head.generation}, not {generation}: "
            "another owner took it over. Open it again to continue.",
            head,
        )


def already_applied(head: Head, expected_head_txid: int, commit_id: bytes | None) -> bool:
    """True when this is a retry of the commit that produced ``head``."""
    return (
        commit_id is not None
        and commit_id != NO_COMMIT_ID
        and head.last_commit_id == commit_id
        and head.head_txid > expected_head_txid
    )


def check_backpressure(db: str, head: Head, config: EngineConfig) -> None:
    if head.delta_bytes >= config.max_unfolded_bytes or head.delta_count >= config.max_live_deltas:
        raise CompactionBehind(
            f"database {db!r} has {head.delta_count} unfolded deltas ({head.delta_bytes} bytes), "
            "over the engine's limit: compaction is behind. Retry the commit shortly."
        )


def check_head(db: str, head: Head, expected_head_txid: int) -> None:
    if head.head_txid != expected_head_txid:
        raise FenceMismatch(
            f"database {db!r} is at txid {head.head_txid}, not the expected "
            f"{expected_head_txid}: the caller's view is stale. Open it again to continue.",
            head,
        )


def fence_commit(
    ledger: Ledger,
    config: EngineConfig,
    generation: int,
    expected_head_txid: int,
    commit_id: bytes,
    db_size_pages: int,
    *,
    adds_delta: bool,
    known: bytes | None = None,
) -> tuple[Head, bool]:
    """The checks every commit path makes first, in order: META read serializably, the
    generation, an already applied retry, the expected head, back-pressure (only for a
    commit that adds a delta) and the new size. Returns (head, already applied).

    ``known``: META as the engine last saw it (``MetaCache``). When the commit goes ahead
    on it, META is not read: the commit is guarded by ``M == known`` (``Ledger.
    assume_head``). Any other answer on it (fenced, applied, behind) is decided from META
    read serializably, as without it, so every refusal carries the stored head."""
    db = ledger.db
    if known is not None:
        head = _decoded(known, db)
        try:
            go = not _preamble(
                db, head, config, generation, expected_head_txid, commit_id, adds_delta
            )
        except (FenceMismatch, CompactionBehind):
            go = False
        if go:
            check_db_size(db_size_pages)
            return ledger.assume_head(head, known), False
    head = ledger.read_head()
    applied = _preamble(db, head, config, generation, expected_head_txid, commit_id, adds_delta)
    if not applied:
        check_db_size(db_size_pages)
    return head, applied


@functools.lru_cache(maxsize=1024)
def _decoded(known: bytes, db: str) -> Head:
    """``Head.decode`` of the META bytes an engine knows (a head is immutable): a warm
    database's commits guard the same bytes object its last commit cached, so this is one
    dictionary lookup instead of a checksum and a decode per commit. The bytes an operation
    wrote come with the head they encode (``remember_decoded``, called by ``MetaCache.put``):
    no decode at all."""
    head = _seeded.pop((known, db), None)
    return Head.decode(known, db) if head is None else head


_seeded: dict[tuple[bytes, str], Head] = {}


def remember_decoded(raw: bytes, db: str, head: Head) -> None:
    """Enter ``head``, which an operation just wrote as META bytes ``raw`` (``Head.encode``,
    so ``Head.decode(raw, db) == head``), into ``_decoded``: the next commit, which guards
    ``raw``, finds it there."""
    _seeded[raw, db] = head
    _decoded(raw, db)
    _seeded.pop((raw, db), None)  # already cached: nothing was taken


def _preamble(
    db: str,
    head: Head,
    config: EngineConfig,
    generation: int,
    expected_head_txid: int,
    commit_id: bytes,
    adds_delta: bool,
) -> bool:
    """The fence checks on ``head``, in order; True when the commit already applied."""
    check_generation(db, head, generation)
    if already_applied(head, expected_head_txid, commit_id):
        return True
    check_head(db, head, expected_head_txid)
    if adds_delta:
        check_backpressure(db, head, config)
    return False


def check_commit_id(commit_id: bytes | None) -> bytes:
    if commit_id is None:
        return NO_COMMIT_ID
    if not isinstance(commit_id, bytes) or len(commit_id) != 16:
        raise InvalidRequest("commit_id must be 16 bytes (for example uuid4().bytes)")
    return commit_id


def check_pages(pages: Iterable[tuple[int, bytes]], page_size: int, db_size: int | None) -> None:
    """Every page: number >= 1, not the lock page, exact size, and within ``db_size``."""
    lock = lock_pgno(page_size)
    for pgno, data in pages:
        if not isinstance(pgno, int) or pgno < 1 or pgno >= 1 << 32:
            raise InvalidRequest(f"page number {pgno!r} is invalid: pages are numbered from 1")
        if pgno == lock:
            raise InvalidRequest(f"page {pgno} is SQLite's lock-byte page and is never stored")
        if not isinstance(data, bytes) or len(data) != page_size:
            size = len(data) if isinstance(data, bytes | bytearray) else type(data).__name__
            raise InvalidRequest(f"page {pgno} is {size} bytes; pages are {page_size} bytes")
        if db_size is not None and pgno > db_size:
            raise InvalidRequest(
                f"page {pgno} is above the stated database size of {db_size} pages"
            )


def check_db_size(db_size_pages: int) -> None:
    if not isinstance(db_size_pages, int) or not 0 <= db_size_pages < 1 << 32:
        raise InvalidRequest(f"db_size_pages {db_size_pages!r} is out of range")


def shrink(ledger: Ledger, head: Head, new_size: int, pidx: dict[int, Location], txid: int) -> int:
    """Drop PIDX rows (from ``pidx`` too) and shard pages above ``new_size``; returns the
    number of shards removed (the caller's head keeps ``shard_count`` exact).

    The shard holding ``new_size`` is rewritten without the pages above it; shards wholly
    above it are deleted. DELTAs keep their bytes until compaction finds them unreferenced.
    The rewritten shard keeps its state txid (LTX min_txid) and records ``txid``, the
    shrinking commit, as the first txid it is valid for (max_txid; docs/history.md).
    """
    if new_size >= head.db_size_pages:
        return 0
    keys = ledger.keys
    above = [p for p in pidx if p > new_size]
    for pgno in above:
        del pidx[pgno]
    if above:
        stored = len(above) * pidx_row_bytes(keys)
        ledger.drop_counted_range(keys.pidx_range(new_size + 1), stored)
    first_shard = new_size // head.shard_size
    rows = ledger.get_range(*keys.shard_range(first_shard), snapshot=True, point="read_shard")
    if not rows:
        return 0
    removed = len({keys.shard_id(k) for k, _ in rows})
    retire_cut_shards(ledger, txid, rows)  # the window's older states still read them
    partial = [(k, v) for k, v in rows if keys.shard_id(k) == first_shard]
    kept = []
    state = max(2, head.materialized_txid)
    if partial:  # checked before anything is cleared
        old = decode_shard(keys, partial)
        kept = [(p, d) for p, d in old.pages if p <= new_size]
        state = old.header.min_txid
    ledger.drop_range(keys.shard_range(first_shard), rows)
    if kept:
        data = encode_pages(kept, state, new_size, head.page_size, max_txid=max(state, txid))
        ledger.put_blob(lambda i: keys.shard_chunk(first_shard, i), data)
        removed -= 1
    return removed


def decode_shard(keys: DbKeys, rows: list[tuple[bytes, bytes]]) -> LtxFile:
    """The shard whose chunk rows are ``rows``, every chunk and the LTX file checked."""
    blob = join_chunks(keys, rows)
    try:
        return decode(blob)
    except LtxError as exc:
        raise CorruptionError(
            keys.name, "SHARD", f"shard {keys.shard_id(rows[0][0])}", f"its LTX file: {exc}"
        ) from exc


def set_pidx_rows(ledger: Ledger, pidx: dict[int, Location], located: dict[int, Location]) -> None:
    """Point each page at its new (txid, part), in the store and in ``pidx``."""
    keys = ledger.keys
    for pgno, loc in located.items():
        key = keys.pidx(pgno)
        value = seal(key, pack_pidx(*loc))
        if pgno in pidx:
            ledger.replace(key, value, PIDX_VALUE_BYTES)
        else:
            ledger.put(key, value)
        pidx[pgno] = loc


def record_delta(ledger: Ledger, txid: int, delta_bytes: int) -> None:
    """Write the directory row of a new delta (its stored bytes)."""
    key = ledger.keys.delta_dir(txid)
    ledger.put(key, seal(key, struct.pack(">Q", delta_bytes)))
