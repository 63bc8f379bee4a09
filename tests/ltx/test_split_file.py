"""``SplitFile``: the page index and pages of an LTX file held in pieces (a blob's chunks) are
exactly those of the joined file, whatever the cut points (frames spanning pieces included)."""

from __future__ import annotations

import itertools
import random

import pytest

from sqlkv.errors import LtxError
from sqlkv.ltx import LtxHeader, encode, read_page, read_page_index
from sqlkv.ltx.decoder import SplitFile
from sqlkv.ltx.walk import scan_pages


def _file(seed: int) -> tuple[bytes, list[tuple[int, bytes]]]:
    rng = random.Random(seed)
    pages = [
        (pgno, rng.randbytes(512) if pgno % 3 else bytes([pgno % 256]) * 512)
        for pgno in sorted(rng.sample(range(1, 200), 40))
    ]
    header = LtxHeader(page_size=512, commit=200, min_txid=2, max_txid=2)
    return encode(header, pages), pages


def _split(data: bytes, cuts: list[int]) -> SplitFile:
    bounds = [0, *sorted(set(cuts)), len(data)]
    return SplitFile([memoryview(data)[a:b] for a, b in itertools.pairwise(bounds)])


@pytest.mark.parametrize("seed", range(8))
def test_a_split_file_reads_like_the_joined_file(seed: int) -> None:
    data, pages = _file(seed)
    rng = random.Random(seed)
    cuts = [rng.randrange(1, len(data)) for _ in range(rng.randrange(1, 6))]
    split = _split(data, cuts)
    index = read_page_index(split)
    assert len(split) == len(data)
    assert index == read_page_index(data)
    assert index.header == read_page_index(data).header
    for pgno, page in pages:
        assert read_page(split, pgno, index) == page
        assert read_page(split, pgno) == page
    absent = next(p for p in range(1, 200) if p not in dict(pages))
    assert read_page(split, absent, index) is None


def test_span_copies_only_across_pieces() -> None:
    data = bytes(range(256)) * 4
    split = _split(data, [100, 300, 301])
    assert isinstance(split.span(10, 90), memoryview)  # inside one piece: a view
    for start, end in [(0, 1024), (99, 101), (250, 302), (300, 301), (1000, 2000), (5, 5)]:
        assert bytes(split.span(start, end)) == data[start:end]


def test_a_corrupt_frame_in_a_split_file_is_an_ltx_error_naming_its_offset() -> None:
    data, pages = _file(1)
    index = read_page_index(data)
    entry = index[pages[5][0]]
    damaged = bytearray(data)
    damaged[entry.offset + 12] ^= 0xFF  # inside the LZ4 block
    damaged[entry.offset + 13] ^= 0xFF
    with pytest.raises(LtxError, match=f"file offset {entry.offset}"):
        read_page(_split(bytes(damaged), [entry.offset + 7]), pages[5][0], index)


@pytest.mark.parametrize("seed", range(4))
def test_scan_pages_walks_the_frames_of_a_prefix(seed: int) -> None:
    data, pages = _file(seed)
    have = dict(pages)
    wanted = [pages[3][0], pages[0][0], 1, pages[-1][0], 199]
    expect = {p: have.get(p) for p in wanted}
    assert scan_pages(_split(data, [len(data) // 3]), wanted) == expect
    last = read_page_index(data)[pages[10][0]]
    prefix = _split(data[: last.offset + last.size], [50, last.offset + 3])
    assert scan_pages(prefix, [pages[10][0]]) == {pages[10][0]: have[pages[10][0]]}
    assert scan_pages(prefix, [pages[11][0]]) is None, "past the prefix: undecided"
    assert scan_pages(prefix, [pages[10][0] + 1]) is None, "the next frame header is past it"
