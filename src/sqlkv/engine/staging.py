"""Staging manifests: one row per staged LTX part (its stored bytes and page numbers), and
dropping staged parts that no commit will finalize.

Staged parts count in ``storage_used`` from the moment they are staged, so dropping them
returns their bytes (chunks and manifest) to the caller's accounting.
"""

from __future__ import annotations

import struct

from sqlkv.engine.keys import DbKeys
from sqlkv.engine.seal import corrupt, seal, unseal
from sqlkv.store import Transaction


def manifest(key: bytes, used: int, pgnos: list[int]) -> bytes:
    """The sealed manifest row to store at ``key``."""
    return seal(key, struct.pack(f">Q{len(pgnos)}I", used, *pgnos))


def read_manifest(keys: DbKeys, key: bytes, value: bytes) -> tuple[int, list[int]]:
    """(stored bytes of the part's chunks, its page numbers), checked."""
    raw = unseal(keys, key, value)
    if len(raw) < 8 or (len(raw) - 8) % 4:
        raise corrupt(keys, key, f"a manifest of {len(raw)} bytes is malformed")
    (used,) = struct.unpack_from(">Q", raw)
    count = (len(raw) - 8) // 4
    return used, list(struct.unpack_from(f">{count}I", raw, 8))


def staged_bytes(keys: DbKeys, key: bytes, value: bytes) -> int:
    """Bytes a staged part occupies (its chunks and its manifest), from its manifest row."""
    part_used, _ = read_manifest(keys, key, value)
    return part_used + len(key) + len(value)


def drop_staged_rows(tr: Transaction, keys: DbKeys, rows: list[tuple[bytes, bytes]]) -> int:
    """Remove the staged parts named by these manifest rows; returns the bytes freed."""
    freed = sum(staged_bytes(keys, key, value) for key, value in rows)  # all checked first
    for key, _ in rows:
        txid, part = keys.stage_txid_part(key)
        tr.clear_range(*keys.delta_part_range(txid, part))
    if rows:
        tr.clear_range(*keys.stage_range())
    return freed


def drop_all_staged(tr: Transaction, keys: DbKeys) -> int:
    """Remove every staged part of the database; returns the bytes freed."""
    return drop_staged_rows(tr, keys, tr.get_range(*keys.stage_range()))
