"""get_pages: pages and head from one snapshot; zeros below the size, None above it."""

from __future__ import annotations

import pytest
from engine_support import EngineFactory, Owner, db_rows, page_of

from sqlkv.engine.keys import DbKeys
from sqlkv.errors import EngineError, FenceMismatch, InvalidRequest
from sqlkv.store import Store


def test_read_answers_the_head_it_read_at(owner: Owner) -> None:
    owner.commit({1: page_of(1)})
    result = owner.engine.get_pages("db", owner.generation, [1])
    assert result.head.head_txid == owner.head_txid
    assert result.head.generation == owner.generation


def test_read_of_no_pages_answers_the_head(owner: Owner) -> None:
    result = owner.engine.get_pages("db", owner.generation, [])
    assert result.pages == {}
    assert result.head.head_txid == 1


def test_read_of_duplicates_and_unordered_pages(owner: Owner) -> None:
    owner.commit({p: page_of(p) for p in range(1, 6)})
    got = owner.read([5, 1, 5, 3, 9])
    assert got == {5: page_of(5), 1: page_of(1), 3: page_of(3), 9: None}


def test_read_collects_pages_from_many_deltas(owner: Owner) -> None:
    for n in range(20):
        owner.commit({p: page_of(n * 1000 + p) for p in range(1 + n, 400, 20)}, size=400)
    owner.assert_reads_back()


def test_read_after_a_new_engine_starts_with_a_cold_cache(
    owner: Owner, make_engine: EngineFactory
) -> None:
    owner.commit({p: page_of(p) for p in range(1, 300)})
    cold = make_engine()
    pages = cold.get_pages("db", owner.generation, range(1, 301)).pages
    assert pages == owner.expected(range(1, 301))


@pytest.mark.parametrize("pgno", [0, -5, 2**32])
def test_read_of_an_invalid_page_number_is_refused(owner: Owner, pgno: int) -> None:
    with pytest.raises(InvalidRequest):
        owner.read([1, pgno])


def test_read_of_a_page_whose_delta_is_missing_says_the_store_is_damaged(
    owner: Owner, store: Store
) -> None:
    owner.commit({1: page_of(1)})
    keys = DbKeys("db")
    store.transact(lambda tr: tr.clear_range(*keys.delta_txid_range(owner.head_txid)))
    with pytest.raises(EngineError, match="missing"):
        owner.read([1])


def test_reads_do_not_write(owner: Owner, store: Store) -> None:
    owner.commit({1: page_of(1)}, size=3)
    before = db_rows(store, "db")
    owner.read([1, 2, 3, 4])
    owner.engine.head("db")
    assert db_rows(store, "db") == before


def test_read_is_fenced_after_takeover(owner: Owner, make_engine: EngineFactory) -> None:
    owner.commit({1: page_of(1)})
    make_engine().open("db")
    with pytest.raises(FenceMismatch):
        owner.read([1])
