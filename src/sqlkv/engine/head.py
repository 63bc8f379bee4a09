"""The head record (``META``): the one key every commit, takeover and compaction rewrites.

Invariants, checked by ``Head.validate`` whenever a head is built (so on decode, and on every
``with_changes`` an operation makes before writing it) and kept by every engine operation:

- ``head_txid < next_txid``: txids are handed out from ``next_txid`` and never reused, even
  when a staged commit is abandoned;
- ``materialized_txid <= head_txid``: every txid up to it is folded into shards;
- ``generation`` is bumped by every open (takeover), and only by it: a caller whose
  generation differs has been fenced out;
- ``delta_count``/``delta_bytes`` are the number and stored bytes of the live deltas,
  one directory row (``X``) each, all with txids in ``(materialized_txid, head_txid]``
  (never negative, and no delta bytes without a live delta);
- ``storage_used`` is the exact number of key and value bytes the database occupies in the
  store, META included (the encoding has a fixed size so that this stays exact).

Encoding: a big-endian struct led by a schema version, so later versions can add fields.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, replace

from sqlkv.errors import EngineError

SCHEMA_VERSION = 1
_FORMAT = ">HQQQQIIIQQQ16sQIQ"
HEAD_SIZE = struct.calcsize(_FORMAT)
NO_COMMIT_ID = bytes(16)
CREATION_TXID = 1
"""txid 1 is the creation of the empty database, so every stored LTX file has txid >= 2
(an LTX file with MinTXID 1 is a snapshot of the whole database, which deltas are not)."""


@dataclass(frozen=True)
class Head:
    """The state of one database, as of its last committed transaction."""

    generation: int
    head_txid: int
    next_txid: int
    materialized_txid: int
    db_size_pages: int
    page_size: int = 4096
    shard_size: int = 64
    created_ms: int = 0
    storage_used: int = 0
    storage_quota: int = 0  # 0 means no quota
    last_commit_id: bytes = NO_COMMIT_ID
    delta_bytes: int = 0  # stored bytes of the live (not yet folded) deltas
    delta_count: int = 0  # number of live deltas
    fold_epoch: int = 0  # bumped by every compaction pass that changes PIDX or shards

    def encode(self) -> bytes:
        return struct.pack(
            _FORMAT,
            SCHEMA_VERSION,
            self.generation,
            self.head_txid,
            self.next_txid,
            self.materialized_txid,
            self.db_size_pages,
            self.page_size,
            self.shard_size,
            self.created_ms,
            self.storage_used,
            self.storage_quota,
            self.last_commit_id,
            self.delta_bytes,
            self.delta_count,
            self.fold_epoch,
        )

    @classmethod
    def decode(cls, raw: bytes) -> Head:
        if len(raw) < 2:
            raise EngineError("head record is truncated; the store holds a damaged META key")
        (version,) = struct.unpack_from(">H", raw)
        if version != SCHEMA_VERSION or len(raw) != HEAD_SIZE:
            raise EngineError(
                f"head record has schema version {version} and {len(raw)} bytes; this sqlkv "
                f"reads version {SCHEMA_VERSION} ({HEAD_SIZE} bytes): upgrade sqlkv"
            )
        fields = struct.unpack(_FORMAT, raw)[1:]
        return cls(*fields)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ``EngineError`` when the head breaks one of the invariants above."""
        broken = self._broken()
        if broken:
            raise EngineError(
                f"head invariant broken: {broken}; the head record is damaged or an engine "
                "operation has a bug. Nothing was written; report it with the database name"
            )

    def _broken(self) -> str:
        if not self.generation >= 0 or min(self.storage_used, self.storage_quota) < 0:
            return "negative generation or storage"
        if not self.head_txid < self.next_txid:
            return f"head_txid {self.head_txid} >= next_txid {self.next_txid}"
        if not self.materialized_txid <= self.head_txid:
            return f"materialized_txid {self.materialized_txid} > head_txid {self.head_txid}"
        if self.delta_count < 0 or self.delta_bytes < 0:
            return f"{self.delta_bytes} delta bytes in {self.delta_count} live deltas"
        if self.delta_bytes > 0 and self.delta_count == 0:
            return f"{self.delta_bytes} delta bytes for {self.delta_count} live deltas"
        return ""

    def with_changes(self, **changes: object) -> Head:
        return replace(self, **changes)  # type: ignore[arg-type]
