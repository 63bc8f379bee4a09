"""Round trips, counted by the memory store: each engine operation is one store transaction,
and a commit or a ``get_pages`` on the owner's warm engine is one store operation.

``stats.transactions`` counts committed store transactions (read-only ones included) and
``ops`` logs every driver operation, so a commit is exactly one ``commit`` op. The counts on
every driver (``stats.round_trips``) are at the end of this file.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest
from engine_support import Owner, page_of

from sqlkv.engine import Engine
from sqlkv.store import MemoryStore, Store


@dataclass
class Counted:
    transactions: int = 0
    commits: int = 0
    ops: int = 0
    reads: int = 0


@contextmanager
def counting(store: MemoryStore) -> Iterator[Counted]:
    out = Counted()
    stats, first = store.stats.snapshot(), len(store.ops)
    yield out
    ops = store.ops[first:]
    out.transactions = (store.stats - stats).transactions
    out.commits = sum(op.op == "commit" for op in ops)
    out.ops = len(ops)
    out.reads = out.ops - out.commits


@pytest.fixture
def mem_owner(mem: MemoryStore) -> Owner:
    return Owner.open(Engine(mem), "db")


def test_a_commit_is_one_store_transaction(mem_owner: Owner, mem: MemoryStore) -> None:
    mem_owner.commit({1: page_of(1)})
    for pages in ({2: page_of(2)}, {p: page_of(p) for p in range(1, 700)}, {}):
        with counting(mem) as c:
            mem_owner.commit(pages)
        assert (c.transactions, c.commits) == (1, 1)


def test_a_commit_that_shrinks_is_one_store_transaction(mem_owner: Owner, mem: MemoryStore) -> None:
    mem_owner.commit({p: page_of(p) for p in range(1, 300)})
    with counting(mem) as c:
        mem_owner.commit({5: page_of(55)}, size=100)
    assert (c.transactions, c.commits) == (1, 1)


def test_a_warm_commit_is_one_store_operation(mem_owner: Owner, mem: MemoryStore) -> None:
    mem_owner.commit({p: page_of(p) for p in range(1, 300)})
    for pages in ({7: page_of(70)}, {p: page_of(-p) for p in range(1, 300, 7)}, {}):
        with mem.recording() as ops:
            mem_owner.commit(pages)
        assert [op.point for op in ops] == ["commit.apply"], "guarded: META is not read"


def test_a_finalize_after_several_stage_calls_applies_once(
    mem_owner: Owner, mem: MemoryStore
) -> None:
    # each stage call rewrites META with only storage_used changed: the engine's META
    # cache must keep the newest, or the finalize's guard fails and it is sent twice
    e, g = mem_owner.engine, mem_owner.generation
    txid = e.commit_stage("db", g, None, 0, {p: page_of(p) for p in range(1, 100)}).txid
    e.commit_stage("db", g, txid, 1, {p: page_of(p) for p in range(100, 200)})
    with mem.recording() as ops:
        e.commit_finalize("db", g, mem_owner.head_txid, txid, 199)
    assert [op.point for op in ops] == ["finalize.read_staged", "finalize.apply"]


def test_the_first_commit_after_an_open_reads_meta(mem: MemoryStore) -> None:
    owner = Owner.open(Engine(mem), "db")
    with mem.recording() as ops:
        owner.commit({1: page_of(1)})
    assert [op.point for op in ops] == ["commit.read_meta", "commit.apply"]


def test_a_commit_after_another_engine_changed_meta_retries_once(
    mem_owner: Owner, mem: MemoryStore
) -> None:
    mem_owner.commit({p: page_of(p) for p in range(1, 100)})
    Engine(mem).compact("db")  # another engine: META and the PIDX rows change
    with mem.recording() as ops:
        mem_owner.commit({3: page_of(33)})
    # the guard fails and answers META; the PIDX rows changed with it: read, then commit
    assert [op.point for op in ops] == ["commit.apply", "commit.read_pidx", "commit.apply"]
    mem_owner.assert_reads_back()
    with mem.recording() as ops:
        mem_owner.commit({4: page_of(44)})
    assert [op.point for op in ops] == ["commit.apply"]


def test_a_compaction_pass_on_the_owners_engine_keeps_commits_at_one_operation(
    mem_owner: Owner, mem: MemoryStore
) -> None:
    for n in range(20):
        mem_owner.commit({1 + n: page_of(n)})
    assert mem_owner.engine.compact("db").changed
    with mem.recording() as ops:
        mem_owner.commit({2: page_of(22)})
    assert [op.point for op in ops] == ["commit.apply"]
    mem_owner.assert_reads_back()


def _spread(owner: Owner, pages: int, deltas: int) -> None:
    for n in range(deltas):
        owner.commit({p: page_of(n * 10_000 + p) for p in range(1 + n, pages + 1, deltas)})


@pytest.mark.parametrize("count", [1, 100, 3000])
def test_get_pages_is_one_store_transaction(mem_owner: Owner, mem: MemoryStore, count: int) -> None:
    _spread(mem_owner, 3000, 30)  # 3000 pages over 30 deltas
    for engine in (mem_owner.engine, Engine(mem)):  # warm and cold PIDX cache
        with counting(mem) as c:
            pages = engine.get_pages("db", mem_owner.generation, range(1, count + 1)).pages
        assert pages == mem_owner.expected(range(1, count + 1))
        assert (c.transactions, c.commits) == (1, 0)


def test_get_pages_reads_each_blob_once(mem_owner: Owner, mem: MemoryStore) -> None:
    _spread(mem_owner, 3000, 30)
    mem_owner.read([1])  # warm the PIDX cache
    with counting(mem) as c:
        mem_owner.read(range(1, 3001))
    part_pages = mem_owner.engine.config.part_pages
    parts = 30 * -(-100 // part_pages)  # each delta holds 100 pages
    assert c.reads == 1, "META and every blob in one multi-range read"
    (blob_read,) = [op for op in mem.ops[-1:] if op.op == "get_ranges"]
    assert blob_read.detail == f"{parts + 1} ranges", "each delta part is read exactly once"


def test_a_warm_get_pages_is_one_store_operation(mem_owner: Owner, mem: MemoryStore) -> None:
    _spread(mem_owner, 500, 10)
    for pgnos in ([1], range(1, 501), [499, 3]):
        with mem.recording() as ops:
            assert mem_owner.read(pgnos) == mem_owner.expected(pgnos)
        assert [op.point for op in ops] == ["get_pages.read_all"]


def test_a_get_pages_whose_cached_map_is_stale_goes_on_from_the_meta_it_read(
    mem_owner: Owner, mem: MemoryStore
) -> None:
    _spread(mem_owner, 500, 10)
    reader = Engine(mem)
    reader.get_pages("db", mem_owner.generation, [1])  # the reader caches the map
    mem_owner.commit({7: page_of(777)})  # a new head: the reader's map is stale
    with mem.recording() as ops:
        pages = reader.get_pages("db", mem_owner.generation, [7, 8]).pages
    assert pages == mem_owner.expected([7, 8])
    assert [op.point for op in ops] == [
        "get_pages.read_all",
        "get_pages.read_pidx",
        "get_pages.read_pages",
    ]


def test_open_reads_in_a_bounded_number_of_round_trips(mem_owner: Owner, mem: MemoryStore) -> None:
    _spread(mem_owner, 3000, 30)
    with counting(mem) as c:
        Engine(mem).open("db", preload=range(2, 200))
    # META, staging, newest deltas, PIDX, hint, directory, shard 0 at once; the preloaded
    # pages found elsewhere; commit (docs/open-and-preload.md).
    assert (c.reads, c.commits) == (2, 1)
    assert [op.point for op in mem.ops[-3:]] == ["open.read_all", "open.read_pages", "open.apply"]


def test_open_with_preload_is_one_store_transaction(mem_owner: Owner, mem: MemoryStore) -> None:
    _spread(mem_owner, 500, 10)
    with counting(mem) as c:
        pages = Engine(mem).open("db", preload=range(2, 200)).pages
    assert (c.transactions, c.commits) == (1, 1)
    assert len(pages) == 199


def test_first_open_is_one_store_transaction(mem: MemoryStore) -> None:
    with counting(mem) as c:
        Engine(mem).open("new", preload=[1, 2, 3])
    assert (c.transactions, c.commits) == (1, 1)


@pytest.mark.parametrize(
    "operation",
    ["stage", "finalize", "head"],
)
def test_stage_finalize_and_head_are_one_store_transaction_each(
    mem_owner: Owner, mem: MemoryStore, operation: str
) -> None:
    e, g = mem_owner.engine, mem_owner.generation
    calls: dict[str, Callable[[], object]] = {}
    with counting(mem) as c:
        txid = e.commit_stage("db", g, None, 0, {1: page_of(1)}).txid
    calls["stage"] = lambda: e.commit_stage("db", g, txid, 1, {2: page_of(2)})
    calls["finalize"] = lambda: e.commit_finalize("db", g, mem_owner.head_txid, txid, 2)
    calls["head"] = lambda: e.head("db")
    assert c.transactions == 1
    with counting(mem) as c:
        calls[operation]()
    assert c.transactions == 1
    assert c.commits == (0 if operation == "head" else 1)


def test_an_engine_that_only_reads_loads_the_pidx_once(mem_owner: Owner, mem: MemoryStore) -> None:
    _spread(mem_owner, 3000, 30)
    reader = Engine(mem)  # never opened nor committed to "db"
    reader.get_pages("db", mem_owner.generation, [1])
    for pgnos in ([2], [3000], range(1, 200)):
        with counting(mem) as c:
            pages = reader.get_pages("db", mem_owner.generation, pgnos).pages
        assert pages == mem_owner.expected(pgnos)
        assert c.reads == 1, "META and the blobs: the PIDX rows loaded before are cached"
    assert reader.pidx.loads == 1
    mem_owner.commit({5: page_of(5555)})  # a new head: the reader reloads once, then not
    for _ in range(2):
        pages = reader.get_pages("db", mem_owner.generation, [5]).pages
        assert pages == {5: page_of(5555)}
    assert reader.pidx.loads == 2


# ---------------------------------------------------------------------- every driver


def test_a_warm_commit_and_get_pages_are_one_round_trip_on_every_driver(store: Store) -> None:
    owner = Owner.open(Engine(store), "db")
    owner.commit({p: page_of(p) for p in range(1, 200)})
    for pages in ({5: page_of(55)}, {p: page_of(-p) for p in range(1, 200, 3)}, {}):
        before = store.stats.snapshot()
        owner.commit(pages)
        delta = store.stats.snapshot() - before
        assert (delta.round_trips, delta.transactions, delta.attempts) == (1, 1, 1)
    for pgnos in ([5], range(1, 200)):
        before = store.stats.snapshot()
        assert owner.read(pgnos) == owner.expected(pgnos)
        delta = store.stats.snapshot() - before
        assert (delta.round_trips, delta.transactions) == (1, 1)
