"""The PIDX cache is bounded and never serves a stale mapping after eviction."""

from __future__ import annotations

from engine_support import page_of

from sqlkv.engine import Engine, EngineConfig
from sqlkv.store import MemoryStore


def test_the_pidx_cache_keeps_the_most_recently_used_databases_within_its_bound() -> None:
    engine = Engine(MemoryStore(), EngineConfig(pidx_cache_rows=250))
    heads = {}
    for name in ("a", "b", "c"):
        head = engine.open(name).head
        heads[name] = engine.commit(
            name, head.generation, head.head_txid, {p: page_of(p) for p in range(1, 101)}, 100
        ).head
        assert engine.pidx.rows <= 250
    assert engine.pidx.rows == 200  # "a" was evicted for "c"
    loads = engine.pidx.loads
    for name in ("a", "b", "c"):
        got = engine.get_pages(name, heads[name].generation, [1, 50, 100]).pages
        assert got == {1: page_of(1), 50: page_of(50), 100: page_of(100)}
    assert engine.pidx.loads == loads + 1  # only the evicted database was reloaded
    assert engine.pidx.rows <= 250


def test_a_database_larger_than_the_cache_is_read_correctly_without_caching() -> None:
    engine = Engine(MemoryStore(), EngineConfig(pidx_cache_rows=10))
    head = engine.open("big").head
    head = engine.commit(
        "big", head.generation, head.head_txid, {p: page_of(p) for p in range(1, 41)}, 40
    ).head
    assert engine.pidx.rows == 0
    head = engine.commit("big", head.generation, head.head_txid, {3: page_of(300)}, 40).head
    got = engine.get_pages("big", head.generation, range(1, 41)).pages
    assert got == {p: page_of(300 if p == 3 else p) for p in range(1, 41)}
