"""The cold open's store operations and the learned preload hint, on every driver.

Store operations are counted with ``Store.stats.round_trips`` (every read and every commit
that reaches the driver): docs/open-and-preload.md gives the budget — one multi-range read
and the commit when the preloaded pages are in shard 0, the newest delta or where the engine
guessed, one more read otherwise.
"""

from __future__ import annotations

import pytest
from engine_support import EngineFactory, Owner, check_invariants, db_rows, page_of

from sqlkv.engine import Engine, EngineConfig
from sqlkv.engine.hint import MAX_HINT_PAGES, HintMemory, decode_hint
from sqlkv.engine.keys import DbKeys
from sqlkv.errors import FenceMismatch, InvalidRequest
from sqlkv.store import Store, Transaction

KEYS = DbKeys("db")


def store_ops(store: Store, fn: object) -> int:
    before = store.stats.snapshot()
    assert callable(fn)
    fn()
    return (store.stats - before).round_trips


def test_a_cold_open_of_a_small_database_is_two_store_operations(
    owner: Owner, store: Store, make_engine: EngineFactory
) -> None:
    for n in range(10):  # ten one-chunk deltas: more than the first read's probe takes
        owner.commit({p: page_of(p) for p in range(1 + 4 * n, 5 + 4 * n)})
    owner.commit({3: page_of(333)})
    engine = make_engine()
    ops = store_ops(store, lambda: owner.reopen(engine))
    assert ops == 3, "one read, the pages of the older deltas, the commit"
    engine.compact_until_done("db")  # everything in shard 0 now
    pages: dict[int, bytes] = {}
    ops = store_ops(store, lambda: pages.update(owner.reopen(make_engine())))
    assert ops == 2, "one multi-range read and the commit"
    assert pages == {p: page_of(333 if p == 3 else p) for p in range(1, 41)}


def test_the_newest_delta_comes_with_the_first_read(
    owner: Owner, store: Store, make_engine: EngineFactory
) -> None:
    owner.commit({p: page_of(p) for p in range(1, 30)})
    pages: dict[int, bytes] = {}
    ops = store_ops(store, lambda: pages.update(owner.reopen(make_engine())))
    assert ops == 2
    assert pages == {p: page_of(p) for p in range(1, 30)}


def test_a_hint_is_returned_by_the_next_open(
    owner: Owner, store: Store, make_engine: EngineFactory
) -> None:
    owner.commit({p: page_of(p) for p in range(1, 401)})
    owner.engine.compact_until_done("db")
    owner.commit({1: page_of(1001), 200: page_of(1200)})
    owner.engine.save_hint("db", owner.generation, [1, 300, 200, 9])
    check_invariants(store, "db")
    pages = owner.reopen(make_engine(), preload_bytes=8 * 4096)
    assert pages == {1: page_of(1001), 300: page_of(300), 200: page_of(1200), 9: page_of(9)}
    assert owner.reopen(make_engine(), preload_bytes=2 * 4096) == {
        1: page_of(1001),
        300: page_of(300),
    }


def test_an_engine_that_knows_the_hint_opens_in_two_store_operations(
    owner: Owner, store: Store
) -> None:
    for n in range(5):  # pages spread over shards and several deltas
        owner.commit({p: page_of(p + n) for p in range(1 + n, 500, 7)})
    hint = [1, 2, 100, 301, 450]
    owner.engine.save_hint("db", owner.generation, hint)
    pages: dict[int, bytes] = {}
    ops = store_ops(store, lambda: pages.update(owner.reopen(preload_bytes=16 * 4096)))
    assert ops == 2, "the engine remembers the hint and where its pages were"
    assert sorted(pages) == sorted(hint)
    assert pages == {p: v for p, v in owner.expected(hint).items() if v is not None}


def test_saving_a_hint_is_one_read_and_one_commit_and_an_identical_one_writes_nothing(
    owner: Owner, store: Store
) -> None:
    owner.commit({p: page_of(p) for p in range(1, 10)})
    e, g = owner.engine, owner.generation
    assert store_ops(store, lambda: e.save_hint("db", g, [5, 1, 5, 7])) == 2
    assert decode_hint(KEYS, db_rows(store, "db")[KEYS.hint]) == [5, 1, 7]
    before = db_rows(store, "db")
    assert store_ops(store, lambda: e.save_hint("db", g, [5, 1, 7])) == 1
    assert db_rows(store, "db") == before
    e.save_hint("db", g, [])
    assert KEYS.hint not in db_rows(store, "db")
    check_invariants(store, "db")


def test_a_hint_is_bounded_by_the_preload_budget(owner: Owner, store: Store) -> None:
    owner.commit({1: page_of(1)})
    engine = Engine(store, EngineConfig(preload_bytes=3 * 4096))
    g = engine.open("db").head.generation
    engine.save_hint("db", g, range(10, 10_000))
    assert decode_hint(KEYS, db_rows(store, "db")[KEYS.hint]) == [10, 11, 12]
    big = Engine(store, EngineConfig(preload_bytes=1 << 30))
    g = big.open("db").head.generation
    big.save_hint("db", g, range(1, 10_000))
    assert len(decode_hint(KEYS, db_rows(store, "db")[KEYS.hint])) == MAX_HINT_PAGES
    with pytest.raises(InvalidRequest):
        big.save_hint("db", g, [0])
    check_invariants(store, "db")


def test_a_fenced_owner_cannot_save_a_hint(
    owner: Owner, store: Store, make_engine: EngineFactory
) -> None:
    owner.commit({1: page_of(1)})
    stale = owner.generation
    make_engine().open("db")
    before = db_rows(store, "db")
    with pytest.raises(FenceMismatch):
        owner.engine.save_hint("db", stale, [1, 2])
    assert db_rows(store, "db") == before


def test_a_damaged_hint_is_ignored_at_open_and_reported_by_verify(
    owner: Owner, store: Store, make_engine: EngineFactory, caplog: pytest.LogCaptureFixture
) -> None:
    owner.commit({p: page_of(p) for p in range(1, 400)})
    owner.engine.save_hint("db", owner.generation, [1, 300])
    value = db_rows(store, "db")[KEYS.hint]

    def damage(tr: Transaction) -> None:
        tr.set(KEYS.hint, value[:3] + bytes([value[3] ^ 1]) + value[4:])

    store.transact(damage)
    with caplog.at_level("WARNING", logger="sqlkv.engine"):
        pages = owner.reopen(make_engine(), preload_bytes=8 * 4096)
    assert pages == {1: page_of(1)}
    assert any(r.getMessage() == "preload hint ignored" for r in caplog.records)
    report = make_engine().verify("db")
    assert [p.kind for p in report.problems] == ["HINT"]


def test_engines_sharing_a_hint_memory_find_the_hints_deltas_in_the_first_read(
    owner: Owner, store: Store
) -> None:
    for n in range(12):  # more deltas than the first read's probe takes
        owner.commit({p: page_of(p + n) for p in range(1 + n, 500, 11)})
    hint = [1, 2, 100, 301, 450]
    owner.engine.save_hint("db", owner.generation, hint)
    memory = HintMemory()
    spent = []
    for _ in range(2):  # one engine per connection, as sqlkv.connect builds them
        pages: dict[int, bytes] = {}
        engine = Engine(store, EngineConfig(), hints=memory)
        spent.append(store_ops(store, lambda e=engine, got=pages: got.update(owner.reopen(e))))
        assert pages == {p: v for p, v in owner.expected(hint).items() if v is not None}
    assert spent == [3, 2], "the second engine reads the delta parts the first one saw"
