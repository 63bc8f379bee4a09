"""The engine's key layout (docs/design.md §3). Nothing else builds engine keys.

Under each database's prefix (``keyspace.db_prefix(FORMAT_V2, name)``):

    M                                   head record (``Head``)
    P {pgno:u32}                        PIDX: (txid:u64, part:u32) of the newest unfolded copy
    D {txid:u64} {part:u32} {chunk:u32} chunks of one LTX file of a committed (or staged) txid
    S {shard:u32} {chunk:u32}           chunks of the LTX file of folded pages shard*S..shard*S+S-1
    N                                   preload hint: the pages the last owner read first
    T {txid:u64} {part:u32}             staging manifest of a part not yet finalized
    X {txid:u64}                        delta directory: stored bytes of that txid's delta
    H {txid:u64} {chunk:u32}            history facts of a committed txid (docs/history.md)
    F                                   progress of a fork into this database (no META yet)

A txid's pages may span several LTX *parts*: a large commit is staged in several requests,
and even a one-request commit is cut into parts of a bounded number of pages so that a
reader fetches only the part holding the page it wants. Integers are big-endian and fixed
width so that range reads return them in numeric order. No sub-key starts with 0xFF (the
key space's name encoding relies on it).
"""

from __future__ import annotations

import struct

from sqlkv.keyspace import FORMAT_V2, db_prefix

U32_END = 1 << 32
U64_END = 1 << 64


def pack_pidx(txid: int, part: int) -> bytes:
    return struct.pack(">QI", txid, part)


def unpack_pidx(raw: bytes) -> tuple[int, int]:
    txid, part = struct.unpack(">QI", raw)
    return txid, part


class DbKeys:
    """Every key of one database."""

    __slots__ = ("hint", "meta", "name", "prefix")

    def __init__(self, name: str) -> None:
        self.name = name
        self.prefix = db_prefix(FORMAT_V2, name)
        self.meta = self.prefix + b"M"
        self.hint = self.prefix + b"N"

    # whole database
    def all_range(self) -> tuple[bytes, bytes]:
        """Every key of this database and of no other (sub-keys never start with 0xFF)."""
        return self.prefix, self.prefix + b"\xff"

    def meta_and_hint_range(self) -> tuple[bytes, bytes]:
        """META ``M`` and the hint ``N`` (adjacent tags: no other key lies between)."""
        return self.meta, self.hint + b"\x00"

    # fork progress (a database being created by a fork: no META until it is complete)
    @property
    def fork_record(self) -> bytes:
        return self.prefix + b"F"

    # PIDX
    def pidx(self, pgno: int) -> bytes:
        return self.prefix + b"P" + struct.pack(">I", pgno)

    def pidx_range(self, first: int = 0, end: int = U32_END) -> tuple[bytes, bytes]:
        """Rows for pgno in ``[first, end)``."""
        return self._span(b"P", ">I", first, end)

    def pidx_pgno(self, key: bytes) -> int:
        (pgno,) = struct.unpack_from(">I", key, len(self.prefix) + 1)
        return int(pgno)

    # DELTA
    def delta_part(self, txid: int, part: int) -> bytes:
        return self.prefix + b"D" + struct.pack(">QI", txid, part)

    def delta_chunk(self, txid: int, part: int, chunk: int) -> bytes:
        return self.delta_part(txid, part) + struct.pack(">I", chunk)

    def delta_part_range(self, txid: int, part: int) -> tuple[bytes, bytes]:
        base = self.delta_part(txid, part)
        return base, base + b"\xff" * 5

    def delta_txid_range(self, txid: int) -> tuple[bytes, bytes]:
        return self._span(b"D", ">Q", txid, txid + 1)

    def delta_range(self) -> tuple[bytes, bytes]:
        """Every DELTA key."""
        return self._span(b"D", ">Q", 0, U64_END)

    def delta_txids_range(self, first: int, end: int) -> tuple[bytes, bytes]:
        """Every DELTA key with txid in ``[first, end)``."""
        return self._span(b"D", ">Q", first, end)

    def deltas_from(self, first_txid: int) -> tuple[bytes, bytes]:
        """Every DELTA key with txid >= ``first_txid``."""
        return self._span(b"D", ">Q", first_txid, U64_END)

    def delta_txid_part(self, key: bytes) -> tuple[int, int]:
        txid, part = struct.unpack_from(">QI", key, len(self.prefix) + 1)
        return int(txid), int(part)

    # SHARD
    def shard(self, shard_id: int) -> bytes:
        return self.prefix + b"S" + struct.pack(">I", shard_id)

    def shard_chunk(self, shard_id: int, chunk: int) -> bytes:
        return self.shard(shard_id) + struct.pack(">I", chunk)

    def shard_range(self, first: int = 0, end: int = U32_END) -> tuple[bytes, bytes]:
        """Chunks of shards with id in ``[first, end)``."""
        return self._span(b"S", ">I", first, end)

    def shard_id(self, key: bytes) -> int:
        (sid,) = struct.unpack_from(">I", key, len(self.prefix) + 1)
        return int(sid)

    # delta directory
    def delta_dir(self, txid: int) -> bytes:
        return self.prefix + b"X" + struct.pack(">Q", txid)

    def delta_dir_range(self, first: int = 0, end: int = U64_END) -> tuple[bytes, bytes]:
        """Directory rows for txid in ``[first, end)``."""
        return self._span(b"X", ">Q", first, end)

    def delta_dir_txid(self, key: bytes) -> int:
        (txid,) = struct.unpack_from(">Q", key, len(self.prefix) + 1)
        return int(txid)

    # history facts (docs/history.md)
    def history_chunk(self, txid: int, chunk: int) -> bytes:
        return self.prefix + b"H" + struct.pack(">QI", txid, chunk)

    def history_range(self, first: int = 0, end: int = U64_END) -> tuple[bytes, bytes]:
        """History facts of txids in ``[first, end)`` (every chunk)."""
        return self._span(b"H", ">Q", first, end)

    def history_txid(self, key: bytes) -> int:
        (txid,) = struct.unpack_from(">Q", key, len(self.prefix) + 1)
        return int(txid)

    # staging manifests
    def stage(self, txid: int, part: int) -> bytes:
        return self.prefix + b"T" + struct.pack(">QI", txid, part)

    def stage_range(self, txid: int | None = None) -> tuple[bytes, bytes]:
        if txid is None:
            return self._span(b"T", ">Q", 0, U64_END)
        return self._span(b"T", ">Q", txid, txid + 1)

    def stage_parts_range(self, txid: int, first: int, end: int) -> tuple[bytes, bytes]:
        """Manifests of ``txid``'s parts in ``[first, end)``."""
        return self.stage(txid, first), self.stage(txid, end) if end < U32_END else (
            self.stage_range(txid)[1]
        )

    def delta_parts_range(self, txid: int, first: int, end: int) -> tuple[bytes, bytes]:
        """Chunks of ``txid``'s parts in ``[first, end)``."""
        return self.delta_part(txid, first), self.delta_part(txid, end) if end < U32_END else (
            self.delta_txid_range(txid)[1]
        )

    def stage_txid_part(self, key: bytes) -> tuple[int, int]:
        txid, part = struct.unpack_from(">QI", key, len(self.prefix) + 1)
        return int(txid), int(part)

    def _span(self, tag: bytes, fmt: str, first: int, end: int) -> tuple[bytes, bytes]:
        base = self.prefix + tag
        width = struct.calcsize(fmt)
        lo = base + struct.pack(fmt, first)
        hi = (
            base + struct.pack(fmt, end)
            if end < (1 << (8 * width))
            else base + b"\xff" * (width + 1)
        )
        return lo, hi
