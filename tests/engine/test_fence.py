"""Fencing: a stale generation or a stale head_txid is refused with FenceMismatch, carrying
the current head, and changes nothing in the store."""

from __future__ import annotations

import pytest
from engine_support import EngineFactory, Owner, db_rows, page_of

from sqlkv.engine import Engine
from sqlkv.errors import FenceMismatch
from sqlkv.store import Store


@pytest.fixture
def fenced(engine: Engine, make_engine: EngineFactory, store: Store) -> tuple[Owner, Owner]:
    """(old owner, new owner): the new one took "db" over after the old one committed."""
    old = Owner.open(engine, "db")
    old.commit({1: page_of(1), 2: page_of(2)})
    new = Owner.open(make_engine(), "db")
    new.model = dict(old.model)
    return old, new


def test_commit_with_a_stale_generation_is_fenced(
    fenced: tuple[Owner, Owner], store: Store
) -> None:
    old, new = fenced
    before = db_rows(store, "db")
    with pytest.raises(FenceMismatch) as info:
        old.commit({1: page_of(100)})
    assert info.value.head.generation == new.generation
    assert info.value.head.head_txid == new.head_txid
    assert db_rows(store, "db") == before
    new.assert_reads_back()


def test_stale_generation_is_fenced_on_every_operation(
    fenced: tuple[Owner, Owner], store: Store
) -> None:
    old, new = fenced
    before = db_rows(store, "db")
    e, g = old.engine, old.generation
    with pytest.raises(FenceMismatch):
        e.get_pages("db", g, [1])
    with pytest.raises(FenceMismatch):
        e.commit_stage("db", g, None, 0, {3: page_of(3)})
    staged = new.engine.commit_stage("db", new.generation, None, 0, {3: page_of(3)})
    with_stage = db_rows(store, "db")
    with pytest.raises(FenceMismatch):
        e.commit_stage("db", g, staged.txid, 1, {4: page_of(4)})
    with pytest.raises(FenceMismatch):
        e.commit_finalize("db", g, new.head_txid, staged.txid, 3)
    assert db_rows(store, "db") == with_stage
    assert before != with_stage


def test_a_generation_from_the_future_is_fenced(owner: Owner, store: Store) -> None:
    before = db_rows(store, "db")
    with pytest.raises(FenceMismatch):
        owner.engine.commit("db", owner.generation + 1, owner.head_txid, {1: page_of(1)}, 1)
    assert db_rows(store, "db") == before


@pytest.mark.parametrize("offset", [-1, 1])
def test_commit_with_a_stale_head_txid_is_fenced(owner: Owner, store: Store, offset: int) -> None:
    owner.commit({1: page_of(1)})
    owner.commit({2: page_of(2)})
    before = db_rows(store, "db")
    with pytest.raises(FenceMismatch) as info:
        owner.engine.commit("db", owner.generation, owner.head_txid + offset, {1: page_of(100)}, 2)
    assert info.value.head.head_txid == owner.head_txid
    assert db_rows(store, "db") == before
    owner.assert_reads_back()


def test_finalize_with_a_stale_head_txid_is_fenced(owner: Owner, store: Store) -> None:
    owner.commit({1: page_of(1)})
    staged = owner.engine.commit_stage("db", owner.generation, None, 0, {2: page_of(2)})
    before = db_rows(store, "db")
    with pytest.raises(FenceMismatch):
        owner.engine.commit_finalize("db", owner.generation, owner.head_txid - 1, staged.txid, 2)
    assert db_rows(store, "db") == before


def test_old_owner_sees_the_new_owners_commits_only_after_reopening(
    fenced: tuple[Owner, Owner],
) -> None:
    old, new = fenced
    new.commit({1: page_of(111)})
    with pytest.raises(FenceMismatch):
        old.read([1])
    old.reopen()
    assert old.read([1, 2]) == {1: page_of(111), 2: page_of(2)}
    with pytest.raises(FenceMismatch):
        new.commit({2: page_of(222)})
