"""Staging manifests: one row per staged LTX part (its stored bytes and page numbers), and
dropping staged parts that no commit will finalize.

Staged parts count in ``storage_used`` from the moment they are staged, so dropping them
returns their bytes (chunks, as the manifest recorded them, and the manifest) to the ledger.
"""

from __future__ import annotations

import struct

from sqlkv.engine.ledger import Ledger


def manifest(used: int, pgnos: list[int]) -> bytes:
    return struct.pack(f">Q{len(pgnos)}I", used, *pgnos)


def read_manifest(raw: bytes) -> tuple[int, list[int]]:
    """(stored bytes of the part's chunks, its page numbers)."""
    (used,) = struct.unpack_from(">Q", raw)
    count = (len(raw) - 8) // 4
    return used, list(struct.unpack_from(f">{count}I", raw, 8))


def drop_staged_rows(ledger: Ledger, rows: list[tuple[bytes, bytes]]) -> None:
    """Remove the staged parts named by ``rows``: every manifest of the database."""
    keys = ledger.keys
    for key, value in rows:
        txid, part = keys.stage_txid_part(key)
        part_used, _ = read_manifest(value)
        ledger.drop_counted_range(keys.delta_part_range(txid, part), part_used)
    if rows:
        ledger.drop_range(keys.stage_range(), rows)


def drop_all_staged(ledger: Ledger) -> None:
    """Remove every staged part of the database."""
    drop_staged_rows(ledger, ledger.get_range(*ledger.keys.stage_range(), point="read_staged"))
