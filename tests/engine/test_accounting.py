"""Storage accounting: ``head.storage_used`` is exactly the bytes the database's key range
holds, after every step of a random sequence of commits, shrinks, stages, takeovers, shards
written by hand and compaction passes."""

from __future__ import annotations

import random

import pytest
from engine_support import Owner, check_invariants, page_of, random_page, read_head, write_shard

from sqlkv.engine import Engine, EngineConfig
from sqlkv.engine.keys import DbKeys
from sqlkv.errors import InvalidRequest
from sqlkv.store import MemoryStore

S = 64


def assert_exact(mem: MemoryStore, name: str) -> None:
    used = read_head(mem, name).storage_used
    assert used == mem.stored_bytes(*DbKeys(name).all_range())


class RandomOwner:
    """Drives one database through random operations, checking accounting after each."""

    def __init__(self, mem: MemoryStore, seed: int) -> None:
        self.mem = mem
        self.rng = random.Random(seed)
        self.config = EngineConfig(part_pages=self.rng.choice([4, 64, 256]))
        self.owner = Owner.open(Engine(mem, self.config), "db")

    def pages(self, top: int) -> dict[int, bytes]:
        rng = self.rng
        count = rng.choice([1, 2, 5, 30, 120])
        picked = {rng.randint(1, max(1, top)) for _ in range(count)}
        return {
            p: random_page(rng) if rng.random() < 0.3 else page_of(rng.randrange(10**6))
            for p in picked
        }

    def step(self) -> str:
        rng, o = self.rng, self.owner
        kind = rng.choice(
            [
                "commit",
                "commit",
                "grow",
                "shrink",
                "stage",
                "abandon",
                "takeover",
                "shard",
                "compact",
                "refused",
            ]
        )
        if kind == "commit":
            o.commit(self.pages(o.size + 5))
        elif kind == "grow":
            new = o.size + rng.randint(1, 400)
            o.commit(self.pages(new), size=new)
        elif kind == "shrink":
            new = rng.randint(0, o.size)
            keep = self.pages(new) if new and rng.random() < 0.5 else {}
            o.commit(keep, size=new)
        elif kind == "stage":
            batches = [self.pages(o.size + 50) for _ in range(rng.randint(1, 3))]
            o.stage_commit(batches, size=rng.choice([None, max(p for b in batches for p in b)]))
        elif kind == "abandon":
            o.engine.commit_stage("db", o.generation, None, 0, self.pages(o.size + 10))
            o.reopen(Engine(self.mem, self.config))
        elif kind == "takeover":
            o.reopen(Engine(self.mem, self.config) if rng.random() < 0.5 else None)
        elif kind == "shard" and o.size:
            sid = rng.randint(0, o.size // S)
            first, last = max(1, sid * S), min(o.size, sid * S + S - 1)
            if first <= last:
                pages = {p: page_of(rng.randrange(10**6)) for p in range(first, last + 1)}
                write_shard(self.mem, "db", sid, pages)
                # pages with a PIDX row still read from their delta; the others now from the shard
                for p, v in pages.items():
                    if not self._has_pidx_row(p):
                        o.model[p] = v
        elif kind == "compact":
            if rng.random() < 0.5:
                o.engine.compact("db")
            else:
                o.engine.compact_until_done("db")
        elif kind == "refused":
            with pytest.raises(InvalidRequest):
                o.engine.commit("db", o.generation, o.head_txid, {0: page_of(0)}, o.size)
        return kind

    def _has_pidx_row(self, pgno: int) -> bool:
        keys = DbKeys("db")
        return self.mem.transact(lambda tr: tr.get(keys.pidx(pgno), snapshot=True)) is not None


@pytest.mark.parametrize("seed", range(8))
def test_storage_used_is_exact_after_every_step(seed: int) -> None:
    mem = MemoryStore()
    driver = RandomOwner(mem, seed)
    assert_exact(mem, "db")
    kinds: set[str] = set()
    for n in range(40):
        kind = driver.step()
        kinds.add(kind)
        assert_exact(mem, "db")
        check_invariants(mem, "db")
        if n % 8 == 7 or kind in ("shrink", "shard"):
            driver.owner.assert_reads_back(extra=3)
    driver.owner.assert_reads_back(extra=3)
    assert kinds >= {"commit", "grow", "shrink", "stage", "abandon", "takeover", "shard", "compact"}


def test_storage_used_is_exact_while_a_commit_is_staged() -> None:
    mem = MemoryStore()
    owner = Owner.open(Engine(mem), "db")
    owner.commit({1: page_of(1)})
    owner.engine.commit_stage("db", owner.generation, None, 0, {2: page_of(2)})
    assert_exact(mem, "db")


def test_storage_used_stays_exact_when_another_engine_compacts() -> None:
    mem = MemoryStore()
    owner = Owner.open(Engine(mem), "db")
    owner.commit({1 + S * i: page_of(i) for i in range(20)})  # 20 shards: more than one pass
    owner.read([1])  # the owner's PIDX cache is warm
    folded = Engine(mem).compact("db")  # another engine process compacts
    assert folded.pages_folded and folded.head.materialized_txid == 1
    owner.commit({1: page_of(100)})  # page 1's row was folded away: the commit adds it back
    owner.assert_reads_back()
    assert_exact(mem, "db")
