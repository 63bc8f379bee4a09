"""commit: pages become the next txid and read back; invalid commits change nothing."""

from __future__ import annotations

import random
import uuid

import pytest
from engine_support import (
    PAGE,
    ZERO,
    EngineFactory,
    Owner,
    StoreFactory,
    check_invariants,
    db_rows,
    page_of,
    random_page,
    read_head,
)

from sqlkv.engine import Engine, EngineConfig
from sqlkv.engine.head import Head
from sqlkv.errors import (
    CommitTooLarge,
    DatabaseNotFound,
    FenceMismatch,
    InvalidRequest,
)
from sqlkv.ltx import lock_pgno
from sqlkv.store import Limits, Store


def test_first_open_creates_an_empty_database_at_txid_1(engine: Engine) -> None:
    head = engine.open("fresh").head
    assert (head.head_txid, head.next_txid, head.db_size_pages, head.generation) == (1, 2, 0, 1)
    assert engine.get_pages("fresh", head.generation, [1]).pages == {1: None}


def test_commit_then_read_back(owner: Owner, store: Store) -> None:
    result = owner.commit({1: page_of(1), 2: page_of(2), 3: page_of(3)})
    assert result.head.head_txid == 2
    assert result.head.db_size_pages == 3
    assert not result.already_applied
    assert owner.read([1, 2, 3]) == {1: page_of(1), 2: page_of(2), 3: page_of(3)}
    check_invariants(store, "db")


def test_commit_overwrites_pages(owner: Owner, store: Store) -> None:
    owner.commit({1: page_of(1), 2: page_of(2)})
    owner.commit({2: page_of(20)})
    owner.commit({1: page_of(10), 3: page_of(30)})
    assert owner.read([1, 2, 3]) == {1: page_of(10), 2: page_of(20), 3: page_of(30)}
    assert owner.head_txid == 4
    check_invariants(store, "db")


def test_commit_many_pages(owner: Owner, store: Store) -> None:
    rng = random.Random(1)
    first = {p: random_page(rng) for p in range(1, 1001)}
    owner.commit(first)
    owner.commit({p: page_of(p) for p in range(500, 1500, 7)})
    owner.assert_reads_back()
    check_invariants(store, "db")


def test_page_below_size_never_written_reads_as_zeros(owner: Owner) -> None:
    owner.commit({1: page_of(1), 10: page_of(10)}, size=20)
    pages = owner.read([2, 9, 11, 20])
    assert pages == {2: ZERO, 9: ZERO, 11: ZERO, 20: ZERO}


def test_pages_above_size_are_absent(owner: Owner) -> None:
    owner.commit({1: page_of(1), 2: page_of(2)}, size=5)
    assert owner.read([6, 7, 1000, 2**32 - 1]) == {6: None, 7: None, 1000: None, 2**32 - 1: None}
    assert owner.read([5]) == {5: ZERO}


def test_commit_without_pages_only_changes_the_size(owner: Owner, store: Store) -> None:
    owner.commit({1: page_of(1)})
    owner.commit({}, size=4)
    assert owner.head_txid == 3
    assert owner.read([1, 4, 5]) == {1: page_of(1), 4: ZERO, 5: None}
    check_invariants(store, "db")


def test_commit_over_max_delta_bytes_is_too_large_and_changes_nothing(
    make_engine: EngineFactory, store: Store
) -> None:
    owner = Owner.open(make_engine(max_delta_bytes=256 * 1024), "db")
    owner.commit({1: page_of(1)})
    before = db_rows(store, "db")
    rng = random.Random(2)
    big = {p: random_page(rng) for p in range(1, 80)}  # ~320 KiB incompressible
    with pytest.raises(CommitTooLarge) as info:
        owner.commit(big)
    assert info.value.limit == 256 * 1024
    assert info.value.actual > 256 * 1024
    assert db_rows(store, "db") == before
    owner.assert_reads_back()


# ---------------------------------------------------------------------- invalid input


@pytest.mark.parametrize(
    ("pages", "size", "what"),
    [
        ({0: page_of(0)}, 1, "page 0"),
        ({-1: page_of(0)}, 1, "negative page"),
        ({2**32: page_of(0)}, 2, "page number past u32"),
        ({1: b"short"}, 1, "short page"),
        ({1: bytes(PAGE + 1)}, 1, "long page"),
        ({1: bytearray(PAGE)}, 1, "page not bytes"),
        ({3: page_of(3)}, 2, "page above the stated size"),
        ({1: page_of(1)}, -1, "negative size"),
        ({1: page_of(1)}, 2**32, "size past u32"),
    ],
)
def test_invalid_commit_is_refused_and_changes_nothing(
    owner: Owner, store: Store, pages: dict[int, bytes], size: int, what: str
) -> None:
    owner.commit({1: page_of(1)})
    before = db_rows(store, "db")
    with pytest.raises(InvalidRequest):
        owner.engine.commit("db", owner.generation, owner.head_txid, pages, size)
    assert db_rows(store, "db") == before, what
    owner.assert_reads_back()


def test_commit_of_the_lock_page_is_refused(owner: Owner, store: Store) -> None:
    lock = lock_pgno(PAGE)
    before = db_rows(store, "db")
    with pytest.raises(InvalidRequest, match="lock"):
        owner.engine.commit("db", owner.generation, owner.head_txid, {lock: page_of(1)}, lock + 1)
    assert db_rows(store, "db") == before


def test_pages_around_the_lock_page_commit_and_read_back(owner: Owner) -> None:
    lock = lock_pgno(PAGE)
    owner.commit({lock - 1: page_of(1), lock + 1: page_of(2)}, size=lock + 1)
    assert owner.read([lock - 1, lock, lock + 1]) == {
        lock - 1: page_of(1),
        lock: ZERO,
        lock + 1: page_of(2),
    }


def test_operations_on_an_unknown_database_answer_database_not_found(
    engine: Engine, store: Store
) -> None:
    engine.open("other")
    with pytest.raises(DatabaseNotFound):
        engine.get_pages("never", 1, [1])
    with pytest.raises(DatabaseNotFound):
        engine.commit("never", 1, 1, {1: page_of(1)}, 1)
    with pytest.raises(DatabaseNotFound):
        engine.commit_stage("never", 1, None, 0, {1: page_of(1)})
    with pytest.raises(DatabaseNotFound):
        engine.commit_finalize("never", 1, 1, 2, 1)
    with pytest.raises(DatabaseNotFound):
        engine.head("never")
    with pytest.raises(DatabaseNotFound):
        engine.open("never", create=False)
    assert db_rows(store, "never") == {}


# ---------------------------------------------------------------------- idempotency


def test_retried_commit_answers_already_applied_and_does_not_apply_twice(
    owner: Owner, store: Store
) -> None:
    owner.commit({1: page_of(1)})
    base = owner.head_txid
    cid = uuid.uuid4().bytes
    first = owner.engine.commit("db", owner.generation, base, {2: page_of(2)}, 2, commit_id=cid)
    after_first = db_rows(store, "db")
    retry = owner.engine.commit("db", owner.generation, base, {2: page_of(2)}, 2, commit_id=cid)
    assert not first.already_applied
    assert retry.already_applied
    assert retry.head == first.head
    assert db_rows(store, "db") == after_first


def test_different_commit_at_the_same_expected_head_is_fenced(owner: Owner, store: Store) -> None:
    owner.commit({1: page_of(1)})
    base = owner.head_txid
    owner.engine.commit(
        "db", owner.generation, base, {2: page_of(2)}, 2, commit_id=uuid.uuid4().bytes
    )
    landed = db_rows(store, "db")
    for cid in (uuid.uuid4().bytes, None):
        with pytest.raises(FenceMismatch) as info:
            owner.engine.commit("db", owner.generation, base, {2: page_of(3)}, 2, commit_id=cid)
        assert info.value.head.head_txid == base + 1
    assert db_rows(store, "db") == landed


def test_commit_id_must_be_16_bytes(owner: Owner, store: Store) -> None:
    before = db_rows(store, "db")
    with pytest.raises(InvalidRequest):
        owner.engine.commit("db", owner.generation, owner.head_txid, {}, 0, commit_id=b"short")
    assert db_rows(store, "db") == before


def test_commit_that_would_overflow_the_store_transaction_is_too_large(
    store_factory: StoreFactory,
) -> None:
    store = store_factory(Limits(max_transaction_bytes=1_000_000))
    owner = Owner.open(Engine(store, EngineConfig(max_delta_bytes=800_000)), "db")
    pages = dict.fromkeys(range(1, 17_001), ZERO)  # ~0.7 MB encoded + ~0.36 MB of PIDX rows
    with pytest.raises(CommitTooLarge):
        owner.commit(pages)


def test_a_warm_commit_takes_its_head_from_the_meta_the_last_commit_wrote(
    owner: Owner, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    owner.commit({1: page_of(1)})
    decoded: list[bytes] = []
    real = Head.decode

    def counting(raw: bytes, db: str) -> Head:
        decoded.append(raw)
        return real(raw, db)

    monkeypatch.setattr(Head, "decode", staticmethod(counting))
    owner.commit({2: page_of(2)})
    owner.commit({1: page_of(10)})
    monkeypatch.undo()
    # the guarded commits knew their heads (MetaCache.put -> apply.remember_decoded)
    assert decoded == []
    assert owner.read([1, 2]) == {1: page_of(10), 2: page_of(2)}
    assert read_head(store, "db").head_txid == owner.head_txid == 4
    check_invariants(store, "db")
