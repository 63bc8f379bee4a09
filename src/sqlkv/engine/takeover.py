"""open / takeover: create the head, or become the database's new owner.

One store transaction: read META serializably; create it if absent (and allowed), else
bump the generation (fencing every earlier owner out) and remove what a crashed owner may
have left: DELTAs above head_txid (abandoned staged commits), staging manifests and the
DELTA parts they name. Page 1, the pages of the database's hint (``hint.py``: what the
last owner read first) and the requested ones are returned with it, up to
``preload_bytes``; a database no larger than that arrives whole.

Store operations (docs/open-and-preload.md): the first is one multi-range read, serializable,
of everything the open needs that does not depend on META: META, the staging manifests,
the newest DELTA chunks (the probe for DELTAs above head, which also brings the newest
delta's pages), every PIDX row, the hint, the delta directory, shard 0 (page 1 once
compacted) and the blobs where the engine guesses the wanted pages are (``Guess``, from
what this engine saw of the database before). Only pages found elsewhere cost a second
read. Then the commit, which writes META: a cold open with preload is 2 operations when the
guess was right, 3 otherwise.

No crash leaves a PIDX row naming a missing delta (the row, the delta, its directory row
and META are written in one transaction; compaction drops rows before their deltas), so a
PIDX row whose txid has no directory row means the store lost data: ``CorruptionError``,
and nothing is "cleaned up" — removing the row would silently serve an older copy of the
page. (A delta part lost while its directory row stayed is found when the page is read,
and by ``verify``.) Every value read is checked.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlkv.engine.config import EngineConfig
from sqlkv.engine.head import CREATION_TXID, Head
from sqlkv.engine.hint import decode_hint
from sqlkv.engine.keys import DbKeys
from sqlkv.engine.ledger import Ledger
from sqlkv.engine.pidx import PidxMap, freeze, parse_rows
from sqlkv.engine.read import BlobId, PageSource, Rows, check_pgnos, shard_chunks
from sqlkv.engine.retention import put_window
from sqlkv.engine.seal import chunk_payload_size, unseal
from sqlkv.engine.staging import drop_staged_rows
from sqlkv.errors import CorruptionError, DatabaseNotFound

log = logging.getLogger("sqlkv.engine")

PROBE_CHUNKS = 8
"""Newest DELTA chunks read by the first operation (a small last commit comes whole)."""
PROBE_CHUNKS_HINTED = 2
"""The same when the engine knows the hint and where its pages were (``Guess``): the probe
then only needs the newest commit (page 1, changed by every commit), and on a database
with many small live deltas each chunk more is a delta part the open does not use."""


@dataclass(frozen=True)
class Guess:
    """What the engine remembers of a database, to read its pages in the first operation:
    the pages to preload and where they were (a PIDX map of any age)."""

    pgnos: Sequence[int] = ()
    pidx: PidxMap | None = None


@dataclass
class TakeoverOutcome:
    head: Head
    pages: dict[int, bytes]
    pidx: PidxMap
    hint: list[int] = field(default_factory=list)
    orphans_removed: int = 0
    created: bool = False


def open_database(
    ledger: Ledger,
    config: EngineConfig,
    preload: Sequence[int],
    preload_bytes: int,
    create: bool,
    guess: Guess = Guess(),
) -> TakeoverOutcome:
    db, keys = ledger.db, ledger.keys
    budget = max(1, preload_bytes // config.page_size)
    asked = check_pgnos(preload)
    guessed = _guessed_blobs(keys, config, [1, *guess.pgnos, *asked][:budget], guess.pidx)
    # A known hint means a database larger than the budget (a smaller one needs none), so a
    # guessed shard is read only up to the chunk of its last guessed page (``shard_chunks``);
    # else whole, since the whole database may be wanted. A short guess costs a read.
    chunk_bytes = chunk_payload_size(ledger.limits.max_value_bytes) if guess.pgnos else 0
    probe = PROBE_CHUNKS_HINTED if guess.pgnos else PROBE_CHUNKS
    meta_hint, staged, newest, pidx_rows, directory, *blobs = ledger.get_ranges(
        [
            (*keys.meta_and_hint_range(), 0, False),
            (*keys.stage_range(), 0, False),
            (*keys.delta_range(), probe, True),
            (*keys.pidx_range(), 0, False),
            (*keys.delta_dir_range(), 0, False),
            *[
                (*_blob_range(keys, config, blob, last, chunk_bytes), 0, False)
                for blob, last in guessed.items()
            ],
        ],
        point="read_all",
    )
    meta = [row for row in meta_hint if row[0] == keys.meta]
    hint_rows = [row for row in meta_hint if row[0] == keys.hint]
    old = ledger.use_head(meta[0][1] if meta else None)
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
    # Staged parts (manifest + DELTA chunks) that were never finalized belong to no commit.
    drop_staged_rows(ledger, staged)
    orphans += len(staged)
    # Any other DELTA above head was never committed (nor counted: it has no manifest).
    if newest and keys.delta_txid_part(newest[0][0])[0] > old.head_txid:
        orphans += 1
        ledger.drop_uncounted_range(keys.deltas_from(old.head_txid + 1))
    pidx = parse_rows(keys, old, pidx_rows)
    _check_directory(keys, pidx, directory)
    hint = _read_hint(keys, hint_rows)

    head = ledger.write_head(old.with_changes(generation=old.generation + 1))

    size = head.db_size_pages
    whole = range(1, size + 1) if size <= budget else range(0)
    wanted = list(dict.fromkeys(p for p in [1, *hint, *asked, *whole] if p <= size))
    wanted = wanted[:budget]
    frozen = freeze(pidx)
    have = dict(zip(guessed, blobs, strict=True))  # shards may be read in part: decode walks
    have.update(_whole_parts(keys, newest, old.head_txid, len(newest) == probe))
    source = PageSource(keys, head, frozen, ledger.limits)
    pages = source.read(ledger, wanted, "read_pages", have) if wanted else {}
    return TakeoverOutcome(
        head,
        {p: v for p, v in pages.items() if v is not None},
        frozen,
        hint=hint,
        orphans_removed=orphans,
    )


def _blob_range(
    keys: DbKeys, config: EngineConfig, blob: BlobId, last: int, chunk_bytes: int
) -> tuple[bytes, bytes]:
    """A guessed blob's key range: a delta part whole; a shard whole, or (``chunk_bytes``)
    its leading chunks up to the one that must hold page ``last``."""
    kind, a, b = blob
    if kind == "delta":
        return keys.delta_part_range(a, b)
    if not chunk_bytes:
        return keys.shard_range(a, a + 1)
    n = shard_chunks(last % config.shard_size, config.page_size, chunk_bytes)
    return keys.shard_chunk(a, 0), keys.shard_chunk(a, n)


def _guessed_blobs(
    keys: DbKeys, config: EngineConfig, pgnos: Sequence[int], pidx: PidxMap | None
) -> dict[BlobId, int]:
    """Blobs to read before knowing the head, each with the highest page guessed in it:
    where ``pidx`` (if any) says the wanted pages were, else their shards (so shard 0, for
    page 1, unless the engine knows better)."""
    out: dict[BlobId, int] = {}
    for p in pgnos:
        loc = pidx.get(p) if pidx is not None else None
        blob: BlobId = ("delta", *loc) if loc else ("shard", p // config.shard_size, 0)
        out[blob] = max(p, out.get(blob, p))
    return out


def _whole_parts(keys: DbKeys, newest: Rows, head_txid: int, cut: bool) -> dict[BlobId, Rows]:
    """The DELTA parts at or below head that the probe (newest first) read whole; the
    oldest one it reached may lack chunks when the read stopped at its limit (``cut``)."""
    parts: dict[BlobId, Rows] = {}
    for key, value in newest:
        txid, part = keys.delta_txid_part(key)
        if txid <= head_txid:
            parts.setdefault(("delta", txid, part), []).append((key, value))
    if cut and parts:
        parts.popitem()  # insertion order: the last one is the oldest
    return {blob: rows[::-1] for blob, rows in parts.items()}


def _check_directory(keys: DbKeys, pidx: dict[int, tuple[int, int]], directory: Rows) -> None:
    """Every PIDX row's txid must be a live delta, with its directory row."""
    live = set()
    for key, value in directory:
        unseal(keys, key, value)
        live.add(keys.delta_dir_txid(key))
    dangling = [pgno for pgno, (txid, _) in pidx.items() if txid not in live]
    if dangling:
        txid, part = pidx[dangling[0]]
        raise CorruptionError(
            keys.name,
            "DELTA",
            f"txid {txid} part {part}",
            f"the PIDX rows of {len(dangling)} page(s) (first: page {dangling[0]}) name deltas "
            "that are missing from the store (no directory row)",
        )


def _read_hint(keys: DbKeys, rows: Rows) -> list[int]:
    """The stored hint, or none when it is absent or damaged (a hint is not needed: a
    damaged one is logged and ignored; ``verify`` reports it)."""
    if not rows:
        return []
    try:
        return decode_hint(keys, rows[0][1])
    except CorruptionError as exc:
        log.warning(
            "preload hint ignored",
            extra={"db": keys.name, "kind": exc.kind, "detail": exc.detail},
        )
        return []
