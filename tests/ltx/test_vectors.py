"""The codec against the reference vectors in shared/ltx-vectors (built with superfly/ltx)."""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sqlkv.errors import LtxError
from sqlkv.ltx import (
    HEADER_SIZE,
    LtxFile,
    LtxHeader,
    crc64,
    decode,
    decode_frame,
    encode,
    lock_pgno,
    page_checksum,
    read_header,
    read_page,
    read_page_index,
    rolling_checksum,
    update_checksum,
)

MakePage = Callable[[dict[str, Any], int], bytes]
FileChecksumOf = Callable[[bytes, LtxFile], int]

_FLAG = 1 << 63

# Each invalid vector, the pattern our error must match, and whether read_header alone rejects it.
INVALID: dict[str, tuple[str, bool]] = {
    "bad_file_checksum.ltx": (r"^file checksum mismatch: trailer has f1d08f0ac3a2b025", False),
    "zero_trailer.ltx": (r"^file checksum mismatch: trailer has 0000000000000000.*all-zero", False),
    "bad_page_flags.ltx": (r"^invalid page header flags 0x0003 for page 1 at offset 100", False),
    "bad_header_flags.ltx": (r"^invalid header flags 0x00000003", True),
    "nochecksum_with_preapply.ltx": (r"^pre-apply checksum not allowed", True),
    "checksum_missing_preapply.ltx": (r"^pre-apply checksum required on non-snapshot", True),
    "corrupt_page_data.ltx": (r"^file checksum mismatch: trailer has a7a8b39197c78ef7", False),
    "snapshot_wrong_postapply.ltx": (
        r"^post-apply checksum in trailer \(8000000000000001\) does not match"
        r" .*\(fa1f0758aca428a7\)",
        False,
    ),
}
# Mutations that leave the structure intact: with verification off they decode.
CHECKSUM_ONLY = {
    "bad_file_checksum.ltx",
    "zero_trailer.ltx",
    "corrupt_page_data.ltx",
    "snapshot_wrong_postapply.ltx",
}


def _header_of(vector: dict[str, Any]) -> LtxHeader:
    h = vector["header"]
    return LtxHeader(
        flags=h["flags"],
        page_size=h["page_size"],
        commit=h["commit"],
        min_txid=h["min_txid"],
        max_txid=h["max_txid"],
        timestamp_ms=h["timestamp_ms"],
        pre_apply_checksum=int(h["pre_apply_checksum_hex"], 16),
        wal_offset=h["wal_offset"],
        wal_size=h["wal_size"],
        wal_salt1=h["wal_salt1"],
        wal_salt2=h["wal_salt2"],
        node_id=h["node_id"],
    )


def _pages_of(vector: dict[str, Any], make_page: MakePage) -> list[tuple[int, bytes]]:
    size = vector["header"]["page_size"]
    return [(p["pgno"], make_page(p["rule"], size)) for p in vector["pages"]]


def test_manifest_covers_every_vector_file(
    ltx_manifest: dict[str, Any], vector_files: dict[str, bytes], ltx_vectors_dir: Path
) -> None:
    on_disk = {p.name for p in ltx_vectors_dir.glob("*.ltx")}
    assert on_disk == set(vector_files)
    valid = [v["file"] for v in ltx_manifest["vectors"] if v["valid"]]
    invalid = [v["file"] for v in ltx_manifest["vectors"] if not v["valid"]]
    assert (len(valid), len(invalid)) == (8, 8)
    assert set(invalid) == set(INVALID), "every invalid vector needs an expected error here"


def test_vector_file_is_the_one_the_manifest_describes(
    ltx_manifest: dict[str, Any], vector_files: dict[str, bytes]
) -> None:
    for vector in ltx_manifest["vectors"]:
        data = vector_files[vector["file"]]
        assert len(data) == vector["file_size"], vector["file"]
        assert hashlib.sha256(data).hexdigest() == vector["file_sha256"], vector["file"]


def test_decode_gives_the_manifest_pages_header_index_and_trailer(
    valid_vector: dict[str, Any],
    vector_files: dict[str, bytes],
    make_page: MakePage,
    file_checksum_of: FileChecksumOf,
) -> None:
    data = vector_files[valid_vector["file"]]
    decoded = decode(data)

    assert decoded.header == _header_of(valid_vector)
    assert data[:4] == valid_vector["header"]["magic"].encode()
    assert [pgno for pgno, _ in decoded.pages] == [p["pgno"] for p in valid_vector["pages"]]
    for (pgno, page), want in zip(decoded.pages, valid_vector["pages"], strict=True):
        assert page == make_page(want["rule"], decoded.header.page_size), pgno
        assert hashlib.sha256(page).hexdigest() == want["sha256"]
        if "page_checksum_hex" in want:
            assert page_checksum(pgno, page) == int(want["page_checksum_hex"], 16)

    assert [(e.pgno, e.offset, e.size) for e in decoded.index] == [
        (p["pgno"], p["frame_offset"], p["frame_size"]) for p in valid_vector["pages"]
    ]
    for entry, want in zip(decoded.index, valid_vector["pages"], strict=True):
        flags = struct.unpack_from(">H", data, entry.offset + 4)[0]
        assert flags == want["page_header_flags"]
        if flags == 1:
            assert struct.unpack_from(">I", data, entry.offset + 6)[0] == want["compressed_size"]
        else:
            assert entry.size - 6 == want["lz4_frame_size"]

    index_size = struct.unpack_from(">Q", data, len(data) - 24)[0]
    assert index_size == valid_vector["page_index_size"]
    assert len(data) - 24 - index_size == valid_vector["page_index_offset"]
    last_end = decoded.index[-1].offset + decoded.index[-1].size if decoded.index else HEADER_SIZE
    assert last_end + 6 == valid_vector["page_index_offset"]

    trailer = decoded.trailer
    assert trailer.post_apply_checksum == int(valid_vector["trailer_post_apply_checksum_hex"], 16)
    assert trailer.file_checksum == int(valid_vector["trailer_file_checksum_hex"], 16)
    assert file_checksum_of(data, decoded) == trailer.file_checksum


def test_read_header_alone_matches_the_manifest(
    valid_vector: dict[str, Any], vector_files: dict[str, bytes]
) -> None:
    data = vector_files[valid_vector["file"]]
    assert read_header(data[:HEADER_SIZE]) == _header_of(valid_vector)


def test_read_page_index_from_the_end_matches_the_manifest(
    valid_vector: dict[str, Any], vector_files: dict[str, bytes]
) -> None:
    index = read_page_index(vector_files[valid_vector["file"]])
    assert {pgno: (e.offset, e.size) for pgno, e in index.items()} == {
        p["pgno"]: (p["frame_offset"], p["frame_size"]) for p in valid_vector["pages"]
    }


def test_read_page_decodes_one_page_and_none_for_absent_pages(
    valid_vector: dict[str, Any], vector_files: dict[str, bytes], make_page: MakePage
) -> None:
    data = vector_files[valid_vector["file"]]
    index = read_page_index(data)
    for pgno, page in _pages_of(valid_vector, make_page):
        assert read_page(data, pgno, index) == page
        assert read_page(data, pgno) == page
    present = {p["pgno"] for p in valid_vector["pages"]}
    for absent in {1, 2, valid_vector["header"]["commit"], valid_vector["header"]["commit"] + 1}:
        if absent not in present:
            assert read_page(data, absent, index) is None


def test_decode_frame_decodes_each_indexed_slice(
    valid_vector: dict[str, Any], vector_files: dict[str, bytes], make_page: MakePage
) -> None:
    data = vector_files[valid_vector["file"]]
    page_size = valid_vector["header"]["page_size"]
    for want in valid_vector["pages"]:
        frame = data[want["frame_offset"] : want["frame_offset"] + want["frame_size"]]
        assert decode_frame(frame, page_size) == (want["pgno"], make_page(want["rule"], page_size))


def test_reencoded_vector_decodes_to_the_manifest_content(
    valid_vector: dict[str, Any], make_page: MakePage, file_checksum_of: FileChecksumOf
) -> None:
    header = _header_of(valid_vector)
    pages = _pages_of(valid_vector, make_page)
    post_apply = int(valid_vector["trailer_post_apply_checksum_hex"], 16)
    # Snapshots get their post-apply checksum computed; deltas must be told theirs.
    data = encode(header, pages, post_apply_checksum=None if header.is_snapshot else post_apply)

    decoded = decode(data)
    assert decoded.header == header
    assert decoded.pages == pages
    assert decoded.trailer.post_apply_checksum == post_apply
    assert file_checksum_of(data, decoded) == decoded.trailer.file_checksum
    assert struct.unpack(">Q", data[-8:])[0] == decoded.trailer.file_checksum

    # Our LZ4 output differs from pierrec's, so check the index rules rather than the numbers.
    offset = HEADER_SIZE
    for entry, (pgno, _) in zip(decoded.index, pages, strict=True):
        assert (entry.pgno, entry.offset) == (pgno, offset)
        assert data[offset + 4 : offset + 6] == b"\x00\x01"  # always the block format
        assert entry.size == 10 + struct.unpack_from(">I", data, offset + 6)[0]
        offset += entry.size
    index_size = struct.unpack_from(">Q", data, len(data) - 24)[0]
    assert len(data) - 24 - index_size == offset + 6
    assert read_page_index(data) == {e.pgno: e for e in decoded.index}


@pytest.mark.parametrize("name", sorted(INVALID))
def test_invalid_vector_is_rejected_naming_the_problem(
    name: str, vector_files: dict[str, bytes]
) -> None:
    pattern, header_rule = INVALID[name]
    data = vector_files[name]
    with pytest.raises(LtxError, match=pattern):
        decode(data)
    if header_rule:
        with pytest.raises(LtxError, match=pattern):
            read_header(data)
        with pytest.raises(LtxError, match=pattern):
            read_page_index(data)
    else:
        read_header(data)


@pytest.mark.parametrize("name", sorted(CHECKSUM_ONLY))
def test_checksum_only_corruption_decodes_when_verification_is_off(
    name: str, vector_files: dict[str, bytes]
) -> None:
    decoded = decode(vector_files[name], verify_checksum=False)
    assert decoded.pages
    with pytest.raises(LtxError, match="checksum"):
        decode(vector_files[name])


def test_rolling_checksums_chain_from_snapshot_to_delta(
    ltx_manifest: dict[str, Any], make_page: MakePage
) -> None:
    vectors = {v["file"]: v for v in ltx_manifest["vectors"]}
    snapshot = vectors["snapshot_checksum_4096.ltx"]
    delta = vectors["delta_checksum_4096.ltx"]
    before = dict(_pages_of(snapshot, make_page))
    changed = dict(_pages_of(delta, make_page))

    pre = rolling_checksum(before.items())
    assert pre == int(snapshot["trailer_post_apply_checksum_hex"], 16)
    assert pre == int(delta["header"]["pre_apply_checksum_hex"], 16)
    post = update_checksum(
        pre,
        remove=[page_checksum(n, before[n]) for n in changed if n in before],
        add=[page_checksum(n, p) for n, p in changed.items()],
    )
    assert post == int(delta["trailer_post_apply_checksum_hex"], 16)
    assert post == rolling_checksum({**before, **changed}.items())


def test_crc64_is_go_iso_and_lock_pages_match_sqlite() -> None:
    assert crc64(b"123456789", 0) == 0xB90956C775A41001
    assert crc64(b"56789", crc64(b"1234", 0)) == 0xB90956C775A41001
    assert lock_pgno(4096) == 262145
    assert lock_pgno(512) == 2097153
    assert lock_pgno(65536) == 16385
    assert rolling_checksum([]) == _FLAG
