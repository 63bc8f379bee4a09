"""History facts: what every committed txid did, one ``H`` blob per txid (docs/history.md).

Commit and finalize write, in the transaction that commits the txid, its facts: the commit
time (ms since the epoch), the database size after it, and the pages it wrote grouped by
the DELTA part that holds them. A large staged commit's page list can pass the store's
value limit, so the facts are a blob cut into sealed chunk keys like an LTX file
(``H {txid} {chunk}``, written by ``Ledger.put_blob``).

Payload (big-endian)::

    u32 version (1)  u64 prev_txid  u64 committed_ms  u32 db_size_pages  u32 parts
    parts x (u32 part, u32 count, count x u32 pgno)       pages ascending within a part

``prev_txid`` is the committed txid before this one (abandoned staged txids are skipped),
so ``verify`` can tell a deleted facts row from a txid that was never committed.

Facts are immutable once written; compaction deletes them once no readable state needs
them (``drop_facts_below``). They answer ``changes_since``, the sizes and commit times of
``history``/``resolve``, and where each page of a past txid lives (``timetravel.py``).
"""

from __future__ import annotations

import struct
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial

from sqlkv.engine.keys import DbKeys
from sqlkv.engine.ledger import Ledger, Rows
from sqlkv.engine.seal import corrupt, join_chunks

VERSION = 1
_HEAD = struct.Struct(">IQQII")
_PART = struct.Struct(">II")


@dataclass(frozen=True)
class Facts:
    """What txid ``txid`` did. ``parts``: (part id, its page numbers), in part order."""

    txid: int
    prev_txid: int
    committed_ms: int
    db_size_pages: int
    parts: tuple[tuple[int, tuple[int, ...]], ...] = ()
    _where: dict[int, int] = field(default_factory=dict, compare=False, repr=False)

    def part_of(self, pgno: int) -> int | None:
        """The part of this txid's delta holding ``pgno`` (None: the txid did not write it).
        A page named by several parts (a re-staged page) is in the last one."""
        if not self._where and self.parts:
            for part, pgnos in self.parts:
                for p in pgnos:
                    self._where[p] = part
        return self._where.get(pgno)

    @property
    def pages(self) -> frozenset[int]:
        return frozenset(p for _, pgnos in self.parts for p in pgnos)


def encode_facts(
    prev_txid: int,
    committed_ms: int,
    db_size_pages: int,
    parts: Sequence[tuple[int, Sequence[int]]],
) -> bytes:
    out = [_HEAD.pack(VERSION, prev_txid, committed_ms, db_size_pages, len(parts))]
    for part, pgnos in parts:
        out.append(_PART.pack(part, len(pgnos)))
        out.append(struct.pack(f">{len(pgnos)}I", *pgnos))
    return b"".join(out)


def decode_facts(txid: int, data: bytes) -> Facts:
    """The facts in ``data`` (``ValueError`` when malformed)."""
    if len(data) < _HEAD.size:
        raise ValueError(f"history facts of {len(data)} bytes are too short")
    version, prev, ms, size, count = _HEAD.unpack_from(data)
    if version != VERSION:
        raise ValueError(f"history facts version {version} is unknown (this sqlkv reads 1)")
    at = _HEAD.size
    parts = []
    for _ in range(count):
        if at + _PART.size > len(data):
            raise ValueError("history facts are truncated")
        part, n = _PART.unpack_from(data, at)
        at += _PART.size
        if at + 4 * n > len(data):
            raise ValueError("history facts are truncated")
        parts.append((part, tuple(struct.unpack_from(f">{n}I", data, at))))
        at += 4 * n
    if at != len(data):
        raise ValueError(f"history facts have {len(data) - at} bytes left over")
    return Facts(txid, prev, ms, size, tuple(parts))


def now_ms() -> int:
    return int(time.time() * 1000)


def record_facts(
    ledger: Ledger,
    prev_txid: int,
    txid: int,
    db_size_pages: int,
    parts: Sequence[tuple[int, Sequence[int]]],
) -> int:
    """Write the facts of ``txid`` (committed in this transaction, after ``prev_txid``);
    returns their bytes."""
    data = encode_facts(prev_txid, now_ms(), db_size_pages, parts)
    return ledger.put_blob(partial(ledger.keys.history_chunk, txid), data)


def facts_size(pages: int, parts: int) -> int:
    """Upper bound of the stored bytes of one txid's facts (for transaction size checks)."""
    return 4 * pages + 8 * parts + 256


def group_by_part(located: dict[int, tuple[int, int]]) -> list[tuple[int, list[int]]]:
    """(part, sorted pages) from page -> (txid, part)."""
    by_part: dict[int, list[int]] = {}
    for pgno, (_, part) in located.items():
        by_part.setdefault(part, []).append(pgno)
    return [(part, sorted(pgnos)) for part, pgnos in sorted(by_part.items())]


def parse_facts(keys: DbKeys, rows: Rows) -> dict[int, Facts]:
    """txid -> facts from ``H`` chunk rows (whole blobs, in key order), every chunk checked."""
    out: dict[int, Facts] = {}
    for txid, group in _by_txid(keys, rows):
        data = join_chunks(keys, group)
        try:
            out[txid] = decode_facts(txid, data)
        except ValueError as exc:
            raise corrupt(keys, group[0][0], str(exc)) from None
    return out


def _by_txid(keys: DbKeys, rows: Rows) -> Iterable[tuple[int, Rows]]:
    group: Rows = []
    current = -1
    for key, value in rows:
        txid = keys.history_txid(key)
        if group and txid != current:
            yield current, group
            group = []
        current = txid
        group.append((key, value))
    if group:
        yield current, group


def drop_facts_below(ledger: Ledger, first: int, end: int, point: str = "read_history") -> int:
    """Delete the facts of txids in ``[first, end)`` (read first, so exactly counted);
    returns how many txids' facts were deleted."""
    if end <= first:
        return 0
    keys = ledger.keys
    rng = keys.history_range(first, end)
    rows = ledger.get_range(*rng, snapshot=True, point=point)
    if rows:
        ledger.drop_range(rng, rows)
    return len({keys.history_txid(k) for k, _ in rows})
