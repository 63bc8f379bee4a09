"""Sealed values: the check covers key and payload, blobs know their chunk count, the LTX
bytes are the reference file unchanged, and META refuses schema 1 with what to do."""

from __future__ import annotations

import random
import struct
from functools import partial

import pytest

from sqlkv.engine.blobs import blob_rows, encode_pages
from sqlkv.engine.head import HEAD_SIZE, Head
from sqlkv.engine.keys import DbKeys
from sqlkv.engine.seal import join_chunks, seal, unseal
from sqlkv.errors import CorruptionError, EngineError
from sqlkv.ltx import decode
from sqlkv.store import Limits, MemoryStore

KEYS = DbKeys("db")


def test_a_value_moved_to_another_key_fails_its_check() -> None:
    a, b = KEYS.pidx(1), KEYS.pidx(2)
    value = seal(a, b"payload")
    assert unseal(KEYS, a, value) == b"payload"
    with pytest.raises(CorruptionError) as caught:
        unseal(KEYS, b, value)
    assert (caught.value.kind, caught.value.location) == ("PIDX", "pgno 2")


def _blob_rows(pages: int) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    store = MemoryStore(limits=Limits(max_value_bytes=2_000))
    data = [(p, random.Random(p).randbytes(4096)) for p in range(1, pages + 1)]
    ltx = encode_pages(data, 5, pages, 4096)
    rows = blob_rows(partial(KEYS.delta_chunk, 5, 0), ltx, 2_000)
    store.transact(lambda tr: [tr.set(k, v) for k, v in rows])
    return ltx, store.transact(lambda tr: tr.get_range(*KEYS.delta_part_range(5, 0)))


def test_joined_chunks_are_the_reference_ltx_file_unchanged() -> None:
    ltx, rows = _blob_rows(3)
    assert len(rows) >= 3
    assert all(len(v) <= 2_000 for _, v in rows)
    joined = join_chunks(KEYS, rows)
    assert joined == ltx
    assert [p for p, _ in decode(joined).pages] == list(range(1, 4))  # fully verified


@pytest.mark.parametrize("missing", ["first", "middle", "last"])
def test_a_missing_chunk_is_found_from_the_chunks_alone(missing: str) -> None:
    _, rows = _blob_rows(3)
    at = {"first": 0, "middle": len(rows) // 2, "last": len(rows) - 1}[missing]
    with pytest.raises(CorruptionError) as caught:
        join_chunks(KEYS, rows[:at] + rows[at + 1 :])
    assert caught.value.kind == "DELTA"
    assert "missing" in caught.value.detail or "only" in caught.value.detail


def test_every_single_bit_flip_of_meta_is_corruption() -> None:
    raw = Head(3, 10, 11, 4, 20, storage_used=1234, pidx_count=5).encode()
    assert len(raw) == HEAD_SIZE
    for i in range(len(raw)):
        for bit in range(8):
            damaged = bytearray(raw)
            damaged[i] ^= 1 << bit
            with pytest.raises(CorruptionError):
                Head.decode(bytes(damaged), "db")


def test_a_schema_1_head_is_refused_with_what_to_do() -> None:
    v1 = struct.pack(">HQQQQIIIQQQ16sQIQ", 1, 1, 2, 3, 1, 0, 4096, 64, 0, 0, 0, bytes(16), 0, 0, 0)
    with pytest.raises(EngineError) as caught:
        Head.decode(v1, "old")
    assert not isinstance(caught.value, CorruptionError)
    assert "'old'" in str(caught.value) and "sqlkv export" in str(caught.value)
    assert "sqlkv import" in str(caught.value)
