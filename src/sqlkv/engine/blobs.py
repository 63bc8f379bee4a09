"""LTX blobs in the store: encoding page sets, cutting them into value-sized chunks, and
reading them back whole. Every size here is counted as the store counts it (key + value).

Each chunk is sealed (``seal.seal_chunk``: its data, the blob's chunk count and a 128-bit
check), so a chunk holds ``max_value_bytes - CHUNK_OVERHEAD`` bytes of the LTX file."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from sqlkv.engine.keys import DbKeys
from sqlkv.engine.seal import CHUNK_OVERHEAD, chunk_payload_size, join_chunks, seal_chunk
from sqlkv.ltx import HEADER_FLAG_NO_CHECKSUM, LtxHeader, encode

if TYPE_CHECKING:
    from sqlkv.engine.ledger import StoreReader


def encode_pages(
    pages: Sequence[tuple[int, bytes]],
    txid: int,
    commit: int,
    page_size: int,
    *,
    max_txid: int | None = None,
) -> bytes:
    """One LTX file (no rolling checksums: sqlkv verifies with the file checksum).
    ``max_txid`` (default ``txid``): a shard rewritten by a shrink is valid from it."""
    header = LtxHeader(
        flags=HEADER_FLAG_NO_CHECKSUM,
        page_size=page_size,
        commit=commit,
        min_txid=txid,
        max_txid=txid if max_txid is None else max_txid,
        timestamp_ms=int(time.time() * 1000),
    )
    return encode(header, pages)


def chunks(data: bytes, chunk_size: int) -> list[bytes]:
    return [data[i : i + chunk_size] for i in range(0, len(data), chunk_size)] or [b""]


def blob_rows(
    key_of: Callable[[int], bytes], data: bytes, max_value_bytes: int
) -> list[tuple[bytes, bytes]]:
    """``data`` as sealed chunk rows ``key_of(0..n-1)``, each carrying the chunk count
    (``Ledger.put_blob`` writes them)."""
    pieces = chunks(data, chunk_payload_size(max_value_bytes))
    return [
        (key, seal_chunk(key, piece, len(pieces)))
        for key, piece in ((key_of(i), piece) for i, piece in enumerate(pieces))
    ]


def blob_size(data: bytes, key_len: int, max_value_bytes: int) -> int:
    """Bytes the rows of ``data`` occupy with keys of ``key_len`` bytes."""
    n = max(1, -(-len(data) // chunk_payload_size(max_value_bytes)))  # len(chunks(...))
    return len(data) + n * (key_len + CHUNK_OVERHEAD)


def read_blob(
    tr: StoreReader, keys: DbKeys, key_range: tuple[bytes, bytes], point: str
) -> bytes | None:
    """The chunks in ``key_range`` checked and joined (a snapshot read), or None when there
    are none (``CorruptionError`` when a chunk is damaged or missing)."""
    rows = tr.get_range(*key_range, snapshot=True, point=point)
    if not rows:
        return None
    return join_chunks(keys, rows)
