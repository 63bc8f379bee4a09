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

- ``pidx_count`` is the number of PIDX rows and ``shard_count`` the number of shards stored,
  so that a row or a whole shard the store lost is noticed (docs/integrity.md).

Encoding: a big-endian struct led by a schema version, so later versions can add fields,
and ended by a 128-bit check of everything before it (``seal.digest``). Schema 1 (no
check, written before verified reads) is refused with a message saying what to do.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, fields

from sqlkv.engine.seal import TAG_SIZE, digest
from sqlkv.errors import CorruptionError, EngineError

SCHEMA_VERSION = 2
_FORMAT = ">HQQQQIIIQQQ16sQIQII"
_BODY_SIZE = struct.calcsize(_FORMAT)
HEAD_SIZE = _BODY_SIZE + TAG_SIZE
_V1_SIZE = struct.calcsize(">HQQQQIIIQQQ16sQIQ")
_DOMAIN = b"sqlkv META v2"
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
    pidx_count: int = 0  # PIDX rows stored
    shard_count: int = 0  # shards stored

    def encode(self) -> bytes:
        body = struct.pack(
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
            self.pidx_count,
            self.shard_count,
        )
        return body + digest(_DOMAIN + body)

    @classmethod
    def decode(cls, raw: bytes, db: str = "?") -> Head:
        """The head in ``raw``, its check verified (``CorruptionError`` naming ``db``)."""
        version = struct.unpack_from(">H", raw)[0] if len(raw) >= 2 else None
        if len(raw) == HEAD_SIZE:
            if digest(_DOMAIN + raw[:_BODY_SIZE]) != raw[_BODY_SIZE:]:
                raise CorruptionError(db, "META", "", "checksum mismatch in the head record")
            if version == SCHEMA_VERSION:
                values = struct.unpack_from(_FORMAT, raw)[1:]
                return _built(cls, dict(zip(_FIELDS, values, strict=True)))
        if version == 1 and len(raw) == _V1_SIZE:
            raise EngineError(
                f"database {db!r} was written by an sqlkv without stored checksums (head "
                "schema 1), which this sqlkv no longer reads: export it with that version "
                "('sqlkv export') and import the file with this one ('sqlkv import')"
            )
        if version is not None and version > SCHEMA_VERSION and len(raw) > HEAD_SIZE:
            raise EngineError(
                f"database {db!r} has head schema version {version}; this sqlkv reads "
                f"version {SCHEMA_VERSION}: upgrade sqlkv"
            )
        raise CorruptionError(db, "META", "", f"a head record of {len(raw)} bytes is malformed")

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
        """This head with ``changes`` (validated, like ``dataclasses.replace``)."""
        if not changes.keys() <= _FIELD_SET:
            unknown = sorted(changes.keys() - _FIELD_SET)
            raise TypeError(f"Head has no field(s) {unknown}")
        return _built(type(self), {**self.__dict__, **changes})


_FIELDS = tuple(f.name for f in fields(Head))
_FIELD_SET = frozenset(_FIELDS)


def _built(cls: type[Head], values: dict[str, object]) -> Head:
    """A ``Head`` of ``values`` (every field), validated. The frozen dataclass's
    ``__init__`` sets each field through ``object.__setattr__``; a commit builds three
    heads (decode, the new head, its storage_used), so this fills ``__dict__`` at once."""
    head = object.__new__(cls)
    head.__dict__.update(values)
    head.validate()
    return head
