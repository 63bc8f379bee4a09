"""Round trips over random page sets, the writer's rules, and decoder checks the reference lacks."""

from __future__ import annotations

import random
import struct
from dataclasses import dataclass, replace
from typing import Any

import lz4.frame
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sqlkv.errors import LtxError
from sqlkv.ltx import (
    CHECKSUM_FLAG,
    EMPTY_DB_CHECKSUM,
    HEADER_FLAG_NO_CHECKSUM,
    HEADER_SIZE,
    LtxHeader,
    crc64,
    decode,
    decode_frame,
    encode,
    lock_pgno,
    read_header,
    read_page,
    read_page_index,
    rolling_checksum,
)

PAGE_SIZES = [512, 1024, 2048, 4096, 8192, 16384, 32768, 65536]
RAW_BYTES_PER_EXAMPLE = 1 << 20  # keeps each example around 10 ms
MAX_PGNO = (1 << 32) - 1

# SQLite-table-like text: repetitive rows with varying numbers, so it compresses a few times over.
_ROWS = b"".join(
    b"\x0d%07d|user%02d@example.com|2024-01-%02d|%d\x00" % (i, i % 97, i % 28 + 1, i * 7919 % 10007)
    for i in range(4000)
)


def _page(rng: random.Random, kind: str, size: int) -> bytes:
    if kind == "mixed":
        kind = rng.choice(["text", "random", "zero"])
    if kind == "random":
        return rng.randbytes(size)
    if kind == "zero":
        return bytes(size)
    start = rng.randrange(len(_ROWS) - size)
    page = bytearray(_ROWS[start : start + size])
    page[0:8] = rng.randbytes(8)  # a page header that differs between pages
    return bytes(page)


def _sequential(start: int, count: int, lock: int) -> list[int]:
    pgnos: list[int] = []
    pgno = start
    while len(pgnos) < count:
        if pgno != lock:
            pgnos.append(pgno)
        pgno += 1
    return pgnos


@dataclass
class Case:
    header: LtxHeader
    pages: list[tuple[int, bytes]]
    post_apply: int | None


@st.composite
def cases(draw: st.DrawFn) -> Case:
    page_size = draw(st.sampled_from(PAGE_SIZES))
    most = min(1000, RAW_BYTES_PER_EXAMPLE // page_size)
    count = draw(st.sampled_from([1, most]) | st.integers(1, most))
    layout = draw(st.sampled_from(["snapshot", "dense", "around_lock", "sparse"]))
    content = draw(st.sampled_from(["text", "random", "zero", "mixed"]))
    no_checksum = draw(st.booleans())
    rng = random.Random(draw(st.integers(0, 2**64 - 1)))
    lock = lock_pgno(page_size)

    if layout == "snapshot":
        pgnos = list(range(1, count + 1))
        commit, min_txid = count, 1
    else:
        if layout == "dense":
            pgnos = _sequential(rng.randint(1, 3 * lock), count, lock)
        elif layout == "around_lock":
            pgnos = _sequential(lock - count // 2, count, lock)
        else:
            pgnos = sorted(set(rng.sample(range(1, MAX_PGNO - 100), count)) - {lock})
        commit = min(MAX_PGNO, pgnos[-1] + rng.choice([0, 1, 1000]))
        min_txid = rng.randint(2, 1 << 40)
    header = LtxHeader(
        flags=HEADER_FLAG_NO_CHECKSUM if no_checksum else 0,
        page_size=page_size,
        commit=commit,
        min_txid=min_txid,
        max_txid=min_txid + rng.randint(0, 5),
        timestamp_ms=rng.randint(-(1 << 63), (1 << 63) - 1),
        pre_apply_checksum=(
            0 if no_checksum or min_txid == 1 else CHECKSUM_FLAG | rng.getrandbits(63)
        ),
        node_id=rng.getrandbits(64),
    )
    post_apply = None
    if not no_checksum and min_txid != 1:
        post_apply = CHECKSUM_FLAG | rng.getrandbits(63)
    pages = [(pgno, _page(rng, content, page_size)) for pgno in pgnos]
    return Case(header, pages, post_apply)


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(case=cases(), probe=st.randoms(use_true_random=False))
def test_encoded_pages_decode_back_identically(case: Case, probe: random.Random) -> None:
    data = encode(case.header, iter(case.pages), post_apply_checksum=case.post_apply)

    decoded = decode(data)
    assert decoded.header == case.header
    assert decoded.pages == case.pages
    if case.header.no_checksum:
        assert decoded.trailer.post_apply_checksum == 0
    elif case.header.is_snapshot:
        assert decoded.trailer.post_apply_checksum == rolling_checksum(case.pages)
    else:
        assert decoded.trailer.post_apply_checksum == case.post_apply
    assert decoded.trailer.file_checksum & CHECKSUM_FLAG
    assert decode(data, verify_checksum=False) == decoded

    assert read_header(data) == case.header
    index = read_page_index(data)
    assert list(index.values()) == decoded.index
    assert decoded.index[0].offset == HEADER_SIZE
    for before, after in zip(decoded.index, decoded.index[1:], strict=False):
        assert after.offset == before.offset + before.size
    for pgno, page in probe.sample(case.pages, min(5, len(case.pages))):
        assert read_page(data, pgno, index) == page
    absent = {case.header.commit + 1, case.pages[0][0] - 1, case.pages[-1][0] + 1} - {
        pgno for pgno, _ in case.pages
    }
    for pgno in absent:
        assert read_page(data, pgno, index) is None


@settings(max_examples=100, deadline=None)
@given(
    page_size=st.sampled_from(PAGE_SIZES),
    kind=st.sampled_from(["text", "random", "zero"]),
    seed=st.integers(0, 2**32),
    block_size=st.sampled_from(
        [lz4.frame.BLOCKSIZE_MAX64KB, lz4.frame.BLOCKSIZE_MAX256KB, lz4.frame.BLOCKSIZE_MAX4MB]
    ),
    block_checksum=st.booleans(),
    content_checksum=st.booleans(),
    store_size=st.booleans(),
)
def test_legacy_frame_pages_decode_whatever_the_lz4_frame_options(
    page_size: int,
    kind: str,
    seed: int,
    block_size: int,
    block_checksum: bool,
    content_checksum: bool,
    store_size: bool,
) -> None:
    # v0.5.0/v0.5.1 writers stored each page as a whole LZ4 frame; its length is found by parsing.
    page = _page(random.Random(seed), kind, page_size)
    body = lz4.frame.compress(
        page,
        block_size=block_size,
        block_checksum=block_checksum,
        content_checksum=content_checksum,
        store_size=store_size,
    )
    frame = struct.pack(">IH", 7, 0) + body
    assert decode_frame(frame, page_size) == (7, page)
    with pytest.raises(LtxError, match=r"^frame of page 7 is \d+ bytes but \d+ were given"):
        decode_frame(frame + b"\x00", page_size)
    with pytest.raises(LtxError, match=r"truncated"):
        decode_frame(frame[:-1], page_size)


# ----------------------------------------------------------------------------- writer rules

DELTA = LtxHeader(page_size=512, commit=10, min_txid=2, max_txid=2)
SNAPSHOT = LtxHeader(page_size=512, commit=3)
PAGE = bytes(range(256)) * 2


def _pages(*pgnos: int) -> list[tuple[int, bytes]]:
    return [(pgno, PAGE) for pgno in pgnos]


@pytest.mark.parametrize(
    ("pages", "pattern"),
    [
        (_pages(0), r"^page number required: got 0"),
        (_pages(-1), r"^page number required: got -1"),
        (_pages(3, 2), r"^out-of-order page numbers: page 2 follows page 3"),
        (_pages(2, 2), r"^out-of-order page numbers: page 2 follows page 2"),
        (_pages(11), r"^page number 11 out of bounds for commit size 10"),
        ([(1, PAGE[:-1])], r"^invalid page buffer size for page 1: 511 bytes, expected .* 512"),
        ([(1, PAGE + b"x")], r"^invalid page buffer size for page 1: 513 bytes"),
        ([(1, "text" * 128)], r"^page 1 is a str, expected bytes"),
    ],
)
def test_encode_rejects_pages_that_break_a_writer_rule(
    pages: list[tuple[int, Any]], pattern: str
) -> None:
    with pytest.raises(LtxError, match=pattern):
        encode(DELTA, pages)


def test_encode_rejects_the_lock_page_but_accepts_its_neighbours() -> None:
    lock = lock_pgno(512)
    header = replace(DELTA, commit=lock + 1)
    with pytest.raises(LtxError, match=rf"^cannot encode the lock page {lock}"):
        encode(header, _pages(lock - 1, lock, lock + 1))
    decoded = decode(encode(header, _pages(lock - 1, lock + 1)))
    assert [pgno for pgno, _ in decoded.pages] == [lock - 1, lock + 1]


@pytest.mark.parametrize(
    ("pgnos", "pattern"),
    [
        ((2, 3), r"^nonsequential page numbers in snapshot: page 2 follows page 0, expected 1"),
        ((1, 3), r"^nonsequential page numbers in snapshot: page 3 follows page 1, expected 2"),
        ((1, 2), r"^incomplete snapshot: last page is 2 but commit is 3"),
        ((), r"^incomplete snapshot: last page is 0 but commit is 3"),
    ],
)
def test_encode_rejects_snapshots_without_every_page(pgnos: tuple[int, ...], pattern: str) -> None:
    with pytest.raises(LtxError, match=pattern):
        encode(SNAPSHOT, _pages(*pgnos))


@pytest.mark.parametrize(
    ("fields", "pattern"),
    [
        ({"flags": 1}, r"^invalid header flags 0x00000001"),
        ({"flags": 4}, r"^invalid header flags 0x00000004"),
        ({"page_size": 1000}, r"^invalid page size 1000"),
        ({"page_size": 256}, r"^invalid page size 256"),
        ({"page_size": 131072}, r"^invalid page size 131072"),
        ({"min_txid": 0}, r"^minimum transaction id required"),
        ({"min_txid": 1, "max_txid": 0}, r"^maximum transaction id required"),
        ({"min_txid": 3, "max_txid": 2}, r"^transaction ids out of order"),
        ({"wal_offset": -1}, r"^wal offset cannot be negative: -1"),
        ({"wal_offset": 32, "wal_size": -1}, r"^wal size cannot be negative: -1"),
        ({"wal_salt1": 7}, r"^wal offset required if a wal salt is set"),
        ({"wal_salt2": 7}, r"^wal offset required if a wal salt is set"),
        ({"wal_size": 4096}, r"^wal offset required if wal size is set"),
        ({"min_txid": 1, "pre_apply_checksum": CHECKSUM_FLAG}, r"^pre-apply checksum must be zero"),
        ({"pre_apply_checksum": CHECKSUM_FLAG}, r"^pre-apply checksum not allowed"),
        ({"flags": 0}, r"^pre-apply checksum required on non-snapshot"),
        ({"flags": 0, "pre_apply_checksum": 5}, r"^invalid pre-apply checksum format"),
        ({"commit": 1 << 32}, r"^header field commit=4294967296 is out of range"),
        ({"node_id": -1}, r"^header field node_id=-1 is out of range"),
        ({"timestamp_ms": 1 << 63}, r"^header field timestamp_ms=.* is out of range"),
    ],
)
def test_encode_rejects_invalid_headers(fields: dict[str, int], pattern: str) -> None:
    header = replace(DELTA, **fields)
    with pytest.raises(LtxError, match=pattern):
        header.validate()
    with pytest.raises(LtxError, match=pattern):
        encode(header, _pages(1), post_apply_checksum=CHECKSUM_FLAG)


def test_encode_requires_post_apply_for_checksum_tracked_deltas() -> None:
    header = replace(DELTA, flags=0, pre_apply_checksum=CHECKSUM_FLAG | 1)
    with pytest.raises(LtxError, match=r"^post_apply_checksum required"):
        encode(header, _pages(1))
    with pytest.raises(LtxError, match=r"^invalid post-apply checksum format 0000000000000005"):
        encode(header, _pages(1), post_apply_checksum=5)
    decoded = decode(encode(header, _pages(1), post_apply_checksum=CHECKSUM_FLAG | 9))
    assert decoded.trailer.post_apply_checksum == CHECKSUM_FLAG | 9


def test_encode_forbids_post_apply_when_checksums_are_not_tracked() -> None:
    with pytest.raises(LtxError, match=r"^post-apply checksum not allowed"):
        encode(DELTA, _pages(1), post_apply_checksum=CHECKSUM_FLAG | 1)
    assert decode(encode(DELTA, _pages(1), post_apply_checksum=0)).trailer.post_apply_checksum == 0


def test_encode_computes_and_checks_a_tracked_snapshots_post_apply() -> None:
    header = replace(SNAPSHOT, flags=0)
    expected = rolling_checksum(_pages(1, 2, 3))
    assert decode(encode(header, _pages(1, 2, 3))).trailer.post_apply_checksum == expected
    assert decode(encode(header, _pages(1, 2, 3), post_apply_checksum=expected)).pages
    with pytest.raises(LtxError, match=r"^post-apply checksum 8000000000000001 does not match"):
        encode(header, _pages(1, 2, 3), post_apply_checksum=CHECKSUM_FLAG | 1)


def test_encode_writes_deletions_only_with_the_empty_database_checksum() -> None:
    with pytest.raises(LtxError, match=r"^cannot encode commit 0 with HEADER_FLAG_NO_CHECKSUM"):
        encode(replace(DELTA, commit=0), [])
    tracked = replace(DELTA, commit=0, flags=0, pre_apply_checksum=CHECKSUM_FLAG | 1)
    with pytest.raises(LtxError, match=r"^post-apply checksum 8000000000000001 is not the empty"):
        encode(tracked, [], post_apply_checksum=CHECKSUM_FLAG | 1)
    deleted = decode(encode(tracked, [], post_apply_checksum=EMPTY_DB_CHECKSUM))
    assert (deleted.pages, deleted.trailer.post_apply_checksum) == ([], EMPTY_DB_CHECKSUM)
    empty_snapshot = decode(encode(replace(SNAPSHOT, commit=0, flags=0), []))
    assert empty_snapshot.trailer.post_apply_checksum == EMPTY_DB_CHECKSUM


def test_encode_without_pages_is_byte_identical_to_the_reference(
    vector_files: dict[str, bytes],
) -> None:
    # No LZ4 output is involved, so our bytes must equal the reference encoder's exactly.
    reference = vector_files["empty_nochecksum_4096.ltx"]
    header = LtxHeader(commit=2, min_txid=3, max_txid=3, timestamp_ms=1700000003000)
    assert encode(header, []) == reference


# ----------------------------------------------------------------------------- decoder rules
# Files laid out by hand with a CORRECT file checksum, so that each test shows a structural check
# firing (the reference Decoder.Verify accepts all of these except the short block).


def _uvarints(*values: int) -> bytes:
    out = bytearray()
    for value in values:
        while value >= 0x80:
            out.append((value & 0x7F) | 0x80)
            value >>= 7
        out.append(value)
    return bytes(out)


def _craft(
    header: LtxHeader,
    frames: list[tuple[int, bytes, bytes | None]],
    *,
    index: list[tuple[int, int, int]] | None = None,
    index_size_delta: int = 0,
    post_apply: int = 0,
) -> bytes:
    """An LTX file from (pgno, page, LZ4 block or None to compress page) with a valid checksum."""
    out = bytearray(header.marshal())
    crc = crc64(out, 0)
    entries = []
    for pgno, page, block in frames:
        body = lz4.block.compress(page, store_size=False) if block is None else block
        frame_header = struct.pack(">IHI", pgno, 1, len(body))
        entries.append((pgno, len(out), 10 + len(body)))
        crc = crc64(page, crc64(frame_header, crc))
        out += frame_header + body
    varints = b"".join(_uvarints(*e) for e in (entries if index is None else index)) + b"\x00"
    tail = bytes(6) + varints + struct.pack(">QQ", len(varints) + index_size_delta, post_apply)
    return bytes(out + tail) + struct.pack(">Q", CHECKSUM_FLAG | crc64(tail, crc))


def _frames(*pgnos: int) -> list[tuple[int, bytes, bytes | None]]:
    return [(pgno, PAGE, None) for pgno in pgnos]


def test_craft_builds_files_the_decoder_accepts() -> None:
    data = _craft(DELTA, _frames(1, 5))
    assert decode(data).pages == _pages(1, 5)
    assert read_page(data, 5) == PAGE


@pytest.mark.parametrize(
    ("header", "frames", "pattern"),
    [
        (DELTA, _frames(3, 2), r"^out-of-order page numbers: page 2 follows page 3"),
        (DELTA, _frames(2, 2), r"^out-of-order page numbers: page 2 follows page 2"),
        (DELTA, _frames(11), r"^page number 11 out of bounds for commit size 10"),
        (
            replace(DELTA, commit=lock_pgno(512) + 1),
            _frames(lock_pgno(512)),
            rf"^file holds the lock page {lock_pgno(512)}",
        ),
        (
            SNAPSHOT,
            _frames(1, 3),
            r"^nonsequential page numbers in snapshot: page 3 follows page 1",
        ),
        (SNAPSHOT, _frames(1, 2), r"^incomplete snapshot: last page is 2 but commit is 3"),
        (
            DELTA,
            [(1, PAGE, lz4.block.compress(PAGE[:100], store_size=False))],
            r"^page 1 \(frame at offset 100\) decompresses to 100 bytes, expected the page size",
        ),
    ],
)
def test_decode_rejects_frames_that_break_a_rule(
    header: LtxHeader, frames: list[tuple[int, bytes, bytes | None]], pattern: str
) -> None:
    with pytest.raises(LtxError, match=pattern):
        decode(_craft(header, frames))


def test_decode_rejects_an_index_that_does_not_match_the_frames() -> None:
    good = read_page_index(_craft(DELTA, _frames(1, 2)))
    entries = [(e.pgno, e.offset, e.size) for e in good.values()]
    moved = [entries[0], (2, entries[1][1] + 1, entries[1][2])]
    with pytest.raises(LtxError, match=r"^page index entry 1 is PageIndexEntry\(pgno=2"):
        decode(_craft(DELTA, _frames(1, 2), index=moved))
    with pytest.raises(LtxError, match=r"^page index lists 1 pages but the file holds 2 frames"):
        decode(_craft(DELTA, _frames(1, 2), index=entries[:1]))


def test_decode_and_read_page_index_reject_a_wrong_index_size_field() -> None:
    data = _craft(DELTA, _frames(1, 2), index_size_delta=1)
    with pytest.raises(LtxError, match=r"^page index size field says \d+ bytes, the index is"):
        decode(data)
    with pytest.raises(LtxError, match=r"page index size \d+ .* is wrong"):
        read_page_index(data)


def test_read_page_rejects_an_index_entry_that_points_at_another_page() -> None:
    data = _craft(DELTA, _frames(1, 2))
    index = read_page_index(data)
    swapped = {1: index[2]._replace(pgno=1), 2: index[2]}
    with pytest.raises(LtxError, match=r"^page index is corrupt: the entry for page 1 points at"):
        read_page(data, 1, swapped)


def test_decode_rejects_bytes_after_the_trailer() -> None:
    with pytest.raises(LtxError, match=r"page index is corrupt|file checksum mismatch"):
        decode(_craft(DELTA, _frames(1)) + b"\x00")


def test_decode_enforces_the_post_apply_rules_the_reference_checks_only_when_writing() -> None:
    with pytest.raises(LtxError, match=r"^post-apply checksum not allowed"):
        decode(_craft(DELTA, _frames(1), post_apply=CHECKSUM_FLAG | 1))
    tracked = replace(DELTA, flags=0, pre_apply_checksum=CHECKSUM_FLAG | 1)
    with pytest.raises(LtxError, match=r"^post-apply checksum required"):
        decode(_craft(tracked, _frames(1), post_apply=0))
    with pytest.raises(LtxError, match=r"^invalid post-apply checksum format"):
        decode(_craft(tracked, _frames(1), post_apply=1))
