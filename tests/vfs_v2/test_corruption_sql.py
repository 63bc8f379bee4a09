"""Damaged bytes in the embedded store's file: a query raises CorruptionError, never
returns wrong rows (the issue's case: one byte flipped in a stored shard's page body)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

import sqlkv
from sqlkv.engine import Engine
from sqlkv.errors import CorruptionError
from sqlkv.store.embedded import DB_FILE, EmbeddedStore


def test_a_flipped_byte_in_a_shard_in_the_store_file_raises_corruption(tmp_path: Path) -> None:
    store_dir = tmp_path / "store"
    rng = random.Random(5)
    marker = rng.randbytes(16).hex()  # incompressible: stored literally in the LTX body
    conn = sqlkv.connect("orders", store=str(store_dir))
    conn.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)")
    with conn:
        conn.executemany(
            "INSERT INTO t(v) VALUES (?)",
            [(f"{rng.randbytes(20).hex()}abcdefghij{i:06d}",) for i in range(8000)],
        )
        conn.execute("INSERT INTO t(v) VALUES (?)", (marker,))
    conn.close()
    with EmbeddedStore(store_dir) as store:
        Engine(store).compact_until_done("orders")  # the rows now live in shards

    path = store_dir / DB_FILE
    raw = bytearray(path.read_bytes())
    at = raw.find(marker.encode())
    assert at > 0 and raw.count(marker.encode()) == 1
    raw[at + 10] ^= 0x01  # one bit of one character of one row, in the file
    path.write_bytes(bytes(raw))

    conn = sqlkv.connect("orders", store=str(store_dir), preload_bytes=4096)
    try:
        assert conn.execute("SELECT count(*) FROM t WHERE id < 100").fetchall() == [(99,)]
        with pytest.raises(CorruptionError) as caught:
            conn.execute("SELECT v FROM t WHERE v LIKE ?", (marker[:8] + "%",)).fetchall()
        assert caught.value.db == "orders" and caught.value.kind == "SHARD"
        assert "sqlkv verify orders" in str(caught.value)
    finally:
        conn.close()
    with EmbeddedStore(store_dir) as store:
        report = Engine(store).verify("orders")
    assert [p.kind for p in report.problems] == ["SHARD"]
