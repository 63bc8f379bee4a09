"""The v1 key layout (docs/design.md §6). Nothing else in the v1 format builds keys.

Every file of database ``name`` (its role: ``db``, ``journal`` or ``wal``) is a metadata
key holding the file's size and one key per 4 KiB chunk, under the database's v1 prefix::

    db_prefix(FORMAT_V1, name) + b"META/"  + role                      -> encode_size(size)
    db_prefix(FORMAT_V1, name) + b"CHUNK/" + role + b"/" + u32 index   -> bytes of the chunk

Chunk indexes are big-endian so a range read returns them in file order and one range
delete removes every chunk from an index on. Invariant kept by ``ChunkedFile``: while the
metadata key exists, every chunk below ``ceil(size / CHUNK_SIZE)`` exists and holds at
least the file's bytes in that chunk (a longer value, left by an interrupted truncate, is
read only up to the size). Chunks at or past that index are garbage that is never read.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from sqlkv.keyspace import FORMAT_V1, db_prefix
from sqlkv.store import KeyRange, prefix_end

CHUNK_SIZE = 4096
ROLES = ("db", "journal", "wal")
META_VERSION = 1
MAX_CHUNKS = 2**32

_META = b"META/"
_CHUNK = b"CHUNK/"
_SIZE = struct.Struct(">BQ")
_INDEX = struct.Struct(">I")


def encode_size(size: int) -> bytes:
    """The metadata value of a file of ``size`` bytes (a version byte, then u64 size)."""
    return _SIZE.pack(META_VERSION, size)


def decode_size(value: bytes) -> int:
    """The size held in a metadata value; ``ValueError`` if it is not one this code wrote."""
    if len(value) != _SIZE.size or value[0] != META_VERSION:
        raise ValueError(f"not a v{META_VERSION} file metadata value: {value[:16]!r}")
    return int(_SIZE.unpack(value)[1])


def chunk_count(size: int) -> int:
    """How many chunks hold a file of ``size`` bytes."""
    return -(-size // CHUNK_SIZE)


def database_range(name: str) -> KeyRange:
    """Every v1 key of database ``name`` and of no other (sub-keys never start with 0xFF;
    ``prefix_end`` would also cover names that extend this one past a NUL byte)."""
    prefix = db_prefix(FORMAT_V1, name)
    return prefix, prefix + b"\xff"


def migration_state_key(name: str) -> bytes:
    """The key of database ``name``'s v1 -> v2 migration record (``sqlkv.migrate``).

    It sits under the database's v1 prefix beside, and never inside, the files' ``META/``
    and ``CHUNK/`` keys, so no file operation touches it.
    """
    return db_prefix(FORMAT_V1, name) + b"MIGRATION"


@dataclass(frozen=True)
class FileKeys:
    """The keys of one file (``role``) of one database."""

    name: str
    role: str

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"unknown v1 file role {self.role!r}; expected one of {ROLES}")

    @property
    def meta(self) -> bytes:
        return db_prefix(FORMAT_V1, self.name) + _META + self.role.encode()

    @property
    def _chunk_prefix(self) -> bytes:
        return db_prefix(FORMAT_V1, self.name) + _CHUNK + self.role.encode() + b"/"

    def chunk(self, index: int) -> bytes:
        if not 0 <= index < MAX_CHUNKS:
            raise ValueError(f"chunk index {index} is outside 0..2**32-1 (file too large)")
        return self._chunk_prefix + _INDEX.pack(index)

    def chunks_from(self, index: int) -> KeyRange:
        """The range of every chunk key with an index ``>= index``."""
        prefix = self._chunk_prefix
        begin = prefix + _INDEX.pack(index) if index < MAX_CHUNKS else prefix_end(prefix)
        return begin, prefix_end(prefix)

    def chunk_index(self, key: bytes) -> int:
        """The index of one of this file's chunk keys."""
        prefix = self._chunk_prefix
        if not key.startswith(prefix) or len(key) != len(prefix) + _INDEX.size:
            raise ValueError(f"{key!r} is not a chunk key of {self.role!r}")
        return int(_INDEX.unpack_from(key, len(prefix))[0])
