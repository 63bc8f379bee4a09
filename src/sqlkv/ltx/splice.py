"""Rewriting an LTX file with some pages replaced, added or dropped, without re-encoding the
pages that stay: ``splice(old, pages, header)``.

Compaction folds a few new pages into a 64-page shard. Decoding the old shard and encoding the
new one recompresses every page and makes two CRC calls per page (anycrc's call costs ~2 us
whatever the length). Here the frames of the pages that stay are copied as stored: an LZ4 block
is independent of its neighbours and of its offset (docs/ltx-v3-format.md §4), so only the page
index, the header and the trailer are new. The file checksum covers the *uncompressed* pages
(§7), so every old page is still decompressed, once: the old file is walked frame by frame and
verified against its checksum as ``decode`` does (its index, covered by that checksum, is not
parsed: the new file gets its own), and each checksum is one CRC over the joined covered bytes.

The output is byte for byte what ``encode(header, merged pages)`` writes (the same LZ4 library
compressed the copied frames). Anything this fast path does not handle (a legacy LZ4-frame
page, a snapshot, checksum tracking) raises ``NotSpliceable`` so the caller decodes and encodes;
``LtxError`` means the old file is damaged.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping

import lz4.block

from sqlkv.errors import LtxError
from sqlkv.ltx.checksum import CHECKSUM_FLAG, crc64, lock_pgno
from sqlkv.ltx.decoder import read_header
from sqlkv.ltx.header import (
    HEADER_SIZE,
    PAGE_HEADER_FLAG_SIZE,
    PAGE_HEADER_SIZE,
    LtxHeader,
    encode_page_index,
)

__all__ = ["NotSpliceable", "splice"]

_FRAME = struct.Struct(">IHI")  # pgno, flags, compressed size
_FRAME_HEADER = _FRAME.size
_U64 = struct.Struct(">Q")
_ZERO_PAGE_HEADER = bytes(PAGE_HEADER_SIZE)
_TAIL = 8 + 16  # index length + trailer


class NotSpliceable(Exception):
    """The file or header is valid but outside the fast path: decode and encode instead."""


def _old_frames(old: bytes, page_size: int) -> dict[int, tuple[memoryview, bytes]]:
    """pgno -> (stored frame, page) of every page of ``old``, walked frame by frame as
    ``decode`` walks them and verified against the file checksum. The old page index is
    covered by the checksum but not parsed: the new file gets an index of its own."""
    header = read_header(old)  # validates
    if header.page_size != page_size:
        raise NotSpliceable("page size differs")
    view = memoryview(old)
    limit = len(old) - _TAIL  # the u64 index length
    covered: list[bytes | memoryview] = [view[:HEADER_SIZE]]
    frames: dict[int, tuple[memoryview, bytes]] = {}
    decompress, unpack = lz4.block.decompress, _FRAME.unpack_from
    pos, prev = HEADER_SIZE, 0
    while True:
        if pos + _FRAME_HEADER > limit:
            raise LtxError(f"truncated LTX file: the frame at offset {pos} is incomplete")
        pgno, flags, size = unpack(view, pos)
        if not pgno and not flags:
            break  # the zero page header ends the page block
        if flags != PAGE_HEADER_FLAG_SIZE or not pgno:
            raise NotSpliceable("a legacy LZ4-frame page, or a bad page header: decode decides")
        end = pos + _FRAME_HEADER + size
        if end > limit or pgno <= prev or pgno > header.commit:
            raise LtxError(f"the frame of page {pgno} at offset {pos} is out of place")
        try:
            page = decompress(view[pos + _FRAME_HEADER : end], uncompressed_size=page_size)
        except lz4.block.LZ4BlockError as exc:
            raise LtxError(f"cannot decompress page {pgno}: {exc}") from None
        if len(page) != page_size:
            raise LtxError(f"page {pgno} decompresses to {len(page)} bytes, not {page_size}")
        covered += (view[pos : pos + _FRAME_HEADER], page)
        frames[pgno] = (view[pos:end], page)
        pos, prev = end, pgno
    if _U64.unpack_from(old, limit)[0] != limit - pos - PAGE_HEADER_SIZE:
        raise LtxError("the page index length does not match the page block")
    covered.append(view[pos : len(old) - 8])
    if CHECKSUM_FLAG | crc64(b"".join(covered), 0) != _U64.unpack_from(old, len(old) - 8)[0]:
        raise LtxError("file checksum mismatch: the file is corrupt")
    return frames


def splice(old: bytes | None, pages: Mapping[int, bytes], header: LtxHeader) -> bytes | None:
    """The LTX file under ``header`` holding ``old``'s pages (a whole file, or None) with
    ``pages`` over them, pages above ``header.commit`` left out (None: no page is left);
    ``old``'s frames are copied, only ``pages`` are compressed. Raises ``LtxError`` (old file
    damaged, a page of the wrong size, the lock page) or ``NotSpliceable`` (use ``decode``
    and ``encode``)."""
    if header.is_snapshot or not header.no_checksum or not header.commit:
        raise NotSpliceable("snapshots, deletions and checksum-tracked files are encoded whole")
    header_bytes = header.marshal()  # validates
    page_size, commit, lock = header.page_size, header.commit, lock_pgno(header.page_size)
    frames = _old_frames(old, page_size) if old is not None else {}
    out: list[bytes | memoryview] = [header_bytes]
    covered: list[bytes | memoryview] = [header_bytes]
    pgnos = sorted(p for p in frames.keys() | pages.keys() if p <= commit)
    if not pgnos:
        return None
    offsets: list[int] = []
    sizes: list[int] = []
    offset = HEADER_SIZE
    compress, pack = lz4.block.compress, _FRAME.pack
    for pgno in pgnos:
        page = pages.get(pgno)
        if page is None:
            frame, page = frames[pgno]
            out.append(frame)
            covered += (frame[:_FRAME_HEADER], page)
            size = len(frame)
        else:
            if pgno < 1 or pgno == lock or len(page) != page_size:
                raise LtxError(f"page {pgno} cannot be stored ({len(page)} bytes, lock {lock})")
            block = compress(page, store_size=False)
            head = pack(pgno, PAGE_HEADER_FLAG_SIZE, len(block))
            out += (head, block)
            covered += (head, page)
            size = _FRAME_HEADER + len(block)
        offsets.append(offset)
        sizes.append(size)
        offset += size
    tail = _ZERO_PAGE_HEADER + encode_page_index(pgnos, offsets, sizes) + _U64.pack(0)
    covered.append(tail)
    out += (tail, _U64.pack(CHECKSUM_FLAG | crc64(b"".join(covered), 0)))
    return b"".join(out)
