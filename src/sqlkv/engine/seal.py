"""Checksums of every value the engine stores, and the one place they are checked.

Every value under a database's prefix is stored *sealed*: ``payload || tag``, where
``tag = xxh3_128(key || payload)`` (16 bytes). The tag covers the key, so a value that is
damaged, truncated, or found under another key (a store that swapped or misplaced values)
fails its check. META carries its own tag inside the head record (``head.py``).

LTX blobs (DELTA parts and SHARDs) are cut into chunk keys; each chunk's payload is
``data || u32 chunk count``, so a reader knows how many chunks the blob has and a missing
chunk (first, middle or last) is found without reading anything else. The LTX bytes
themselves are untouched: joining the chunks' data gives the reference LTX file.

``unseal``/``join_chunks`` raise ``CorruptionError`` naming the database, the key kind and
its location; a checked value is never returned damaged. docs/integrity.md has the why.
"""

from __future__ import annotations

import struct

from xxhash import xxh3_128, xxh3_128_digest

from sqlkv.engine.keys import DbKeys
from sqlkv.errors import CorruptionError

TAG_SIZE = 16
COUNT_SIZE = 4
CHUNK_OVERHEAD = TAG_SIZE + COUNT_SIZE
"""Bytes a blob chunk's value holds besides LTX data: its chunk count and its tag."""

_COUNT = struct.Struct(">I")

KINDS = {
    ord("M"): "META",
    ord("P"): "PIDX",
    ord("D"): "DELTA",
    ord("F"): "F",  # fork progress record
    ord("S"): "SHARD",
    ord("T"): "T",  # staging manifest
    ord("X"): "X",  # delta directory row
    ord("H"): "HISTORY",  # history facts of a txid
    ord("R"): "RETENTION",  # the retention window
    ord("U"): "U",  # a retired shard version
    ord("V"): "V",  # a retired shard version's LTX chunks
    ord("G"): "G",  # a retained (folded) delta
    ord("L"): "LABEL",  # a label naming a txid
    ord("N"): "HINT",  # preload hint
}


def digest(data: bytes) -> bytes:
    """The 128-bit check of ``data`` (for META, which seals itself)."""
    return xxh3_128_digest(data)


def seal(key: bytes, payload: bytes) -> bytes:
    """The value to store at ``key`` for ``payload``."""
    return payload + xxh3_128_digest(key + payload)


def unseal(keys: DbKeys, key: bytes, value: bytes) -> bytes:
    """The payload of the sealed ``value`` read at ``key``; ``CorruptionError`` if it fails."""
    if len(value) < TAG_SIZE or xxh3_128_digest(key + value[:-TAG_SIZE]) != value[-TAG_SIZE:]:
        raise corrupt(keys, key, f"checksum mismatch in its {len(value)} bytes")
    return value[:-TAG_SIZE]


def seal_chunk(key: bytes, data: bytes, count: int) -> bytes:
    """The value of one chunk of a blob of ``count`` chunks."""
    tail = _COUNT.pack(count)
    h = xxh3_128(key)
    h.update(data)
    h.update(tail)
    return b"".join((data, tail, h.digest()))


def chunk_payload_size(max_value_bytes: int) -> int:
    """LTX bytes one chunk holds under the store's value limit."""
    return max_value_bytes - CHUNK_OVERHEAD


def join_chunks(keys: DbKeys, rows: list[tuple[bytes, bytes]]) -> bytes:
    """The blob whose chunk rows (one blob's, in key order) are ``rows``, every chunk
    checked, numbered 0..n-1 with none missing; ``CorruptionError`` otherwise."""
    return b"".join(chunk_payloads(keys, rows))


def chunk_payloads(
    keys: DbKeys, rows: list[tuple[bytes, bytes]], *, prefix: bool = False
) -> list[memoryview]:
    """``join_chunks`` without the join: the checked payloads of the blob's chunks, in order
    (views of the values: a point read takes one frame from them and copies nothing else).
    ``prefix``: ``rows`` may be the blob's first chunks only (a read of chunks ``0..k``)."""
    parts: list[memoryview] = []
    count = -1
    for i, (key, value) in enumerate(rows):
        view = memoryview(value)
        if len(value) < CHUNK_OVERHEAD:
            raise corrupt(keys, key, f"a chunk of {len(value)} bytes is too short")
        h = xxh3_128(key)
        h.update(view[:-TAG_SIZE])
        if h.digest() != view[-TAG_SIZE:]:
            raise corrupt(keys, key, f"checksum mismatch in its {len(value)} bytes")
        (n,) = _COUNT.unpack_from(value, len(value) - CHUNK_OVERHEAD)
        (index,) = _COUNT.unpack_from(key, len(key) - 4)
        if index != i:
            raise corrupt(keys, key, f"chunk {i} of the blob is missing")
        if count not in (-1, n):
            raise corrupt(keys, key, f"chunk says the blob has {n} chunks, chunk 0 said {count}")
        count = n
        parts.append(view[:-CHUNK_OVERHEAD])
    if len(rows) != count and not (prefix and len(rows) < count):
        key = rows[-1][0] if rows else b""
        raise corrupt(keys, key, f"the blob has {count} chunks but only {len(rows)} are stored")
    return parts


def describe(keys: DbKeys, key: bytes) -> tuple[str, str]:
    """(kind, location) of one of the database's keys, for messages and reports."""
    at = len(keys.prefix)
    tag = key[at] if len(key) > at else -1
    kind = KINDS.get(tag, "unknown")
    body = key[at + 1 :]
    location = ""
    if tag == ord("P") and len(body) == 4:
        location = f"pgno {_COUNT.unpack(body)[0]}"
    elif tag in (ord("D"), ord("T")) and len(body) >= 12:
        txid, part = struct.unpack_from(">QI", body)
        location = f"txid {txid} part {part}"
        if len(body) == 16:
            location += f" chunk {_COUNT.unpack_from(body, 12)[0]}"
    elif tag == ord("S") and len(body) == 8:
        shard, chunk = struct.unpack(">II", body)
        location = f"shard {shard} chunk {chunk}"
    elif tag == ord("H") and len(body) == 12:
        txid, chunk = struct.unpack(">QI", body)
        location = f"txid {txid} chunk {chunk}"
    elif tag == ord("U") and len(body) == 12:
        until, shard = struct.unpack(">QI", body)
        location = f"shard {shard} until {until}"
    elif tag == ord("V") and len(body) == 16:
        until, shard, chunk = struct.unpack(">QII", body)
        location = f"shard {shard} until {until} chunk {chunk}"
    elif tag == ord("G") and len(body) == 16:
        death, txid = struct.unpack(">QQ", body)
        location = f"txid {txid} folded at {death}"
    elif tag == ord("X") and len(body) == 8:
        location = f"txid {struct.unpack('>Q', body)[0]}"
    return kind, location


def corrupt(keys: DbKeys, key: bytes, detail: str) -> CorruptionError:
    kind, location = describe(keys, key)
    return CorruptionError(keys.name, kind, location, detail)
