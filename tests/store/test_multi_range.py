"""``get_ranges``: several range reads in one round trip, with the contract of ``get_range``."""

from __future__ import annotations

import pytest

from sqlkv.errors import ConflictError
from sqlkv.store import MemoryStore, Store, Transaction


def fill(store: Store) -> None:
    def fn(tr: Transaction) -> None:
        for i in range(30):
            tr.set(b"a%02d" % i, b"%d" % i)
            tr.set(b"b%02d" % i, b"%d" % i)

    store.transact(fn)


def test_get_ranges_answers_like_separate_range_reads(store: Store) -> None:
    fill(store)
    reads = [
        (b"a", b"b", 0, False),
        (b"a05", b"a10", 2, True),
        (b"b", b"c", 3, False),
        (b"z", b"a", 0, False),  # empty: begin after end
        (b"c", b"d", 0, False),  # nothing there
    ]

    def both(tr: Transaction) -> tuple[object, object]:
        many = tr.get_ranges(reads, snapshot=True)
        one = [tr.get_range(b, e, limit=n, reverse=r, snapshot=True) for b, e, n, r in reads]
        return many, one

    many, one = store.transact(both)
    assert many == one
    assert [len(rows) for rows in many] == [30, 2, 3, 0, 0]


def test_get_ranges_sees_the_transactions_own_writes(store: Store) -> None:
    fill(store)

    def fn(tr: Transaction) -> list[list[tuple[bytes, bytes]]]:
        tr.set(b"a99", b"new")
        tr.clear_range(b"b00", b"b28")
        return tr.get_ranges([(b"a28", b"b", 0, False), (b"b", b"c", 0, False)])

    assert store.transact(fn) == [
        [(b"a28", b"28"), (b"a29", b"29"), (b"a99", b"new")],
        [(b"b28", b"28"), (b"b29", b"29")],
    ]


def test_get_ranges_is_one_round_trip() -> None:
    store = MemoryStore(record_ops=True)
    fill(store)
    before = store.op_count
    store.transact(lambda tr: tr.get_ranges([(b"a", b"b", 0, False), (b"b", b"c", 0, False)]))
    assert [op.op for op in store.ops[before:]] == ["get_ranges"]


def test_serializable_get_ranges_join_the_conflict_set(store: Store) -> None:
    fill(store)
    t1, t2 = store.begin(), store.begin()
    try:
        t1.get_ranges([(b"a", b"b", 0, False), (b"b", b"c", 5, False)])
        t1.set(b"summary", b"x")
        t2.set(b"b02", b"changed")  # inside the part of the limited read t1 saw
        t2.commit()
        with pytest.raises(ConflictError):
            t1.commit()
    finally:
        t1.close()
        t2.close()


def test_snapshot_get_ranges_do_not_conflict(store: Store) -> None:
    fill(store)
    t1, t2 = store.begin(), store.begin()
    try:
        t1.get_ranges([(b"a", b"b", 0, False)], snapshot=True)
        t1.set(b"summary", b"x")
        t2.set(b"a02", b"changed")
        t2.commit()
        t1.commit()
    finally:
        t1.close()
        t2.close()
