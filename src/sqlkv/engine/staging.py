"""Staging manifests: one sealed row per staged LTX part (its stored bytes and page numbers),
and dropping staged parts that no commit will finalize.

Staged parts count in ``storage_used`` from the moment they are staged, so dropping them
returns their bytes (chunks, as the manifest recorded them, and the manifest) to the ledger.
"""

from __future__ import annotations

import struct

from sqlkv.engine.keys import DbKeys
from sqlkv.engine.ledger import Ledger
from sqlkv.engine.seal import corrupt, seal, unseal


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


def drop_staged_rows(ledger: Ledger, rows: list[tuple[bytes, bytes]]) -> None:
    """Remove the staged parts named by ``rows``: every manifest of the database (all are
    checked before anything is cleared)."""
    keys = ledger.keys
    parts = [(keys.stage_txid_part(key), read_manifest(keys, key, value)[0]) for key, value in rows]
    for (txid, part), part_used in parts:
        ledger.drop_counted_range(keys.delta_part_range(txid, part), part_used)
    if rows:
        ledger.drop_range(keys.stage_range(), rows)


def drop_all_staged(ledger: Ledger) -> None:
    """Remove every staged part of the database."""
    drop_staged_rows(ledger, ledger.get_range(*ledger.keys.stage_range(), point="read_staged"))
