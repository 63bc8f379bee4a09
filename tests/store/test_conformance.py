"""The store contract (docs/design.md §2, docs/kv-contract.md), run against every driver
through the ``store`` fixture."""

from __future__ import annotations

import random
import struct
import threading

import pytest
from drivers import StoreFactory

from sqlkv.errors import ConflictError, LimitExceeded, RetriesExhausted, StoreError
from sqlkv.store import Limits, Store, Transaction


def put(store: Store, items: dict[bytes, bytes]) -> None:
    def fn(tr: Transaction) -> None:
        for k, v in items.items():
            tr.set(k, v)

    store.transact(fn)


def read_all(store: Store) -> list[tuple[bytes, bytes]]:
    return store.transact(lambda tr: tr.get_range(b"", b"\xff\xff\xff\xff"))


def test_keys_sort_as_unsigned_bytes(store: Store) -> None:
    rng = random.Random(7)
    keys = {bytes(rng.randrange(256) for _ in range(rng.randrange(1, 12))) for _ in range(300)}
    keys |= {b"\x00", b"\x00\x00", b"\x7f", b"\x80", b"\xfe\xff", b"a", b"a\x00", b"ab"}
    put(store, {k: k[::-1] for k in keys})
    rows = store.transact(lambda tr: tr.get_range(b"", b"\xff" * 20))
    assert [k for k, _ in rows] == sorted(keys)
    assert all(v == k[::-1] for k, v in rows)


def test_range_reads_with_limit_and_reverse(store: Store) -> None:
    put(store, {b"k%03d" % i: b"v%d" % i for i in range(100)})

    def reads(tr: Transaction) -> tuple[list[bytes], ...]:
        return (
            [k for k, _ in tr.get_range(b"k010", b"k020")],
            [k for k, _ in tr.get_range(b"k010", b"k020", limit=3)],
            [k for k, _ in tr.get_range(b"k010", b"k020", reverse=True)],
            [k for k, _ in tr.get_range(b"k010", b"k020", limit=4, reverse=True)],
            [k for k, _ in tr.get_range(b"k098", b"l")],
            [k for k, _ in tr.get_range(b"k020", b"k010")],
        )

    fwd, fwd3, rev, rev4, tail, empty = store.transact(reads)
    assert fwd == [b"k%03d" % i for i in range(10, 20)]
    assert fwd3 == [b"k010", b"k011", b"k012"]
    assert rev == fwd[::-1]
    assert rev4 == [b"k019", b"k018", b"k017", b"k016"]
    assert tail == [b"k098", b"k099"]
    assert empty == []


def test_reads_see_the_transactions_own_writes(store: Store) -> None:
    put(store, {b"a": b"1", b"b": b"2", b"c": b"3", b"d": b"4"})

    def fn(tr: Transaction) -> tuple[object, ...]:
        tr.set(b"b", b"two")
        tr.clear(b"c")
        tr.set(b"bb", b"new")
        got = (tr.get(b"b"), tr.get(b"c"), tr.get_many([b"a", b"bb", b"c", b"zz"]))
        fwd = tr.get_range(b"a", b"z")
        rev2 = tr.get_range(b"a", b"z", limit=2, reverse=True)
        tr.clear_range(b"a", b"bc")
        tr.set(b"a", b"again")
        after = tr.get_range(b"", b"z")
        return got, fwd, rev2, after

    got, fwd, rev2, after = store.transact(fn)
    assert got == (b"two", None, [b"1", b"new", None, None])
    assert fwd == [(b"a", b"1"), (b"b", b"two"), (b"bb", b"new"), (b"d", b"4")]
    assert rev2 == [(b"d", b"4"), (b"bb", b"new")]
    assert after == [(b"a", b"again"), (b"d", b"4")]
    assert read_all(store) == after


def test_limited_range_read_skips_keys_the_transaction_cleared(store: Store) -> None:
    put(store, {b"r%02d" % i: b"x" for i in range(30)})

    def fn(tr: Transaction) -> list[bytes]:
        for i in range(0, 25):
            tr.clear(b"r%02d" % i)
        return [k for k, _ in tr.get_range(b"r", b"s", limit=3)]

    assert store.transact(fn) == [b"r25", b"r26", b"r27"]


def test_a_limited_read_skips_a_range_the_transaction_cleared(store: Store) -> None:
    put(store, {b"r%04d" % i: b"x" for i in range(1000)})
    tr = store.begin()
    tr.clear_range(b"r0000", b"r0990")
    tr.clear_range(b"r0995", b"s")
    before = store.stats.snapshot()
    fwd = tr.get_range(b"r", b"s", limit=2)
    rev = tr.get_range(b"r", b"s", limit=2, reverse=True)
    none = tr.get_range(b"r0995", b"s", limit=1)
    tr.close()
    assert [k for k, _ in fwd] == [b"r0990", b"r0991"]
    assert [k for k, _ in rev] == [b"r0994", b"r0993"]
    assert none == []
    # Not one round trip per cleared key: the forward read meets the first cleared range
    # after its begin (one more trip, then skips it), the reverse one starts below the
    # second, the last lies inside it (no trip).
    assert (store.stats - before).round_trips == 3


def test_conflicting_transactions_cannot_both_commit(store: Store) -> None:
    put(store, {b"counter": b"0"})
    t1, t2 = store.begin(), store.begin()
    try:
        n1 = int(t1.get(b"counter") or b"0")
        n2 = int(t2.get(b"counter") or b"0")
        t1.set(b"counter", str(n1 + 1).encode())
        t2.set(b"counter", str(n2 + 1).encode())
        t1.commit()
        with pytest.raises(ConflictError):
            t2.commit()
    finally:
        t1.close()
        t2.close()
    assert store.transact(lambda tr: tr.get(b"counter")) == b"1"


def test_transact_retries_and_sees_the_other_write(store: Store) -> None:
    put(store, {b"counter": b"0"})
    workers, per_worker = 4, 15

    def bump(tr: Transaction) -> None:
        n = int(tr.get(b"counter") or b"0")
        tr.set(b"counter", str(n + 1).encode())

    def work() -> None:
        for _ in range(per_worker):
            store.transact(bump)

    threads = [threading.Thread(target=work) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert store.transact(lambda tr: tr.get(b"counter")) == str(workers * per_worker).encode()


def test_a_serializable_range_read_conflicts_with_an_insert_into_it(store: Store) -> None:
    put(store, {b"q1": b"a"})
    t1, t2 = store.begin(), store.begin()
    try:
        seen = t1.get_range(b"q", b"r")
        t1.set(b"summary", str(len(seen)).encode())
        t2.get(b"q5")
        t2.set(b"q5", b"b")
        t2.commit()
        with pytest.raises(ConflictError):
            t1.commit()
    finally:
        t1.close()
        t2.close()


def test_snapshot_reads_do_not_conflict(store: Store) -> None:
    put(store, {b"watched": b"0"})
    t1, t2 = store.begin(), store.begin()
    try:
        assert t1.get(b"watched", snapshot=True) == b"0"
        t1.get_range(b"w", b"x", snapshot=True)
        t1.set(b"other", b"written by t1")
        t2.set(b"watched", b"1")
        t2.commit()
        t1.commit()
    finally:
        t1.close()
        t2.close()
    assert store.transact(lambda tr: tr.get_many([b"watched", b"other"])) == [
        b"1",
        b"written by t1",
    ]


def test_snapshot_is_consistent_while_others_commit(store: Store) -> None:
    put(store, {b"s1": b"old", b"s2": b"old"})
    reader = store.begin()
    try:
        assert reader.get(b"s1", snapshot=True) == b"old"
        put(store, {b"s1": b"new", b"s2": b"new"})
        assert reader.get(b"s2", snapshot=True) == b"old"
        assert reader.get_range(b"s", b"t", snapshot=True) == [(b"s1", b"old"), (b"s2", b"old")]
    finally:
        reader.close()


def value_sizes(limit: int) -> list[int]:
    sizes = set(range(0, 70))
    p = 64
    while p <= limit:
        sizes |= {p - 1, p, p + 1}
        p *= 2
    sizes |= {limit - 1, limit, 4096, 4100, 65536, 99_999}
    return sorted(s for s in sizes if 0 <= s <= limit)


def test_values_round_trip_byte_for_byte(store: Store) -> None:
    rng = random.Random(11)
    values: dict[bytes, bytes] = {}
    for size in value_sizes(store.limits.max_value_bytes):
        values[b"size/%06d" % size] = rng.randbytes(size)
        if size >= 4:
            # The last 4 bytes encode a small little-endian integer, like a versionstamp offset.
            small = struct.pack("<I", rng.randrange(0, 64))
            values[b"le/%06d" % size] = rng.randbytes(size - 4) + small
    batch: dict[bytes, bytes] = {}
    for k, v in values.items():
        if sum(len(x) for x in batch.values()) + len(v) > 4_000_000:
            put(store, batch)
            batch = {}
        batch[k] = v
    put(store, batch)
    stored = dict(read_all(store))
    assert stored.keys() == values.keys()
    for k, v in values.items():
        assert stored[k] == v, f"value {k!r} changed in the store"
    got = store.transact(lambda tr: tr.get_many(list(values)))
    assert got == list(values.values())


@pytest.mark.parametrize(
    ("what", "write"),
    [
        ("value", lambda tr: tr.set(b"big", b"x" * 1001)),
        ("key", lambda tr: tr.set(b"k" * 101, b"v")),
        ("key", lambda tr: tr.clear_range(b"a", b"z" * 101)),
        ("transaction", lambda tr: [tr.set(b"t%d" % i, b"x" * 900) for i in range(10)]),
    ],
)
def test_limit_violations_raise_and_leave_the_store_unchanged(
    store_factory: StoreFactory, what: str, write: object
) -> None:
    limits = Limits(max_key_bytes=100, max_value_bytes=1000, max_transaction_bytes=5000)
    store = store_factory(limits)
    put(store, {b"keep": b"me"})

    def fn(tr: Transaction) -> None:
        tr.set(b"first", b"written before the violation")
        write(tr)  # type: ignore[operator]

    with pytest.raises(LimitExceeded) as info:
        store.transact(fn)
    assert info.value.what == what
    assert not info.value.retryable
    assert read_all(store) == [(b"keep", b"me")]


def test_default_limits_are_foundationdbs(store: Store) -> None:
    assert store.limits == Limits(10_000, 100_000, 10_000_000)
    with pytest.raises(LimitExceeded):
        store.transact(lambda tr: tr.set(b"v", bytes(100_001)))
    store.transact(lambda tr: tr.set(b"v", bytes(100_000)))
    assert len(store.transact(lambda tr: tr.get(b"v")) or b"") == 100_000


def test_non_retryable_errors_propagate_without_retry(store: Store) -> None:
    calls = []

    def fn(tr: Transaction) -> None:
        calls.append(1)
        raise StoreError("boom")

    with pytest.raises(StoreError, match="boom"):
        store.transact(fn)
    assert len(calls) == 1


def test_retries_are_bounded(store: Store) -> None:
    put(store, {b"hot": b"0"})

    def always_conflicts(tr: Transaction) -> None:
        tr.get(b"hot")
        tr.set(b"hot", b"mine")
        put(store, {b"hot": b"theirs"})  # a competing commit lands first, every time

    with pytest.raises(RetriesExhausted) as info:
        store.transact(always_conflicts, max_attempts=3)
    assert info.value.attempts == 3
    assert isinstance(info.value.last, ConflictError)


def test_clear_range_removes_only_the_range(store: Store) -> None:
    put(store, {bytes([i]): b"v" for i in range(1, 20)})
    store.transact(lambda tr: tr.clear_range(bytes([5]), bytes([10])))
    assert [k[0] for k, _ in read_all(store)] == [1, 2, 3, 4, *range(10, 20)]


def test_stats_count_transactions_and_bytes(store: Store) -> None:
    before = store.stats.snapshot()
    put(store, {b"a": b"12345"})
    store.transact(lambda tr: tr.get(b"a"))
    delta = store.stats.snapshot() - before
    assert delta.transactions == 2
    assert delta.writes == 1
    assert delta.bytes_written == 6
    assert delta.bytes_read == 5
    assert delta.round_trips == 2
