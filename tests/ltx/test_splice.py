"""``ltx.splice``: rewriting a file with pages replaced, added and dropped writes exactly what
``encode`` writes for the merged pages, and refuses a damaged old file as ``decode`` does."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sqlkv.errors import LtxError
from sqlkv.ltx import HEADER_FLAG_NO_CHECKSUM, LtxHeader, decode, encode
from sqlkv.ltx.splice import NotSpliceable, splice

PAGE = 4096


def header(txid: int, commit: int, *, flags: int = HEADER_FLAG_NO_CHECKSUM) -> LtxHeader:
    return LtxHeader(
        flags=flags,
        page_size=PAGE,
        commit=commit,
        min_txid=txid,
        max_txid=txid,
        timestamp_ms=1_700_000_000_000 + txid,
    )


def page(tag: int, pgno: int) -> bytes:
    line = f"row {pgno} version {tag} payload;".encode()
    return (line * (PAGE // len(line) + 1))[:PAGE]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    old=st.sets(st.integers(1, 64), max_size=64),
    new=st.sets(st.integers(1, 64), max_size=20),
    commit=st.integers(1, 70),
)
def test_splice_writes_what_encode_writes(old: set[int], new: set[int], commit: int) -> None:
    before = {p: page(1, p) for p in old}
    blob = encode(header(5, 64), sorted(before.items())) if before else None
    pages = {p: page(2, p) for p in new}
    merged = {p: d for p, d in (before | pages).items() if p <= commit}
    want = encode(header(9, commit), sorted(merged.items())) if merged else None
    assert splice(blob, pages, header(9, commit)) == want
    if want is not None:
        assert decode(want).pages == sorted(merged.items())


def test_incompressible_pages_are_copied_too() -> None:
    before = {p: os.urandom(PAGE) for p in range(1, 65)}
    blob = encode(header(5, 64), sorted(before.items()))
    pages = {3: os.urandom(PAGE), 65: os.urandom(PAGE)}
    out = splice(blob, pages, header(6, 65))
    assert out is not None
    assert decode(out).pages == sorted((before | pages).items())


def test_a_damaged_old_file_is_refused() -> None:
    blob = encode(header(5, 8), [(p, page(1, p)) for p in range(1, 9)])
    flipped = bytearray(blob)
    flipped[200] ^= 0x01  # inside the first LZ4 block: decompresses wrong, or not at all
    with pytest.raises(LtxError):
        splice(bytes(flipped), {2: page(2, 2)}, header(6, 8))
    with pytest.raises(LtxError):
        splice(blob[:-1], {2: page(2, 2)}, header(6, 8))


def test_what_the_fast_path_leaves_to_decode_and_encode() -> None:
    blob = encode(header(5, 8), [(p, page(1, p)) for p in range(1, 9)])
    with pytest.raises(NotSpliceable):
        splice(blob, {}, header(1, 8))  # a snapshot
    with pytest.raises(NotSpliceable):
        splice(blob, {}, header(6, 8, flags=0))  # checksum tracking
    with pytest.raises(LtxError):
        splice(blob, {2: b"short"}, header(6, 8))
