"""The LTX v3 writer: ``encode(header, pages)`` builds one complete file in memory.

Output is what the reference encoder (superfly/ltx >= v0.5.2) writes, up to the LZ4 compressor's
choices: each page is one frame ``pgno u32 | flags u16 = 0x0001 | size u32 | LZ4 block``, then the
zero page header, the page index and the trailer with the real file checksum.

Writer rules, each refused with an ``LtxError`` that names it:

- the header passes ``LtxHeader.validate``;
- every page is a bytes-like object of exactly ``page_size`` bytes;
- page numbers are at least 1, at most ``commit``, strictly ascending, and never the lock page;
- a snapshot (min_txid 1) holds exactly pages 1..commit, skipping only the lock page;
- the trailer's post-apply checksum is 0 with ``HEADER_FLAG_NO_CHECKSUM``; otherwise it is the
  caller's ``post_apply_checksum`` (required for non-snapshots, bit 63 set) or, for snapshots,
  the rolling checksum of the pages, which a given value must equal;
- commit 0 (a deleted database) needs checksum tracking and post-apply ``EMPTY_DB_CHECKSUM``;
  the format cannot express it with ``HEADER_FLAG_NO_CHECKSUM`` (the reference refuses it too).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable

import lz4.block

from sqlkv.errors import LtxError
from sqlkv.ltx.checksum import CHECKSUM_FLAG, EMPTY_DB_CHECKSUM, crc64, lock_pgno, page_checksum
from sqlkv.ltx.header import (
    HEADER_SIZE,
    PAGE_HEADER_FLAG_SIZE,
    PAGE_HEADER_SIZE,
    LtxHeader,
    encode_page_index,
)

__all__ = ["encode"]

_BLOCK_FRAME_HEADER = struct.Struct(">IHI")  # pgno, flags, compressed size
_U64 = struct.Struct(">Q")
_ZERO_PAGE_HEADER = bytes(PAGE_HEADER_SIZE)
_BYTES_LIKE = (bytes, bytearray, memoryview)


def _trailer_post_apply(header: LtxHeader, post_apply_checksum: int | None) -> int | None:
    """Check the caller's post-apply checksum up front; None means "compute it from the pages"."""
    if post_apply_checksum is not None and (
        not isinstance(post_apply_checksum, int) or not 0 <= post_apply_checksum < 1 << 64
    ):
        raise LtxError(f"post_apply_checksum {post_apply_checksum!r} is not a u64 int")
    if header.no_checksum:
        if header.commit == 0:
            raise LtxError(
                "cannot encode commit 0 with HEADER_FLAG_NO_CHECKSUM: an empty database needs "
                f"post-apply checksum {EMPTY_DB_CHECKSUM:016x}, which NoChecksum files may not "
                "carry; clear the flag to write a deletion"
            )
        if post_apply_checksum:
            raise LtxError(
                "post-apply checksum not allowed when HEADER_FLAG_NO_CHECKSUM is set: "
                f"got {post_apply_checksum:016x}; pass None or 0"
            )
        return 0
    if post_apply_checksum is None:
        if header.is_snapshot:
            return None
        raise LtxError(
            "post_apply_checksum required: a non-snapshot file with checksum tracking must carry "
            "the database checksum after it is applied (or set HEADER_FLAG_NO_CHECKSUM)"
        )
    if not post_apply_checksum & CHECKSUM_FLAG:
        raise LtxError(
            f"invalid post-apply checksum format {post_apply_checksum:016x}: bit 63 must be set"
        )
    if header.commit == 0 and post_apply_checksum != EMPTY_DB_CHECKSUM:
        raise LtxError(
            f"post-apply checksum {post_apply_checksum:016x} is not the empty-database checksum "
            f"{EMPTY_DB_CHECKSUM:016x} required when commit is 0"
        )
    return post_apply_checksum


def _page_error(header: LtxHeader, prev: int, pgno: object, page: object) -> LtxError:
    """The error for a page that failed the fast check in ``encode``, rules in reference order."""
    commit, page_size, lock = header.commit, header.page_size, lock_pgno(header.page_size)
    if not isinstance(pgno, int) or pgno < 1:
        return LtxError(f"page number required: got {pgno!r}; pages are numbered from 1")
    if pgno > commit:
        return LtxError(
            f"page number {pgno} out of bounds for commit size {commit}: "
            "a file cannot hold pages past the database size it commits"
        )
    if not isinstance(page, _BYTES_LIKE):
        return LtxError(f"page {pgno} is a {type(page).__name__}, expected bytes")
    if len(page) != page_size:
        return LtxError(
            f"invalid page buffer size for page {pgno}: {len(page)} bytes, expected the "
            f"header's page size {page_size}"
        )
    if pgno == lock:
        return LtxError(
            f"cannot encode the lock page {pgno} (the page holding byte 0x40000000 for page "
            f"size {page_size}); SQLite never stores data there"
        )
    if header.is_snapshot:
        expected = prev + 1 + (prev == lock - 1)
        return LtxError(
            f"nonsequential page numbers in snapshot: page {pgno} follows page {prev}, "
            f"expected {expected}; a snapshot holds every page 1..commit except the lock page"
        )
    return LtxError(
        f"out-of-order page numbers: page {pgno} follows page {prev}; pages must be strictly "
        "ascending with no duplicates"
    )


def encode(
    header: LtxHeader,
    pages: Iterable[tuple[int, bytes]],
    *,
    post_apply_checksum: int | None = None,
) -> bytes:
    """Encode ``pages`` (ascending ``(pgno, page)`` pairs) under ``header`` into one LTX v3 file.

    ``post_apply_checksum`` goes in the trailer; see the module docstring for when it is required,
    forbidden or computed. Raises ``LtxError`` naming the broken rule; nothing is returned then.
    """
    header_bytes = header.marshal()  # validates
    post_apply = _trailer_post_apply(header, post_apply_checksum)
    page_size, commit = header.page_size, header.commit
    lock = lock_pgno(page_size)
    snapshot = header.is_snapshot
    rolling = snapshot and not header.no_checksum
    compress = lz4.block.compress
    pack_frame_header = _BLOCK_FRAME_HEADER.pack

    chunks: list[bytes] = [header_bytes]
    crc = crc64(header_bytes, 0)
    pgnos: list[int] = []
    offsets: list[int] = []
    sizes: list[int] = []
    offset = HEADER_SIZE
    prev = 0
    db_checksum = 0
    for pgno, page in pages:
        # One combined test per page; _page_error says which rule failed.
        # Snapshots: 1, 2, ... skipping the lock page (prev + 1 is 1 for the first page).
        if (
            not isinstance(pgno, int)
            or not prev < pgno <= commit
            or pgno == lock
            or (snapshot and pgno != prev + 1 + (prev == lock - 1))
            or not isinstance(page, _BYTES_LIKE)
            or len(page) != page_size
        ):
            raise _page_error(header, prev, pgno, page)
        block = compress(page, store_size=False)
        frame_header = pack_frame_header(pgno, PAGE_HEADER_FLAG_SIZE, len(block))
        crc = crc64(page, crc64(frame_header, crc))
        chunks.append(frame_header)
        chunks.append(block)
        size = PAGE_HEADER_SIZE + 4 + len(block)
        pgnos.append(pgno)
        offsets.append(offset)
        sizes.append(size)
        offset += size
        if rolling:
            db_checksum ^= page_checksum(pgno, page)
        prev = pgno

    if snapshot:
        last = commit - 1 if commit == lock else commit
        if prev != last:
            raise LtxError(
                f"incomplete snapshot: last page is {prev} but commit is {commit}; a snapshot "
                "must hold every page 1..commit except the lock page"
            )
    if post_apply is None:
        post_apply = CHECKSUM_FLAG | db_checksum
    elif rolling and post_apply != CHECKSUM_FLAG | db_checksum:
        raise LtxError(
            f"post-apply checksum {post_apply:016x} does not match the snapshot's rolling "
            f"checksum {CHECKSUM_FLAG | db_checksum:016x}; pass None to have it computed"
        )

    tail = _ZERO_PAGE_HEADER + encode_page_index(pgnos, offsets, sizes) + _U64.pack(post_apply)
    chunks.append(tail)
    # The trailer obeys LtxTrailer.validate by construction: the post-apply checksum passed
    # _trailer_post_apply (or is the snapshot's own), and the file checksum has bit 63 set.
    chunks.append(_U64.pack(CHECKSUM_FLAG | crc64(tail, crc)))
    return b"".join(chunks)
