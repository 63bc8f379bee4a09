"""open / takeover: create or bump the generation, remove what a crashed owner left behind
(DELTAs above head, staged chunks), refuse dangling PIDX rows (corruption), preload pages
in the same answer."""

from __future__ import annotations

import pytest
from engine_support import (
    ZERO,
    EngineFactory,
    Owner,
    check_invariants,
    db_rows,
    edit_head,
    page_of,
    range_keys,
)

from sqlkv.engine import Engine
from sqlkv.engine.blobs import blob_rows, encode_pages
from sqlkv.engine.keys import DbKeys, pack_pidx
from sqlkv.engine.seal import seal
from sqlkv.errors import CorruptionError, DatabaseNotFound, InvalidRequest
from sqlkv.store import Store, Transaction


def test_every_open_bumps_the_generation_and_keeps_the_data(
    owner: Owner, make_engine: EngineFactory, store: Store
) -> None:
    owner.commit({1: page_of(1), 5: page_of(5)})
    generations = [owner.generation]
    for _ in range(3):
        owner.reopen(make_engine())
        generations.append(owner.generation)
    assert generations == [1, 2, 3, 4]
    assert owner.head_txid == 2
    owner.assert_reads_back()
    check_invariants(store, "db")


def test_takeover_of_a_clean_database_changes_only_the_generation(
    owner: Owner, store: Store
) -> None:
    owner.commit({1: page_of(1)})
    before = db_rows(store, "db")
    owner.reopen()
    after = db_rows(store, "db")
    meta = DbKeys("db").meta
    assert {k: v for k, v in before.items() if k != meta} == {
        k: v for k, v in after.items() if k != meta
    }


def test_takeover_removes_an_abandoned_staged_commit(owner: Owner, store: Store) -> None:
    owner.commit({1: page_of(1)})
    e = owner.engine
    txid = e.commit_stage("db", owner.generation, None, 0, {1: page_of(10), 2: page_of(20)}).txid
    e.commit_stage("db", owner.generation, txid, 1, {3: page_of(30)})
    keys = DbKeys("db")
    assert range_keys(store, keys.stage_range())
    assert range_keys(store, keys.delta_txid_range(txid))

    owner.reopen()

    assert range_keys(store, keys.stage_range()) == []
    assert range_keys(store, keys.delta_txid_range(txid)) == []
    assert owner.head_txid == 2
    owner.assert_reads_back()
    check_invariants(store, "db")
    owner.commit({2: page_of(2)})  # the abandoned txid is never reused
    assert owner.head_txid == txid + 1


def test_a_plain_commit_drops_the_staged_commit_it_overtakes(owner: Owner, store: Store) -> None:
    owner.commit({1: page_of(1)})
    staged = owner.engine.commit_stage("db", owner.generation, None, 0, {2: page_of(20)}).txid
    keys = DbKeys("db")
    assert range_keys(store, keys.delta_txid_range(staged))
    owner.commit({3: page_of(3)})  # lands above the staged txid: the stage can never finalize
    assert staged < owner.head_txid
    assert range_keys(store, keys.delta_txid_range(staged)) == []
    assert range_keys(store, keys.stage_range()) == []
    check_invariants(store, "db")  # storage_used no longer counts the dropped parts
    with pytest.raises(InvalidRequest):
        owner.engine.commit_finalize("db", owner.generation, owner.head_txid, staged, 3)

    owner.reopen()
    owner.assert_reads_back()
    check_invariants(store, "db")


def _write_delta(store: Store, name: str, txid: int, pages: dict[int, bytes]) -> None:
    keys = DbKeys(name)

    def fn(tr: Transaction) -> None:
        data = encode_pages(sorted(pages.items()), txid, max(pages), 4096)
        # written behind the engine's back: no ledger, not counted in storage_used
        for key, value in blob_rows(
            lambda i: keys.delta_chunk(txid, 0, i), data, tr.limits.max_value_bytes
        ):
            tr.set(key, value)

    store.transact(fn)


def test_takeover_removes_deltas_above_head(owner: Owner, store: Store) -> None:
    owner.commit({1: page_of(1)})
    head = owner.head_txid
    _write_delta(store, "db", head + 1, {1: page_of(99), 2: page_of(98)})
    _write_delta(store, "db", head + 7, {1: page_of(97)})
    keys = DbKeys("db")

    owner.reopen()

    assert range_keys(store, keys.deltas_from(head + 1)) == []
    assert range_keys(store, keys.delta_txid_range(head))  # the committed delta stays
    owner.assert_reads_back()
    check_invariants(store, "db")


def test_takeover_refuses_pidx_rows_naming_a_missing_delta_and_writes_nothing(
    owner: Owner, store: Store
) -> None:
    owner.commit({1: page_of(1), 2: page_of(2)}, size=10)
    keys = DbKeys("db")

    def dangle(tr: Transaction) -> None:  # rows pointing at a delta that does not exist
        for pgno in (5, 6):
            key = keys.pidx(pgno)
            tr.set(key, seal(key, pack_pidx(owner.head_txid - 1, 3)))

    store.transact(dangle)
    edit_head(store, "db", pidx_count=4)  # as if a commit had written them
    before = db_rows(store, "db")

    with pytest.raises(CorruptionError) as caught:
        owner.reopen()

    assert (caught.value.db, caught.value.kind) == ("db", "DELTA")
    assert "missing" in caught.value.detail
    assert db_rows(store, "db") == before  # nothing "cleaned up"


def test_open_without_create_does_not_create(engine: Engine, store: Store) -> None:
    with pytest.raises(DatabaseNotFound):
        engine.open("db", create=False)
    assert db_rows(store, "db") == {}
    engine.open("db")
    assert engine.open("db", create=False).head.generation == 2


# ---------------------------------------------------------------------- preload


def test_open_returns_page_1_and_the_hinted_pages(owner: Owner, make_engine: EngineFactory) -> None:
    owner.commit({p: page_of(p) for p in range(1, 11)}, size=12)
    pages = owner.reopen(make_engine(), preload=[3, 7, 12, 13, 500], preload_bytes=4 * 4096)
    assert pages == {1: page_of(1), 3: page_of(3), 7: page_of(7), 12: ZERO}


def test_a_database_within_the_preload_budget_arrives_whole(
    owner: Owner, make_engine: EngineFactory
) -> None:
    owner.commit({p: page_of(p) for p in range(1, 11)}, size=12)
    pages = owner.reopen(make_engine(), preload_bytes=12 * 4096)
    assert pages == {p: page_of(p) for p in range(1, 11)} | {11: ZERO, 12: ZERO}
    assert len(owner.reopen(make_engine(), preload_bytes=11 * 4096)) == 1  # page 1 only


def test_open_preload_is_bounded_by_preload_bytes(owner: Owner) -> None:
    owner.commit({p: page_of(p) for p in range(1, 101)})
    pages = owner.reopen(preload=list(range(2, 101)), preload_bytes=10 * 4096)
    assert len(pages) == 10
    assert pages[1] == page_of(1)
    assert all(pages[p] == page_of(p) for p in pages)


def test_open_of_an_empty_database_preloads_nothing(engine: Engine) -> None:
    assert engine.open("db", preload=[1, 2]).pages == {}
    assert engine.open("db", preload=[1, 2]).pages == {}
