"""Shrinking a database: nothing above the new end survives, and growing again reads zeros.

Compaction does not exist yet, so shard blobs are written by hand (``write_shard``: LTX
via ``encode_pages`` + ``Ledger.put_blob`` under ``keys.shard_chunk``, counted in storage_used).
"""

from __future__ import annotations

import pytest
from engine_support import (
    ZERO,
    Owner,
    check_invariants,
    db_rows,
    page_of,
    range_keys,
    write_shard,
)

from sqlkv.engine.keys import DbKeys
from sqlkv.engine.seal import join_chunks
from sqlkv.ltx import decode
from sqlkv.store import Store

S = 64  # shard size


def shard_pages(store: Store, name: str) -> dict[int, list[int]]:
    """Shard id -> page numbers its stored LTX blob holds."""
    keys = DbKeys(name)
    lo, hi = keys.shard_range()
    chunks: dict[int, list[tuple[bytes, bytes]]] = {}
    for key, value in sorted(db_rows(store, name).items()):
        if lo <= key < hi:
            chunks.setdefault(keys.shard_id(key), []).append((key, value))
    blobs = {sid: join_chunks(keys, rows) for sid, rows in chunks.items()}
    return {sid: [p for p, _ in decode(blob).pages] for sid, blob in blobs.items()}


def test_shrink_removes_every_pidx_row_above_the_new_end(owner: Owner, store: Store) -> None:
    owner.commit({p: page_of(p) for p in range(1, 201)})
    owner.commit({p: page_of(p + 1000) for p in range(150, 201)})  # two deltas hold pages
    owner.commit({}, size=120)
    keys = DbKeys("db")
    assert [keys.pidx_pgno(k) for k in range_keys(store, keys.pidx_range())] == list(range(1, 121))
    owner.assert_reads_back()
    check_invariants(store, "db")


def test_shrink_in_a_commit_that_also_writes_pages(owner: Owner, store: Store) -> None:
    owner.commit({p: page_of(p) for p in range(1, 101)})
    owner.commit({5: page_of(500), 30: page_of(3000)}, size=30)
    keys = DbKeys("db")
    assert range_keys(store, keys.pidx_range(31)) == []
    assert owner.read([5, 30, 31]) == {5: page_of(500), 30: page_of(3000), 31: None}
    check_invariants(store, "db")


def test_growing_after_a_shrink_reads_zeros_never_stale_pages(owner: Owner, store: Store) -> None:
    owner.commit({p: page_of(p) for p in range(1, 101)})
    owner.commit({}, size=10)
    owner.commit({100: page_of(7)}, size=100)  # grow back; only page 100 rewritten
    pages = owner.read(range(1, 101))
    assert all(pages[p] == page_of(p) for p in range(1, 11))
    assert all(pages[p] == ZERO for p in range(11, 100))
    assert pages[100] == page_of(7)
    check_invariants(store, "db")


def test_growing_after_a_shrink_by_size_only_reads_zeros(owner: Owner) -> None:
    owner.commit({p: page_of(p) for p in range(1, 51)})
    owner.commit({}, size=0)
    assert owner.read([1]) == {1: None}
    owner.commit({}, size=50)
    assert set(owner.read(range(1, 51)).values()) == {ZERO}


@pytest.mark.parametrize("new_end", [0, 1, 63, 64, 65, 100, 127, 128, 150])
def test_shrink_removes_shard_pages_above_the_new_end(
    owner: Owner, store: Store, new_end: int
) -> None:
    owner.commit({}, size=3 * S)  # pages 1..191: shard 0 = 1..63, 1 = 64..127, 2 = 128..191
    for sid in range(3):
        first = max(1, sid * S)
        write_shard(store, "db", sid, {p: page_of(p) for p in range(first, sid * S + S)})
    owner.model = {p: page_of(p) for p in range(1, 3 * S)}
    owner.commit({2: page_of(9000)})  # one page also in a delta
    check_invariants(store, "db")

    owner.commit({}, size=new_end)

    shards = shard_pages(store, "db")
    # shards wholly above the end are gone; the one holding the end is kept (rewritten)
    assert sorted(shards) == (list(range(new_end // S + 1)) if new_end else [])
    for sid, pgnos in shards.items():
        assert pgnos, f"shard {sid} was kept empty"
        assert max(pgnos) <= new_end, f"shard {sid} still holds pages above {new_end}"
    owner.assert_reads_back(extra=S)
    check_invariants(store, "db")

    owner.commit({}, size=3 * S)  # grow again: everything above new_end reads as zeros
    pages = owner.read(range(1, 3 * S))
    assert all(pages[p] == ZERO for p in range(new_end + 1, 3 * S))
    owner.assert_reads_back()
    check_invariants(store, "db")


@pytest.mark.parametrize("new_end", [0, 63, 64, 100, 190])
def test_shrink_after_compaction_removes_folded_pages_above_the_end(
    owner: Owner, store: Store, new_end: int
) -> None:
    owner.commit({p: page_of(p) for p in range(1, 200)})
    owner.commit({p: page_of(p + 1000) for p in range(50, 200, 5)})
    owner.commit({3: page_of(3000)})
    head = owner.engine.compact_until_done("db")
    assert head.delta_count == 0
    keys = DbKeys("db")
    assert range_keys(store, keys.pidx_range()) == []  # every page now lives in a shard
    check_invariants(store, "db")

    owner.commit({}, size=new_end)

    shards = shard_pages(store, "db")
    assert sorted(shards) == (list(range(new_end // S + 1)) if new_end else [])
    assert all(max(pgnos) <= new_end for pgnos in shards.values())
    owner.assert_reads_back(extra=S)
    check_invariants(store, "db")

    owner.commit({}, size=250)
    pages = owner.read(range(new_end + 1, 251))
    assert set(pages.values()) <= {ZERO}
    owner.assert_reads_back()
    check_invariants(store, "db")


def test_compaction_after_a_shrink_leaves_no_stored_page_above_the_end(
    owner: Owner, store: Store
) -> None:
    owner.commit({p: page_of(p) for p in range(1, 300)})
    owner.commit({p: page_of(p + 1000) for p in range(5, 300, 10)})
    owner.commit({7: page_of(7000)}, size=90)  # DELTAs above still hold pages 91..299
    head = owner.engine.compact_until_done("db")
    assert head.delta_count == 0
    keys = DbKeys("db")
    assert range_keys(store, keys.deltas_from(0)) == []
    assert all(max(pgnos) <= 90 for pgnos in shard_pages(store, "db").values())
    owner.commit({}, size=300)
    assert set(owner.read(range(91, 301)).values()) == {ZERO}
    owner.assert_reads_back()
    check_invariants(store, "db")
