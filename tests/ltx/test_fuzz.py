"""Hostile input: truncated, corrupted and random bytes never raise anything but ``LtxError``.

A corrupted file that still decodes must either give exactly the original content (an LZ4 block
can be altered without changing its output) or be a true collision of the format's CRC-64/GO-ISO,
which misses some two-byte changes 8 bytes apart: the checksum, recomputed independently over what
was decoded, must then match the trailer. Anything else would be a hole in the codec's coverage.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sqlkv.errors import LtxError
from sqlkv.ltx import (
    HEADER_SIZE,
    LtxFile,
    LtxHeader,
    decode,
    decode_frame,
    encode,
    read_header,
    read_page,
    read_page_index,
)

FUZZ = settings(max_examples=1000, deadline=None)
PAGE_SIZES = [512, 1024, 4096, 65536]


def _ltx_error_or_result(call: Callable[..., Any], *args: Any) -> Any:
    """Run ``call(*args)``; an ``LtxError`` is allowed (and returned), anything else fails."""
    try:
        return call(*args)
    except LtxError as exc:
        return exc


def _every_reader(data: bytes, pgno: int) -> None:
    _ltx_error_or_result(lambda: decode(data))
    _ltx_error_or_result(lambda: decode(data, verify_checksum=False))
    _ltx_error_or_result(lambda: read_header(data))
    _ltx_error_or_result(lambda: read_page_index(data))
    _ltx_error_or_result(lambda: read_page(data, pgno))
    for page_size in PAGE_SIZES:
        _ltx_error_or_result(decode_frame, data, page_size)


def _same_content(a: LtxFile, b: LtxFile) -> bool:
    return (a.header, a.pages, a.index, a.trailer) == (b.header, b.pages, b.index, b.trailer)


@FUZZ
@given(data=st.data(), tail=st.binary(max_size=600), pgno=st.integers(0, 1 << 33))
def test_random_bytes_raise_only_ltx_error(
    data: st.DataObject, tail: bytes, pgno: int, valid_vector_files: dict[str, bytes]
) -> None:
    # Half the inputs keep a valid header so that the frame, index and trailer parsers are reached.
    name = data.draw(st.sampled_from(sorted(valid_vector_files)))
    keep = data.draw(st.sampled_from([0, 4, HEADER_SIZE, HEADER_SIZE + 6, HEADER_SIZE + 10]))
    _every_reader(valid_vector_files[name][:keep] + tail, pgno)


def test_every_truncation_of_a_valid_vector_is_rejected(
    valid_vector_files: dict[str, bytes],
) -> None:
    for data in valid_vector_files.values():
        step = 1 if len(data) < 10_000 else 97  # the 64 KiB vector: a sample of cut points
        cuts = sorted({*range(0, len(data), step), *range(len(data) - 40, len(data))})
        for cut in cuts:
            with pytest.raises(LtxError):
                decode(data[:cut])
            with pytest.raises(LtxError):
                decode(data[:cut], verify_checksum=False)
            _ltx_error_or_result(read_page_index, data[:cut])
            _ltx_error_or_result(read_page, data[:cut], 1)


@FUZZ
@given(data=st.data())
def test_mutated_vector_is_rejected_or_decodes_to_the_same_content(
    data: st.DataObject,
    valid_vector_files: dict[str, bytes],
    file_checksum_of: Callable[[bytes, LtxFile], int],
) -> None:
    name = data.draw(st.sampled_from(sorted(valid_vector_files)))
    original = valid_vector_files[name]
    mutated = bytearray(original)
    for _ in range(data.draw(st.integers(1, 4))):
        pos = data.draw(st.integers(0, len(mutated) - 1))
        mutated[pos] ^= data.draw(st.integers(1, 255))
    if bytes(mutated) == original:
        return  # two flips cancelled out
    result = _ltx_error_or_result(lambda: decode(bytes(mutated)))
    if not isinstance(result, LtxError) and not _same_content(result, decode(original)):
        assert file_checksum_of(bytes(mutated), result) == result.trailer.file_checksum, (
            "corruption was accepted although the file checksum does not cover it"
        )
    pgno = data.draw(st.integers(1, 10))
    _ltx_error_or_result(lambda: decode(bytes(mutated), verify_checksum=False))
    _ltx_error_or_result(lambda: read_page_index(bytes(mutated)))
    _ltx_error_or_result(lambda: read_page(bytes(mutated), pgno))


@FUZZ
@given(
    pgno=st.integers(0, (1 << 32) - 1),
    flags=st.sampled_from([0, 1, 2, 0x8001]),
    declared=st.integers(0, 5000),
    body=st.binary(max_size=300),
    page_size=st.sampled_from(PAGE_SIZES),
    legacy_magic=st.booleans(),
)
def test_random_frames_raise_only_ltx_error(
    pgno: int, flags: int, declared: int, body: bytes, page_size: int, legacy_magic: bool
) -> None:
    frame = struct.pack(">IH", pgno, flags)
    if flags & 1:
        frame += struct.pack(">I", declared)
    elif legacy_magic:
        frame += b"\x04\x22\x4d\x18"
    _ltx_error_or_result(lambda: decode_frame(frame + body, page_size))


@FUZZ
@given(data=st.data())
def test_mutated_frame_of_a_fresh_file_raises_only_ltx_error(data: st.DataObject) -> None:
    # Frames are not covered by a checksum of their own: a mutated frame may decode to another
    # page, but it must never raise anything other than LtxError.
    page_size = data.draw(st.sampled_from([512, 1024]))
    if data.draw(st.booleans()):
        page = data.draw(st.binary(min_size=page_size, max_size=page_size))
    else:
        page = bytes([data.draw(st.integers(0, 255))]) * page_size
    file = encode(LtxHeader(page_size=page_size, commit=1), [(1, page)])
    entry = read_page_index(file)[1]
    frame = bytearray(file[entry.offset : entry.offset + entry.size])
    pos = data.draw(st.integers(0, len(frame) - 1))
    frame[pos] ^= data.draw(st.integers(1, 255))
    result = _ltx_error_or_result(lambda: decode_frame(bytes(frame), page_size))
    if not isinstance(result, LtxError):
        found, _ = result
        assert found == (1 if pos >= 4 else struct.unpack_from(">I", frame)[0])


def test_file_checksum_misses_two_byte_changes_eight_bytes_apart() -> None:
    """A limit of the format, pinned so nobody relies on the LTX checksum alone: CRC-64/GO-ISO
    (x^64 + x^4 + x^3 + x + 1) cannot see page byte k XOR 0x10 together with byte k+8 XOR 0x1B."""
    page = bytes(random.Random(7).randbytes(4096))  # incompressible: stored as literals
    file = bytearray(encode(LtxHeader(commit=1), [(1, page)]))
    literals = file.index(page[100:164])  # where page byte 100 sits inside the LZ4 block
    file[literals] ^= 0x10
    file[literals + 8] ^= 0x1B
    decoded = decode(bytes(file))
    changed = bytearray(page)
    changed[100] ^= 0x10
    changed[108] ^= 0x1B
    assert decoded.pages == [(1, bytes(changed))]
