"""The records around the page data of an LTX v3 file, and their rules.

Owns the 100-byte header (``LtxHeader``), the 16-byte trailer (``LtxTrailer``), page index entries
(``PageIndexEntry``) and their varint encoding, the decoded-file type (``LtxFile``) and the format
constants. Byte layout (all fixed-width integers big-endian)::

    [header 100 B][page frame]*[zero page header 6 B][index uvarints][index size u64][trailer 16 B]

``LtxHeader.validate`` is the reference ``Header.Validate`` (run by both encoder and decoder) plus
range checks on every field so that marshalling cannot fail. ``LtxTrailer.validate`` is the
reference ``Trailer.Validate`` plus the empty-database rule; the reference runs it only when
encoding.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import NamedTuple

from sqlkv.errors import LtxError
from sqlkv.ltx.checksum import CHECKSUM_FLAG, EMPTY_DB_CHECKSUM

__all__ = [
    "HEADER_FLAG_NO_CHECKSUM",
    "HEADER_SIZE",
    "MAGIC",
    "MAX_PAGE_SIZE",
    "MIN_PAGE_SIZE",
    "PAGE_HEADER_FLAG_SIZE",
    "PAGE_HEADER_SIZE",
    "TRAILER_SIZE",
    "LtxFile",
    "LtxHeader",
    "LtxTrailer",
    "PageIndexEntry",
    "encode_page_index",
    "parse_index_columns",
    "parse_page_index",
]

MAGIC = b"LTX1"
HEADER_SIZE = 100
PAGE_HEADER_SIZE = 6
TRAILER_SIZE = 16
HEADER_FLAG_NO_CHECKSUM = 0x00000002
"""Header flag: rolling checksums are not tracked (PreApply = PostApply = 0)."""
PAGE_HEADER_FLAG_SIZE = 0x0001
"""Page header flag: a u32 compressed size and an LZ4 block follow (clear: a legacy LZ4 frame)."""
MIN_PAGE_SIZE = 512
MAX_PAGE_SIZE = 65536

_U32_MAX = (1 << 32) - 1
_U64_MAX = (1 << 64) - 1
_I64_MIN = -(1 << 63)
_I64_MAX = (1 << 63) - 1

_HEADER = struct.Struct(">4sIIIQQqQqqIIQ20x")
_TRAILER = struct.Struct(">QQ")
_U64 = struct.Struct(">Q")
assert _HEADER.size == HEADER_SIZE


def _check_range(name: str, value: int, low: int, high: int) -> None:
    if not isinstance(value, int) or not low <= value <= high:
        raise LtxError(
            f"header field {name}={value!r} is out of range: it must be an int in [{low}, {high}]"
        )


def is_valid_page_size(page_size: int) -> bool:
    """True for a power of two from 512 to 65536."""
    return MIN_PAGE_SIZE <= page_size <= MAX_PAGE_SIZE and page_size & (page_size - 1) == 0


@dataclass(frozen=True, slots=True)
class LtxHeader:
    """The 100-byte file header. ``validate()`` states its rules; a snapshot is MinTXID == 1."""

    flags: int = HEADER_FLAG_NO_CHECKSUM
    page_size: int = 4096
    commit: int = 0
    """Database size in pages after this file is applied (0: the database is deleted)."""
    min_txid: int = 1
    max_txid: int = 1
    timestamp_ms: int = 0
    pre_apply_checksum: int = 0
    wal_offset: int = 0
    wal_size: int = 0
    wal_salt1: int = 0
    wal_salt2: int = 0
    node_id: int = 0

    @property
    def is_snapshot(self) -> bool:
        """A snapshot holds the whole database (pages 1..commit, lock page excepted)."""
        return self.min_txid == 1

    @property
    def no_checksum(self) -> bool:
        """True when rolling checksums are not tracked (``HEADER_FLAG_NO_CHECKSUM`` set)."""
        return bool(self.flags & HEADER_FLAG_NO_CHECKSUM)

    def validate(self) -> None:
        """Raise ``LtxError`` naming the first broken rule (the reference ``Header.Validate``)."""
        if not self._plain_ints_in_range():
            self._check_ranges()
        if self.flags & ~HEADER_FLAG_NO_CHECKSUM:
            raise LtxError(
                f"invalid header flags 0x{self.flags:08x}: only HEADER_FLAG_NO_CHECKSUM "
                "(0x00000002) is defined in LTX v3 (bit 0 was the v1 whole-file compression flag)"
            )
        if not is_valid_page_size(self.page_size):
            raise LtxError(
                f"invalid page size {self.page_size}: it must be a power of two from 512 to 65536"
            )
        if self.min_txid == 0:
            raise LtxError("minimum transaction id required: min_txid must be at least 1")
        if self.max_txid == 0:
            raise LtxError("maximum transaction id required: max_txid must be at least 1")
        if self.min_txid > self.max_txid:
            raise LtxError(
                f"transaction ids out of order: min_txid {self.min_txid} > max_txid {self.max_txid}"
            )
        if self.wal_offset < 0:
            raise LtxError(f"wal offset cannot be negative: {self.wal_offset}")
        if self.wal_size < 0:
            raise LtxError(f"wal size cannot be negative: {self.wal_size}")
        if (self.wal_salt1 or self.wal_salt2) and self.wal_offset == 0:
            raise LtxError(
                "wal offset required if a wal salt is set (salts come from a WAL header)"
            )
        if self.wal_size and self.wal_offset == 0:
            raise LtxError("wal offset required if wal size is set")
        if self.is_snapshot:
            if self.pre_apply_checksum:
                raise LtxError(
                    "pre-apply checksum must be zero on snapshots "
                    "(min_txid 1 has no prior database)"
                )
        elif self.no_checksum:
            if self.pre_apply_checksum:
                raise LtxError(
                    "pre-apply checksum not allowed when HEADER_FLAG_NO_CHECKSUM is set: "
                    f"got {self.pre_apply_checksum:016x}, expected 0"
                )
        elif self.pre_apply_checksum == 0:
            raise LtxError(
                "pre-apply checksum required on non-snapshot files with checksum tracking "
                "(set it, or set HEADER_FLAG_NO_CHECKSUM)"
            )
        elif not self.pre_apply_checksum & CHECKSUM_FLAG:
            raise LtxError(
                f"invalid pre-apply checksum format {self.pre_apply_checksum:016x}: "
                "bit 63 must be set"
            )

    def _check_ranges(self) -> None:
        _check_range("flags", self.flags, 0, _U32_MAX)
        _check_range("page_size", self.page_size, 0, _U32_MAX)
        _check_range("commit", self.commit, 0, _U32_MAX)
        _check_range("min_txid", self.min_txid, 0, _U64_MAX)
        _check_range("max_txid", self.max_txid, 0, _U64_MAX)
        _check_range("timestamp_ms", self.timestamp_ms, _I64_MIN, _I64_MAX)
        _check_range("pre_apply_checksum", self.pre_apply_checksum, 0, _U64_MAX)
        _check_range("wal_offset", self.wal_offset, _I64_MIN, _I64_MAX)
        _check_range("wal_size", self.wal_size, _I64_MIN, _I64_MAX)
        _check_range("wal_salt1", self.wal_salt1, 0, _U32_MAX)
        _check_range("wal_salt2", self.wal_salt2, 0, _U32_MAX)
        _check_range("node_id", self.node_id, 0, _U64_MAX)

    def _plain_ints_in_range(self) -> bool:
        """The common case of ``_check_ranges`` in one expression (a header is validated on
        every encode): every field a plain ``int`` within its range."""
        return (
            type(self.flags) is type(self.page_size) is type(self.commit) is int
            and type(self.min_txid) is type(self.max_txid) is type(self.timestamp_ms) is int
            and type(self.pre_apply_checksum) is type(self.wal_offset) is int
            and type(self.wal_size) is type(self.wal_salt1) is type(self.wal_salt2) is int
            and type(self.node_id) is int
            and 0 <= self.flags <= _U32_MAX
            and 0 <= self.page_size <= _U32_MAX
            and 0 <= self.commit <= _U32_MAX
            and 0 <= self.min_txid <= _U64_MAX
            and 0 <= self.max_txid <= _U64_MAX
            and _I64_MIN <= self.timestamp_ms <= _I64_MAX
            and 0 <= self.pre_apply_checksum <= _U64_MAX
            and _I64_MIN <= self.wal_offset <= _I64_MAX
            and _I64_MIN <= self.wal_size <= _I64_MAX
            and 0 <= self.wal_salt1 <= _U32_MAX
            and 0 <= self.wal_salt2 <= _U32_MAX
            and 0 <= self.node_id <= _U64_MAX
        )

    def marshal(self) -> bytes:
        """The 100 header bytes (reserved bytes 80..99 zero). Validates first."""
        self.validate()
        return _HEADER.pack(
            MAGIC,
            self.flags,
            self.page_size,
            self.commit,
            self.min_txid,
            self.max_txid,
            self.timestamp_ms,
            self.pre_apply_checksum,
            self.wal_offset,
            self.wal_size,
            self.wal_salt1,
            self.wal_salt2,
            self.node_id,
        )

    @classmethod
    def unmarshal(cls, data: bytes | bytearray | memoryview) -> LtxHeader:
        """Parse the first 100 bytes of ``data`` and validate them."""
        if len(data) < HEADER_SIZE:
            raise LtxError(
                f"truncated LTX file: {len(data)} bytes, the header alone needs {HEADER_SIZE}"
            )
        magic, *fields = _HEADER.unpack_from(data, 0)
        if magic != MAGIC:
            raise LtxError(f"invalid LTX file: magic is {bytes(magic)!r}, expected {MAGIC!r}")
        header = cls(*fields)
        header.validate()
        return header


@dataclass(frozen=True, slots=True)
class LtxTrailer:
    """The 16-byte trailer: rolling checksum after apply, and the CRC-64 of the file."""

    post_apply_checksum: int
    file_checksum: int

    def validate(self, header: LtxHeader) -> None:
        """Raise ``LtxError`` unless the trailer obeys the format's rules for ``header``."""
        self.validate_post_apply(header)
        if self.file_checksum == 0:
            raise LtxError("file checksum required: the trailer's file checksum is zero")
        if not self.file_checksum & CHECKSUM_FLAG:
            raise LtxError(
                f"invalid file checksum format {self.file_checksum:016x}: bit 63 must be set"
            )

    def validate_post_apply(self, header: LtxHeader) -> None:
        """The post-apply checksum rules: 0 with NoChecksum; else bit 63 set, and the empty-db
        checksum when commit is 0. (A NoChecksum file with commit 0 therefore passes with 0.)"""
        if header.no_checksum:
            if self.post_apply_checksum:
                raise LtxError(
                    "post-apply checksum not allowed when HEADER_FLAG_NO_CHECKSUM is set: "
                    f"got {self.post_apply_checksum:016x}, expected 0"
                )
        elif self.post_apply_checksum == 0:
            raise LtxError("post-apply checksum required when checksums are tracked")
        elif not self.post_apply_checksum & CHECKSUM_FLAG:
            raise LtxError(
                f"invalid post-apply checksum format {self.post_apply_checksum:016x}: "
                "bit 63 must be set"
            )
        elif header.commit == 0 and self.post_apply_checksum != EMPTY_DB_CHECKSUM:
            raise LtxError(
                f"post-apply checksum {self.post_apply_checksum:016x} is not the empty-database "
                f"checksum {EMPTY_DB_CHECKSUM:016x} required when commit is 0"
            )

    def marshal(self) -> bytes:
        return _TRAILER.pack(self.post_apply_checksum, self.file_checksum)

    @classmethod
    def unmarshal(cls, data: bytes | bytearray | memoryview, offset: int = 0) -> LtxTrailer:
        if len(data) - offset < TRAILER_SIZE:
            raise LtxError(f"truncated LTX file: the {TRAILER_SIZE}-byte trailer is incomplete")
        post, checksum = _TRAILER.unpack_from(data, offset)
        return cls(post, checksum)


class PageIndexEntry(NamedTuple):
    """Where a page's frame lies: absolute ``offset`` of its page header, ``size`` of the frame.

    A named tuple, not a dataclass: a shard's index builds 64 of them, and a frozen dataclass
    costs ~1 µs each to construct (a third of ``read_page_index``)."""

    pgno: int
    offset: int
    size: int


@dataclass(slots=True)
class LtxFile:
    """A decoded LTX file; ``pages`` and ``index`` are in ascending pgno order, one per page."""

    header: LtxHeader
    pages: list[tuple[int, bytes]]
    index: list[PageIndexEntry]
    trailer: LtxTrailer


def encode_page_index(pgnos: list[int], offsets: list[int], sizes: list[int]) -> bytes:
    """The page index: ``uvarint(pgno, offset, size)`` per page, ``uvarint(0)``, u64 BE length."""
    out = bytearray()
    append = out.append
    for entry in zip(pgnos, offsets, sizes, strict=True):
        for value in entry:
            while value >= 0x80:
                append((value & 0x7F) | 0x80)
                value >>= 7
            append(value)
    append(0)
    out += _U64.pack(len(out))
    return bytes(out)


def parse_index_columns(
    data: bytes | bytearray | memoryview, start: int, end: int
) -> tuple[list[int], list[int], list[int]]:
    """Parse the page index varints that occupy exactly ``data[start:end]``, 0 terminator last.

    Returns the (pgnos, offsets, sizes) columns. Varints follow Go ``binary.ReadUvarint``: at most
    10 bytes, values below 2**64. Checks only the syntax; callers check the entries against the
    frames or the file.
    """
    values: list[int] = []
    append = values.append
    value = shift = 0
    for byte in bytes(data[start:end]):
        if byte < 0x80:
            if shift == 63 and byte > 1:
                raise LtxError("page index is corrupt: a varint overflows 64 bits")
            append(value | (byte << shift))
            value = shift = 0
        else:
            value |= (byte & 0x7F) << shift
            shift += 7
            if shift > 63:
                raise LtxError("page index is corrupt: a varint is longer than 10 bytes")
    if shift or not values or values[-1] != 0 or len(values) % 3 != 1:
        raise LtxError(
            f"page index is corrupt: the {end - start} bytes before the index size field do not "
            "end with a complete (pgno, offset, size) list and its 0 terminator"
        )
    pgnos = values[0:-1:3]
    if 0 in pgnos:
        raise LtxError(
            "page index is corrupt: it has bytes after its 0 terminator (wrong index size field, "
            "or extra bytes after the trailer)"
        )
    return pgnos, values[1:-1:3], values[2:-1:3]


def parse_page_index(
    data: bytes | bytearray | memoryview, start: int, end: int
) -> list[PageIndexEntry]:
    """``parse_index_columns`` as a list of entries."""
    return list(map(PageIndexEntry, *parse_index_columns(data, start, end)))
