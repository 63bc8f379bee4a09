"""The LTX v3 readers: whole-file ``decode``, ``read_header``, and random access through the index.

``decode`` verifies a file like the reference ``Decoder.Verify`` (header rules, page header rules,
every page decompresses, file checksum, and for checksum-tracked snapshots the post-apply checksum)
and, being the storage engine's reader, also checks what the reference leaves out:

- every page decompresses to exactly ``page_size`` bytes;
- page numbers are strictly ascending, at most ``commit``, never the lock page; a snapshot holds
  exactly pages 1..commit except the lock page (as the reference ``DecodeDatabaseTo`` requires);
- the page index lists exactly the frames (pgno, offset, size), its u64 length is right, and the
  trailer ends the file;
- the trailer's post-apply checksum obeys ``LtxTrailer.validate_post_apply`` (the reference checks
  it in the encoder only).

Checks run in the reference's order: header, then each frame, then the file checksum, then the rest,
so a corrupted file is reported as a checksum mismatch rather than by a symptom of the corruption.

Both page encodings decode: v0.5.2+ block frames (flag 0x0001: u32 size + LZ4 block) and the
v0.5.0/v0.5.1 legacy frames (flag clear: one complete LZ4 frame, its length found by parsing it).
Every problem raises ``LtxError``; no other exception escapes for any input bytes.
"""

from __future__ import annotations

import struct
from bisect import bisect_right
from operator import itemgetter

import lz4.block
import lz4.frame

from sqlkv.errors import LtxError
from sqlkv.ltx.checksum import CHECKSUM_FLAG, crc64, lock_pgno, rolling_checksum
from sqlkv.ltx.header import (
    HEADER_SIZE,
    PAGE_HEADER_FLAG_SIZE,
    PAGE_HEADER_SIZE,
    TRAILER_SIZE,
    LtxFile,
    LtxHeader,
    LtxTrailer,
    PageIndexEntry,
    is_valid_page_size,
    parse_index_columns,
    parse_page_index,
)

__all__ = [
    "PageIndex",
    "SplitFile",
    "decode",
    "decode_frame",
    "read_header",
    "read_page",
    "read_page_index",
]

BytesLike = bytes | bytearray | memoryview


class SplitFile:
    """An LTX file held as consecutive pieces (a stored blob's checked chunk payloads), for
    ``read_page_index`` and ``read_page`` without joining them: a point read copies the one
    frame it decodes (when it spans two pieces) instead of the whole file."""

    __slots__ = ("_ends", "_parts", "_size")

    def __init__(self, parts: list[memoryview]) -> None:
        self._parts = parts
        self._ends: list[int] = []
        size = 0
        for part in parts:
            size += len(part)
            self._ends.append(size)
        self._size = size

    def __len__(self) -> int:
        return self._size

    def pieces(self) -> tuple[list[memoryview], list[int]]:
        """The pieces and the file offset where each ends."""
        return self._parts, self._ends

    def span(self, start: int, end: int) -> BytesLike:
        """Bytes ``start:end`` (clipped to the file): a view when one piece holds them."""
        end = min(end, self._size)
        if start >= end:
            return b""
        i = bisect_right(self._ends, start)
        base = self._ends[i] - len(self._parts[i])
        if end <= self._ends[i]:
            return self._parts[i][start - base : end - base]
        out = [self._parts[i][start - base :]]
        while end > self._ends[i]:
            i += 1
            out.append(self._parts[i][: end - self._ends[i] + len(self._parts[i])])
        return b"".join(out)


FileLike = BytesLike | SplitFile


def _span(data: FileLike, start: int, end: int) -> BytesLike:
    return data.span(start, end) if isinstance(data, SplitFile) else memoryview(data)[start:end]


_PAGE_HEADER = struct.Struct(">IH")
_U32 = struct.Struct(">I")
_U32_LE = struct.Struct("<I")
_U64 = struct.Struct(">Q")
_SIZE_FIELD = 4
_INDEX_SIZE_FIELD = 8
_TAIL_SIZE = _INDEX_SIZE_FIELD + TRAILER_SIZE  # index length + trailer, after the varints
_MIN_FILE_SIZE = HEADER_SIZE + PAGE_HEADER_SIZE + 1 + _TAIL_SIZE

_decompress_block = lz4.block.decompress
_LZ4_FRAME_MAGIC = 0x184D2204
_LZ4_BLOCK_MAX = {4: 64 << 10, 5: 256 << 10, 6: 1 << 20, 7: 4 << 20}


def read_header(data: BytesLike) -> LtxHeader:
    """Parse and validate the 100-byte header of ``data`` (a whole file or just its start)."""
    return LtxHeader.unmarshal(data)


def _lz4_frame_length(data: BytesLike, start: int, end: int) -> int:
    """Length of the LZ4 frame at ``data[start:end]``, found by walking its block sizes."""

    def need(pos: int, n: int) -> None:
        if pos + n > end:
            raise LtxError(f"legacy LZ4 frame at offset {start} is truncated")

    need(start, 7)
    if _U32_LE.unpack_from(data, start)[0] != _LZ4_FRAME_MAGIC:
        raise LtxError(
            f"legacy page at offset {start} is not an LZ4 frame (magic 04 22 4d 18 missing); "
            "the page header flags say it is one"
        )
    flg, bd = data[start + 4], data[start + 5]
    if flg >> 6 != 1 or flg & 0x02 or bd & 0x8F or (bd >> 4) & 0x07 not in _LZ4_BLOCK_MAX:
        raise LtxError(f"legacy LZ4 frame at offset {start} has an invalid descriptor")
    block_max = _LZ4_BLOCK_MAX[(bd >> 4) & 0x07]
    block_checksum = 4 if flg & 0x10 else 0
    pos = start + 6 + (8 if flg & 0x08 else 0) + (4 if flg & 0x01 else 0) + 1  # + header checksum
    while True:
        need(pos, 4)
        raw_size = _U32_LE.unpack_from(data, pos)[0]
        pos += 4
        if raw_size == 0:  # end mark
            break
        block_size = raw_size & 0x7FFFFFFF  # high bit: block stored uncompressed
        if block_size > block_max:
            raise LtxError(f"legacy LZ4 frame at offset {start} has an oversized block")
        pos += block_size + block_checksum
        need(pos, 0)
    pos += 4 if flg & 0x04 else 0  # content checksum
    need(pos, 0)
    return pos - start


def _where(pgno: int, pos: int) -> str:
    return f"page {pgno} (frame at offset {pos})"


def _decompress_legacy(frame: memoryview, page_size: int, pgno: int, pos: int) -> bytes:
    decompressor = lz4.frame.LZ4FrameDecompressor()
    try:
        page = decompressor.decompress(frame, max_length=page_size + 1)
    except (RuntimeError, ValueError) as exc:
        raise LtxError(
            f"cannot decompress the legacy LZ4 frame of {_where(pgno, pos)}: {exc}"
        ) from None
    if len(page) != page_size or not decompressor.eof:
        raise LtxError(
            f"{_where(pgno, pos)} decompresses to the wrong size: page size is {page_size} bytes "
            f"(legacy LZ4 frame gave {len(page)}{'' if decompressor.eof else '+'})"
        )
    return bytes(page)


def _read_frame(
    view: memoryview, pos: int, end: int, page_size: int
) -> tuple[int, bytes, int, int] | None:
    """Decode the frame at ``pos`` without reading past ``end``; None at the zero page header.

    Returns ``(pgno, page, frame_end, covered)``: the file checksum covers the frame's first
    ``covered`` bytes (page header, and size field for block frames), then ``page``.
    """
    if pos + PAGE_HEADER_SIZE > end:
        raise LtxError(f"truncated LTX file: page header at offset {pos} is incomplete")
    pgno, flags = _PAGE_HEADER.unpack_from(view, pos)
    if flags == PAGE_HEADER_FLAG_SIZE and pgno:  # the usual block frame
        body = pos + PAGE_HEADER_SIZE + _SIZE_FIELD
        if body > end:
            raise LtxError(f"truncated LTX file: size field of {_where(pgno, pos)} is incomplete")
        frame_end = body + _U32.unpack_from(view, pos + PAGE_HEADER_SIZE)[0]
        if frame_end > end:
            raise LtxError(
                f"truncated LTX file: LZ4 block of {_where(pgno, pos)} runs past the end"
            )
        try:
            page: bytes = _decompress_block(view[body:frame_end], uncompressed_size=page_size)
        except lz4.block.LZ4BlockError as exc:
            raise LtxError(
                f"cannot decompress {_where(pgno, pos)}: corrupt LZ4 block, or it decompresses "
                f"to more than the page size {page_size} ({exc})"
            ) from None
        if len(page) != page_size:
            raise LtxError(
                f"{_where(pgno, pos)} decompresses to {len(page)} bytes, expected the page "
                f"size {page_size}"
            )
        return pgno, page, frame_end, PAGE_HEADER_SIZE + _SIZE_FIELD
    if pgno == 0:
        if flags == 0:
            return None
        raise LtxError(
            f"page number required: page header at offset {pos} has pgno 0 and flags 0x{flags:04x}"
        )
    if flags:
        raise LtxError(
            f"invalid page header flags 0x{flags:04x} for page {pgno} at offset {pos}: "
            "only 0x0001 (size field and LZ4 block) is defined"
        )
    body = pos + PAGE_HEADER_SIZE
    frame_end = body + _lz4_frame_length(view, body, end)
    page = _decompress_legacy(view[body:frame_end], page_size, pgno, pos)
    return pgno, page, frame_end, PAGE_HEADER_SIZE


def decode_frame(frame: BytesLike, page_size: int) -> tuple[int, bytes]:
    """Decode one frame (the ``(offset, size)`` slice an index entry names) to ``(pgno, page)``."""
    if not is_valid_page_size(page_size):
        raise LtxError(
            f"invalid page size {page_size}: it must be a power of two from 512 to 65536"
        )
    decoded = _read_frame(memoryview(frame), 0, len(frame), page_size)
    if decoded is None:
        raise LtxError(
            "page number required: this is the zero page header that ends the page block, "
            "not a page frame"
        )
    pgno, page, frame_end, _ = decoded
    if frame_end != len(frame):
        raise LtxError(
            f"frame of page {pgno} is {frame_end} bytes but {len(frame)} were given; "
            "pass exactly the slice the page index names"
        )
    return pgno, page


def _order_error(pgno: int, prev: int, commit: int, lock: int, snapshot: bool) -> LtxError:
    if pgno <= prev:
        return LtxError(f"out-of-order page numbers: page {pgno} follows page {prev}")
    if pgno > commit:
        return LtxError(f"page number {pgno} out of bounds for commit size {commit}")
    if pgno == lock:
        return LtxError(f"file holds the lock page {pgno}, which is never stored")
    return LtxError(
        f"nonsequential page numbers in snapshot: page {pgno} follows page {prev}; a snapshot "
        "holds every page 1..commit except the lock page"
    )


def _check_entries(entries: list[PageIndexEntry], index_start: int) -> None:
    """Check index entries found from the end of the file without reading the frames."""
    prev_pgno, prev_end = 0, HEADER_SIZE
    for entry in entries:
        if entry.pgno <= prev_pgno or entry.pgno > 0xFFFFFFFF:
            raise LtxError(
                f"page index is corrupt: page {entry.pgno} follows page {prev_pgno} "
                "(entries must be strictly ascending u32 page numbers)"
            )
        if entry.offset < prev_end or entry.size <= PAGE_HEADER_SIZE:
            raise LtxError(
                f"page index is corrupt: frame of page {entry.pgno} at offset {entry.offset} "
                f"size {entry.size} overlaps the header or the previous frame"
            )
        prev_pgno, prev_end = entry.pgno, entry.offset + entry.size
    if prev_end > index_start - PAGE_HEADER_SIZE:
        raise LtxError(
            f"page index is corrupt: the frame of page {prev_pgno} ends at {prev_end}, past the "
            f"end of the page block at {index_start - PAGE_HEADER_SIZE}"
        )


def _locate_index(data: FileLike) -> tuple[int, int]:
    """Find the page index from the file's end, like Litestream: ``(start, end)`` of its varints."""
    if len(data) < _MIN_FILE_SIZE:
        raise LtxError(
            f"truncated LTX file: {len(data)} bytes, the smallest file is {_MIN_FILE_SIZE} bytes"
        )
    end = len(data) - _TAIL_SIZE
    index_size = _U64.unpack_from(_span(data, end, end + _INDEX_SIZE_FIELD))[0]
    start = end - index_size
    if index_size < 1 or start < HEADER_SIZE + PAGE_HEADER_SIZE:
        raise LtxError(
            f"page index size {index_size} (u64 at offset {end}) does not fit in a "
            f"{len(data)}-byte file; the file is truncated or corrupt"
        )
    if any(_span(data, start - PAGE_HEADER_SIZE, start)):
        raise LtxError(
            f"page index size {index_size} (u64 at offset {end}) is wrong: the 6 bytes before "
            "the index are not the zero page header that ends the page block"
        )
    return start, end


class PageIndex(dict[int, PageIndexEntry]):
    """A file's page index (pgno -> entry) that remembers the file's validated header, so
    that ``read_page`` with it neither parses nor validates the header again."""

    __slots__ = ("header",)

    def __init__(self, header: LtxHeader, entries: list[PageIndexEntry]) -> None:
        super().__init__(zip(map(itemgetter(0), entries), entries, strict=True))
        self.header = header


def read_page_index(data: FileLike) -> PageIndex:
    """The page index of a whole file, found from its end (u64 length at ``filesize - 24``).

    Validates the header and the index's own consistency, not the frames; ``decode`` does that.
    The bounds of every entry are checked here once, so ``read_page`` need not.
    """
    header = read_header(_span(data, 0, HEADER_SIZE))
    start, end = _locate_index(data)
    entries = parse_page_index(_span(data, start, end), 0, end - start)
    _check_entries(entries, start)
    return PageIndex(header, entries)


def read_page(
    data: FileLike, pgno: int, index: dict[int, PageIndexEntry] | None = None
) -> bytes | None:
    """Page ``pgno`` of a whole file, decompressing only its frame; None if the file lacks it.

    Pass the ``index`` from ``read_page_index`` (of this same ``data``) to skip parsing the
    index and the header again on every call: then only the frame is read and checked.
    """
    if isinstance(index, PageIndex):
        page_size = index.header.page_size
    else:
        page_size = read_header(_span(data, 0, HEADER_SIZE)).page_size
        if index is None:
            index = read_page_index(data)
    entry = index.get(pgno)
    if entry is None:
        return None
    if entry.offset < HEADER_SIZE or entry.offset + entry.size > len(data):
        raise LtxError(
            f"page index entry for page {pgno} (offset {entry.offset}, size {entry.size}) "
            f"lies outside the {len(data)}-byte file"
        )
    end = entry.offset + entry.size
    if isinstance(data, SplitFile):  # the frame alone, from offset 0 of its own bytes
        frame = memoryview(data.span(entry.offset, end))
        try:
            decoded = _read_frame(frame, 0, entry.size, page_size)
        except LtxError as exc:
            raise LtxError(
                f"{exc} (offsets from the frame at file offset {entry.offset})"
            ) from None
        if decoded is not None:
            decoded = (decoded[0], decoded[1], decoded[2] + entry.offset, decoded[3])
    else:
        decoded = _read_frame(memoryview(data), entry.offset, end, page_size)
    if decoded is None or decoded[2] != end:
        raise LtxError(
            f"page index is corrupt: the entry for page {pgno} (offset {entry.offset}, size "
            f"{entry.size}) does not name exactly one page frame"
        )
    if decoded[0] != pgno:
        raise LtxError(
            f"page index is corrupt: the entry for page {pgno} points at a frame of page "
            f"{decoded[0]}"
        )
    return decoded[1]


def decode(data: BytesLike, *, verify_checksum: bool = True) -> LtxFile:
    """Decode and verify a whole LTX file (see the module docstring for every check).

    ``verify_checksum=False`` skips the CRC work: the file checksum and a snapshot's post-apply
    rolling checksum are not verified. Every structural check still runs.
    """
    header = read_header(data)
    page_size, commit, lock = header.page_size, header.commit, lock_pgno(header.page_size)
    snapshot = header.is_snapshot
    size = len(data)
    limit = size - _TAIL_SIZE  # frames and index varints end before the u64 index length
    crc = crc64(data[:HEADER_SIZE], 0) if verify_checksum else 0

    view = memoryview(data)
    pages: list[tuple[int, bytes]] = []
    pgnos: list[int] = []
    offsets: list[int] = []
    sizes: list[int] = []
    pos, prev = HEADER_SIZE, 0
    while (frame := _read_frame(view, pos, limit, page_size)) is not None:
        pgno, page, frame_end, covered = frame
        # Snapshots: 1, 2, ... skipping the lock page (prev + 1 is 1 for the first page).
        if (
            not prev < pgno <= commit
            or pgno == lock
            or (snapshot and pgno != prev + 1 + (prev == lock - 1))
        ):
            raise _order_error(pgno, prev, commit, lock, snapshot)
        if verify_checksum:
            crc = crc64(page, crc64(view[pos : pos + covered], crc))
        pages.append((pgno, page))
        pgnos.append(pgno)
        offsets.append(pos)
        sizes.append(frame_end - pos)
        pos, prev = frame_end, pgno
    if snapshot and prev != (commit - 1 if commit == lock else commit):
        raise LtxError(
            f"incomplete snapshot: last page is {prev} but commit is {commit}; "
            "a snapshot must hold every page 1..commit except the lock page"
        )

    index_start, index_end = pos + PAGE_HEADER_SIZE, limit
    columns = parse_index_columns(view, index_start, index_end)
    trailer = LtxTrailer.unmarshal(view, index_end + _INDEX_SIZE_FIELD)
    if verify_checksum:
        crc = crc64(view[pos : size - 8], crc)
        if CHECKSUM_FLAG | crc != trailer.file_checksum:
            hint = (
                "an all-zero trailer comes from a writer that skips the checksum (e.g. Rivet)"
                if trailer.file_checksum == 0
                else "the file is corrupt"
            )
            raise LtxError(
                f"file checksum mismatch: trailer has {trailer.file_checksum:016x}, the content "
                f"gives {CHECKSUM_FLAG | crc:016x}; {hint}"
            )
    index_size = _U64.unpack_from(view, index_end)[0]
    if index_size != index_end - index_start:
        raise LtxError(
            f"page index size field says {index_size} bytes, the index is "
            f"{index_end - index_start}; readers that locate the index from the end would fail"
        )
    if columns != (pgnos, offsets, sizes):
        entries = list(map(PageIndexEntry, *columns))
        frames = list(map(PageIndexEntry, pgnos, offsets, sizes))
        for i, (entry, frame_entry) in enumerate(zip(entries, frames, strict=False)):
            if entry != frame_entry:
                raise LtxError(f"page index entry {i} is {entry} but the frame is {frame_entry}")
        raise LtxError(
            f"page index lists {len(entries)} pages but the file holds {len(frames)} frames"
        )
    if verify_checksum and snapshot and not header.no_checksum:
        expected = rolling_checksum(pages)
        if trailer.post_apply_checksum != expected:
            raise LtxError(
                f"post-apply checksum in trailer ({trailer.post_apply_checksum:016x}) does not "
                f"match the rolling checksum of the snapshot's pages ({expected:016x})"
            )
    trailer.validate_post_apply(header)
    index = list(map(PageIndexEntry, pgnos, offsets, sizes))
    return LtxFile(header=header, pages=pages, index=index, trailer=trailer)
