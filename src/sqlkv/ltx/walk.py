"""Finding pages in an LTX file of which only a prefix is at hand, by walking its frames.

A point read of a shard fetches only the chunks that must hold the page it wants
(``engine/read.py``: frames ascend by page number and none exceeds ``max_frame_size``), so the
page index at the file's end is not there: ``scan_pages`` walks the frame heads from the
header instead, in place in each chunk, and decodes only the frames asked for.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

from sqlkv.errors import LtxError
from sqlkv.ltx.decoder import (
    _PAGE_HEADER,
    _SIZE_FIELD,
    _U32,
    FileLike,
    SplitFile,
    _read_frame,
    _span,
    read_header,
)
from sqlkv.ltx.header import HEADER_SIZE, PAGE_HEADER_FLAG_SIZE, PAGE_HEADER_SIZE

__all__ = ["max_frame_size", "scan_pages"]

_FRAME_HEAD = struct.Struct(">IHI")  # a block frame's page header and size field


def max_frame_size(page_size: int) -> int:
    """The largest block frame a page of ``page_size`` can have: page header, size field and
    LZ4's worst case for incompressible input (``LZ4_compressBound``)."""
    return PAGE_HEADER_SIZE + _SIZE_FIELD + page_size + page_size // 255 + 16


def scan_pages(data: FileLike, pgnos: Sequence[int]) -> dict[int, bytes | None] | None:
    """The pages ``pgnos`` (None for one the file lacks), found by walking the frames from the
    header instead of through the page index: for a file of which only a prefix is at hand.

    Returns None when the walk cannot decide within ``data`` (it ends before a wanted page
    was reached or passed) or meets a legacy frame: read the whole file and use the index.
    Every frame it decodes is checked as ``read_page`` checks it; the page numbers it walks
    over must ascend.
    """
    page_size = read_header(_span(data, 0, HEADER_SIZE)).page_size
    want = sorted(set(pgnos))
    n_want = len(want)
    out: dict[int, bytes | None] = {}
    size, pos, prev, i = len(data), HEADER_SIZE, 0, 0
    parts, ends = data.pieces() if isinstance(data, SplitFile) else ([memoryview(data)], [size])
    last_part = len(parts) - 1
    k, view, base, piece_end = 0, parts[0], 0, ends[0]
    unpack, head_size = _FRAME_HEAD.unpack_from, _FRAME_HEAD.size
    target = want[0] if want else 0
    while i < n_want:
        while pos >= piece_end and k < last_part:
            k += 1
            view, base, piece_end = parts[k], piece_end, ends[k]
        if pos + head_size <= piece_end:  # the usual case: read in place
            pgno, flags, length = unpack(view, pos - base)
            sized = True
        elif pos + PAGE_HEADER_SIZE > size:
            return None
        else:
            head = _span(data, pos, pos + head_size)
            pgno, flags = _PAGE_HEADER.unpack_from(head)
            sized = len(head) == head_size
            length = _U32.unpack_from(head, PAGE_HEADER_SIZE)[0] if sized else 0
        if pgno == 0:
            if flags:
                raise LtxError(f"page header at offset {pos} has pgno 0 and flags 0x{flags:04x}")
            break  # the end of the page block: the rest are absent
        if flags != PAGE_HEADER_FLAG_SIZE:
            if flags == 0:
                return None  # a legacy frame (its length is found by parsing it)
            raise LtxError(f"invalid page header flags 0x{flags:04x} for page {pgno} at {pos}")
        if not sized:
            return None  # its size field lies past what is at hand
        if pgno <= prev:
            raise LtxError(f"out-of-order page numbers: page {pgno} follows page {prev}")
        end = pos + head_size + length
        if target <= pgno:
            while target < pgno:  # wanted pages this file skipped: absent
                out[target] = None
                i += 1
                if i == n_want:
                    return out
                target = want[i]
            if target == pgno:
                if end > size:
                    return None
                frame = memoryview(_span(data, pos, end))
                decoded = _read_frame(frame, 0, len(frame), page_size)
                if decoded is None or decoded[2] != len(frame):
                    raise LtxError(f"the frame of page {pgno} at offset {pos} is malformed")
                out[pgno] = decoded[1]
                i += 1
                if i < n_want:
                    target = want[i]
        prev, pos = pgno, end
    out.update(dict.fromkeys(want[i:]))
    return out
