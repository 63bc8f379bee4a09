"""Guards (``Transaction.guard``, docs/kv-contract.md "Guards"), on every driver: checked
inside the commit's own store transaction, atomically with the writes; a failed guard
applies nothing and answers the value it found; a guard conflicts like a serializable read."""

from __future__ import annotations

import pytest

from sqlkv.errors import ConflictError, GuardFailed
from sqlkv.store import Store, Transaction


def put(store: Store, items: dict[bytes, bytes]) -> None:
    def fn(tr: Transaction) -> None:
        for k, v in items.items():
            tr.set(k, v)

    store.transact(fn)


def values(store: Store, *keys: bytes) -> list[bytes | None]:
    return store.transact(lambda tr: tr.get_many(list(keys)))


def test_a_commit_whose_guards_hold_applies_in_one_round_trip(store: Store) -> None:
    put(store, {b"m": b"v1"})
    before = store.stats.snapshot()

    def fn(tr: Transaction) -> None:
        tr.guard(b"m", b"v1")
        tr.guard(b"absent", None)
        tr.set(b"m", b"v2")
        tr.set(b"page", b"data")

    store.transact(fn)
    delta = store.stats.snapshot() - before
    assert (delta.round_trips, delta.transactions, delta.attempts) == (1, 1, 1)
    assert values(store, b"m", b"page", b"absent") == [b"v2", b"data", None]


@pytest.mark.parametrize(
    ("expected", "current"),
    [(b"old", b"new"), (None, b"new"), (b"old", None)],
    ids=["changed", "created", "removed"],
)
def test_a_failed_guard_applies_nothing_and_answers_the_current_value(
    store: Store, expected: bytes | None, current: bytes | None
) -> None:
    if current is not None:
        put(store, {b"m": current})
    put(store, {b"other": b"kept"})
    before = store.stats.snapshot()

    def fn(tr: Transaction) -> None:
        tr.clear_range(b"o", b"p")
        tr.set(b"page", b"data")
        tr.guard(b"a-holding-guard", None)
        tr.guard(b"m", expected)
        tr.set(b"m", b"mine")

    with pytest.raises(GuardFailed) as info:
        store.transact(fn)
    assert isinstance(info.value, ConflictError) and not info.value.retryable
    assert (info.value.key, info.value.current) == (b"m", current)
    assert (store.stats.snapshot() - before).attempts == 1, "transact does not retry it"
    assert values(store, b"m", b"page", b"other") == [current, None, b"kept"]


@pytest.mark.parametrize("failing", [None, 0, 19], ids=["all-hold", "first-fails", "last-fails"])
def test_many_guards_are_all_checked_and_the_first_failing_one_is_named(
    store: Store, failing: int | None
) -> None:
    # 20 guards: more than the embedded store checks inside its version bump (8)
    put(store, {b"g%02d" % i: b"v" for i in range(0, 20, 2)})

    def fn(tr: Transaction) -> None:
        for i in range(20):
            held = b"v" if i % 2 == 0 else None
            tr.guard(b"g%02d" % i, b"wrong" if i == failing else held)
        tr.set(b"out", b"written")

    if failing is None:
        store.transact(fn)
        assert values(store, b"out") == [b"written"]
        return
    with pytest.raises(GuardFailed) as info:
        store.transact(fn)
    assert info.value.key == b"g%02d" % failing
    assert values(store, b"out") == [None]


def test_a_guard_compares_the_stored_value_not_the_transactions_own_write(store: Store) -> None:
    put(store, {b"m": b"stored"})

    def fn(tr: Transaction) -> None:
        tr.set(b"m", b"written first")
        tr.guard(b"m", b"stored")

    store.transact(fn)
    assert values(store, b"m") == [b"written first"]


def test_a_guarded_write_conflicts_with_a_concurrent_serializable_reader(store: Store) -> None:
    put(store, {b"m": b"v1"})
    reader, writer = store.begin(), store.begin()
    try:
        assert reader.get(b"m") == b"v1"  # serializable: what compaction does with META
        reader.set(b"decided", b"from v1")
        writer.guard(b"m", b"v1")
        writer.set(b"m", b"v2")
        writer.commit()
        with pytest.raises(ConflictError):
            reader.commit()
    finally:
        reader.close()
        writer.close()
    assert values(store, b"m", b"decided") == [b"v2", None]


def test_a_guard_fails_after_a_reader_wrote_the_key(store: Store) -> None:
    put(store, {b"m": b"v1"})
    guarded, other = store.begin(), store.begin()
    try:
        guarded.guard(b"m", b"v1")
        guarded.set(b"page", b"data")
        assert other.get(b"m") == b"v1"
        other.set(b"m", b"v2")
        other.commit()
        with pytest.raises(GuardFailed) as info:
            guarded.commit()
        assert info.value.current == b"v2"
    finally:
        guarded.close()
        other.close()
    assert values(store, b"m", b"page") == [b"v2", None]


def test_two_guarded_writers_of_one_key_cannot_both_commit(store: Store) -> None:
    put(store, {b"m": b"v1"})
    t1, t2 = store.begin(), store.begin()
    try:
        for n, tr in ((1, t1), (2, t2)):
            tr.guard(b"m", b"v1")
            tr.set(b"m", b"by %d" % n)
        t1.commit()
        with pytest.raises(GuardFailed) as info:
            t2.commit()
        assert info.value.current == b"by 1"
    finally:
        t1.close()
        t2.close()
    assert values(store, b"m") == [b"by 1"]


def test_failed_and_holding_guards_alternate_on_one_store(store: Store) -> None:
    """A refused commit leaves nothing behind that breaks the next one (PostgreSQL: a
    pooled connection whose pipeline was aborted, with prepared statements)."""
    put(store, {b"m": b"0"})
    for n in range(6):
        current = b"%d" % (n // 2)

        def fn(tr: Transaction, n: int = n, current: bytes = current) -> None:
            tr.guard(b"m", current if n % 2 else b"stale")
            tr.set(b"m", b"%d" % (n // 2 + 1))
            tr.set(b"page%d" % n, b"data")

        if n % 2:
            store.transact(fn)
        else:
            with pytest.raises(GuardFailed):
                store.transact(fn)
    assert values(store, b"m", b"page1", b"page0") == [b"3", b"data", None]
