"""LTX blobs in the store: encoding page sets, cutting them into value-sized chunks, and
reading them back whole. Every size here is counted as the store counts it (key + value).

Each chunk is sealed (``seal.seal_chunk``: its data, the blob's chunk count and a 128-bit
check), so a chunk holds ``max_value_bytes - CHUNK_OVERHEAD`` bytes of the LTX file."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from sqlkv.engine.keys import DbKeys
from sqlkv.engine.seal import CHUNK_OVERHEAD, chunk_payload_size, join_chunks, seal_chunk
from sqlkv.ltx import HEADER_FLAG_NO_CHECKSUM, LtxHeader, encode
from sqlkv.store import Transaction


def encode_pages(
    pages: Sequence[tuple[int, bytes]], txid: int, commit: int, page_size: int
) -> bytes:
    """One LTX file (no rolling checksums: sqlkv verifies with the file checksum)."""
    header = LtxHeader(
        flags=HEADER_FLAG_NO_CHECKSUM,
        page_size=page_size,
        commit=commit,
        min_txid=txid,
        max_txid=txid,
        timestamp_ms=int(time.time() * 1000),
    )
    return encode(header, pages)


def chunks(data: bytes, chunk_size: int) -> list[bytes]:
    return [data[i : i + chunk_size] for i in range(0, len(data), chunk_size)] or [b""]


def write_blob(
    tr: Transaction, key_of: Callable[[int], bytes], data: bytes, max_value_bytes: int
) -> int:
    """Store ``data`` as sealed chunk keys ``key_of(0..n-1)``; returns the bytes they occupy."""
    used = 0
    pieces = chunks(data, chunk_payload_size(max_value_bytes))
    for i, piece in enumerate(pieces):
        key = key_of(i)
        value = seal_chunk(key, piece, len(pieces))
        tr.set(key, value)
        used += len(key) + len(value)
    return used


def blob_size(data: bytes, key_len: int, max_value_bytes: int) -> int:
    """Bytes ``write_blob`` would occupy for ``data`` with keys of ``key_len`` bytes."""
    n = len(chunks(data, chunk_payload_size(max_value_bytes)))
    return len(data) + n * (key_len + CHUNK_OVERHEAD)


def read_blob(tr: Transaction, keys: DbKeys, key_range: tuple[bytes, bytes]) -> bytes | None:
    """The chunks in ``key_range`` checked and joined (a snapshot read), or None when there
    are none (``CorruptionError`` when a chunk is damaged or missing)."""
    rows = tr.get_range(*key_range, snapshot=True)
    if not rows:
        return None
    return join_chunks(keys, rows)


def range_bytes(tr: Transaction, key_range: tuple[bytes, bytes]) -> int:
    """Bytes (keys + values) stored in ``key_range`` (a snapshot read)."""
    return sum(len(k) + len(v) for k, v in tr.get_range(*key_range, snapshot=True))
