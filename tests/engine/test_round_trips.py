"""Round trips, counted by the memory store: each engine operation is one store transaction.

``stats.transactions`` counts committed store transactions (read-only ones included) and
``ops`` logs every driver operation, so a commit is exactly one ``commit`` op.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest
from engine_support import Owner, page_of

from sqlkv.engine import Engine
from sqlkv.store import MemoryStore


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


def test_a_warm_commit_reads_only_the_head(mem_owner: Owner, mem: MemoryStore) -> None:
    mem_owner.commit({p: page_of(p) for p in range(1, 300)})
    with counting(mem) as c:
        mem_owner.commit({7: page_of(70)})
    assert c.reads == 1, "a commit with a warm PIDX cache should read META and nothing else"


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
    assert c.reads == 2, "META, then one multi-range read of every blob"
    (blob_read,) = [op for op in mem.ops[-2:] if op.op == "get_ranges"]
    assert blob_read.detail == f"{parts} ranges", "each delta part is read exactly once"


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
        assert c.reads == 2, "META, then the blobs: the PIDX rows loaded before are cached"
    assert reader.pidx.loads == 1
    mem_owner.commit({5: page_of(5555)})  # a new head: the reader reloads once, then not
    for _ in range(2):
        pages = reader.get_pages("db", mem_owner.generation, [5]).pages
        assert pages == {5: page_of(5555)}
    assert reader.pidx.loads == 2
