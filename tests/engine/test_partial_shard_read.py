"""A point read fetches only the leading chunks of a shard that must hold its page's frame
(``read.shard_chunks``) and walks the frames there; every page still reads back exactly,
and a shard whose chunks do not hold it where expected is read whole (docs/open-and-preload.md).
So does an open whose engine knows the hint (``hint.shared_hints``: the engines of
``sqlkv.connect`` on one store share it)."""

from __future__ import annotations

import random

import pytest
from engine_support import EngineFactory, Owner

from sqlkv.engine import Engine, EngineConfig
from sqlkv.engine.hint import HintMemory
from sqlkv.engine.keys import DbKeys
from sqlkv.engine.pidx import freeze
from sqlkv.engine.read import PageSource, shard_chunks
from sqlkv.engine.seal import chunk_payload_size
from sqlkv.errors import CorruptionError
from sqlkv.store import Store

PAGE = 4096
KEYS = DbKeys("db")


def _random_pages(owner: Owner, first: int, end: int) -> dict[int, bytes]:
    rng = random.Random(first)
    pages = {p: rng.randbytes(PAGE) for p in range(first, end)}  # incompressible: 3 chunks
    owner.commit(pages)
    owner.engine.compact_until_done("db")
    return pages


def test_every_position_of_a_shard_reads_back_from_its_leading_chunks(
    owner: Owner, store: Store, make_engine: EngineFactory
) -> None:
    pages = _random_pages(owner, 1, 192)
    chunk = chunk_payload_size(store.limits.max_value_bytes)
    assert shard_chunks(0, PAGE, chunk) == 1 < shard_chunks(63, PAGE, chunk)
    for pgno in [1, 2, 23, 24, 40, 63, 64, 65, 100, 127, 128, 191]:
        cold = make_engine()  # no cached PIDX map or index: the read plans from META
        before = store.stats.snapshot()
        got = cold.get_pages("db", owner.generation, [pgno]).pages
        spent = store.stats - before
        assert got == {pgno: pages[pgno]}
        position = pgno % 64
        # META + PIDX (empty) + the shard's first chunks, never more than the bound needs
        assert spent.bytes_read < (shard_chunks(position, PAGE, chunk) * 100_000) + 2_000
    assert make_engine().get_pages("db", owner.generation, list(pages)).pages == pages


def test_a_read_of_a_whole_shard_is_unchanged(owner: Owner, make_engine: EngineFactory) -> None:
    pages = _random_pages(owner, 1, 130)
    got = make_engine().get_pages("db", owner.generation, [1, 30, 63, 64, 129, 130]).pages
    assert got == {1: pages[1], 30: pages[30], 63: pages[63], 64: pages[64], 129: pages[129]} | {
        130: None
    }


def test_a_shard_not_where_its_chunks_were_expected_is_read_whole(
    owner: Owner, store: Store
) -> None:
    pages = _random_pages(owner, 1, 64)
    head = owner.engine.head("db")
    # a reader that believes chunks hold 1 MB asks for chunk 0 only: the walk cannot find
    # page 60 there, so the shard is read again, whole, in the same snapshot
    source = PageSource(KEYS, head, freeze({}), chunk_bytes=1_000_000)
    before = store.stats.snapshot()
    got = store.transact(lambda tr: source.read(tr, [2, 60]))
    spent = store.stats - before
    assert got == {2: pages[2], 60: pages[60]}
    assert spent.round_trips == 2, "chunk 0, then the whole shard (a read-only commit is free)"
    assert spent.reads == 1 + 3


@pytest.mark.parametrize("chunk", [0, 1])
def test_a_damaged_leading_chunk_is_corruption(
    owner: Owner, store: Store, make_engine: EngineFactory, chunk: int
) -> None:
    _random_pages(owner, 1, 64)
    key = KEYS.shard_chunk(0, chunk)

    def damage(tr: object) -> None:
        value = bytearray(tr.get(key))  # type: ignore[attr-defined]
        value[100] ^= 1
        tr.set(key, bytes(value))  # type: ignore[attr-defined]

    store.transact(damage)
    with pytest.raises(CorruptionError, match="checksum"):
        make_engine().get_pages("db", owner.generation, [40])


def test_an_open_that_knows_the_hint_reads_the_hinted_shards_in_part(
    owner: Owner, store: Store
) -> None:
    pages = _random_pages(owner, 1, 300)  # larger than the budget below: no whole read
    hint = [1, 2, 70, 250]
    owner.engine.save_hint("db", owner.generation, hint)
    memory = HintMemory()
    chunk = chunk_payload_size(store.limits.max_value_bytes)
    spent = []
    for _ in range(2):  # the first engine learns the hint, the second guesses from it
        engine = Engine(store, EngineConfig(), hints=memory)
        before = store.stats.snapshot()
        got = owner.reopen(engine, preload_bytes=16 * PAGE)
        spent.append(store.stats - before)
        assert got == {p: pages[p] for p in hint}
    assert [s.round_trips for s in spent] == [3, 2], "the hinted shards come with the first read"
    # shard 0 to page 2's chunk, shard 1 to page 70's, shard 3 to page 250's: not whole
    leading = sum(shard_chunks(p % 64, PAGE, chunk) for p in (2, 70, 250))
    assert leading < 3 * 3
    assert spent[1].bytes_read < leading * 100_000 + 5_000


def test_an_open_whose_guess_falls_short_reads_the_rest_in_the_same_transaction(
    owner: Owner, store: Store
) -> None:
    pages = _random_pages(owner, 1, 300)
    memory = HintMemory()
    memory.put("db", [1, 2])  # what the engine believes: shard 0's first chunk suffices
    owner.engine.save_hint("db", owner.generation, [1, 2, 63, 200])  # what is stored
    engine = Engine(store, EngineConfig(), hints=memory)
    before = store.stats.snapshot()
    got = owner.reopen(engine, preload_bytes=16 * PAGE)
    assert got == {p: pages[p] for p in (1, 2, 63, 200)}
    assert (store.stats - before).round_trips == 3, "the first read, the rest, the commit"
