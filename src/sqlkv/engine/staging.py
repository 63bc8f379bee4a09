"""Staging manifests: one row per staged LTX part (its stored bytes and page numbers), and
dropping staged parts that no commit will finalize.

Staged parts count in ``storage_used`` from the moment they are staged, so dropping them
returns their bytes (chunks and manifest) to the caller's accounting.
"""

from __future__ import annotations

import struct

from sqlkv.engine.keys import DbKeys
from sqlkv.store import Transaction


def manifest(used: int, pgnos: list[int]) -> bytes:
    return struct.pack(f">Q{len(pgnos)}I", used, *pgnos)


def read_manifest(raw: bytes) -> tuple[int, list[int]]:
    """(stored bytes of the part's chunks, its page numbers)."""
    (used,) = struct.unpack_from(">Q", raw)
    count = (len(raw) - 8) // 4
    return used, list(struct.unpack_from(f">{count}I", raw, 8))


def staged_bytes(key: bytes, value: bytes) -> int:
    """Bytes a staged part occupies (its chunks and its manifest), from its manifest row."""
    part_used, _ = read_manifest(value)
    return part_used + len(key) + len(value)


def drop_staged_rows(tr: Transaction, keys: DbKeys, rows: list[tuple[bytes, bytes]]) -> int:
    """Remove the staged parts named by these manifest rows; returns the bytes freed."""
    freed = 0
    for key, value in rows:
        txid, part = keys.stage_txid_part(key)
        tr.clear_range(*keys.delta_part_range(txid, part))
        freed += staged_bytes(key, value)
    if rows:
        tr.clear_range(*keys.stage_range())
    return freed


def drop_all_staged(tr: Transaction, keys: DbKeys) -> int:
    """Remove every staged part of the database; returns the bytes freed."""
    return drop_staged_rows(tr, keys, tr.get_range(*keys.stage_range()))
