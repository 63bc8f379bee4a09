"""Storage accounting: ``head.storage_used`` is exactly the bytes the database's key range
holds, after every step of a random sequence of commits, shrinks, stages, takeovers, shards
written by hand and compaction passes, and after each engine path that writes (checked
against a scan of the store, never against numbers written in the test); only the ledger
(``sqlkv.engine.ledger``) writes keys, and published PIDX maps are read-only."""

from __future__ import annotations

import random
import re
from pathlib import Path
from typing import Any

import pytest
from engine_support import (
    Owner,
    check_invariants,
    database_state,
    page_of,
    random_page,
    read_head,
    stored_bytes,
    write_shard,
)

import sqlkv.engine
from sqlkv.engine import Engine, EngineConfig
from sqlkv.engine.blobs import blob_rows
from sqlkv.engine.keys import DbKeys
from sqlkv.engine.ledger import Ledger
from sqlkv.errors import InvalidRequest
from sqlkv.store import MemoryStore, Store, Transaction

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


# ---------------------------------------------------------------------- every path, every writer

LEDGER_WRITES = [
    "put",
    "replace",
    "put_blob",
    "drop",
    "drop_rows",
    "drop_range",
    "drop_counted_range",
    "drop_uncounted_range",
    "put_uncounted",
    "write_head",
]


def test_every_engine_path_and_every_ledger_write_keeps_storage_used_exact(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each step writes through one engine path; after it, ``storage_used`` must equal a scan
    of the bytes stored (no expected number is written here). The ledger records which of
    its writes each operation used: every operation that writes and every kind of write
    must have been checked."""
    used: set[tuple[str, str]] = set()
    for method in LEDGER_WRITES:
        original = getattr(Ledger, method)

        def recorded(
            self: Ledger, *args: object, _m: str = method, _f: Any = original, **kw: Any
        ) -> Any:
            used.add((self._tr.name, _m))
            return _f(self, *args, **kw)

        monkeypatch.setattr(Ledger, method, recorded)

    config = EngineConfig(part_pages=16)
    owner = Owner.open(Engine(store, config), "db")
    e = owner.engine
    keys = DbKeys("db")

    def check(step: str) -> None:
        head = check_invariants(store, "db", settled=False)
        assert head.storage_used == stored_bytes(store, "db"), step
        owner.assert_reads_back(extra=3)

    check("open (create)")
    owner.commit({p: page_of(p) for p in range(1, 201)})
    check("commit, several parts")
    owner.commit({p: page_of(p + 1) for p in range(1, 201, 5)})
    check("commit over existing PIDX rows")
    e.compact_until_done("db")
    check("compaction: shards written, PIDX rows and deltas dropped")
    owner.commit({p: page_of(p + 2) for p in range(60, 80)})
    e.compact("db")
    check("compaction into existing shards")
    owner.commit({5: page_of(55)}, size=150)
    check("shrink: PIDX rows above the end, shards rewritten and dropped")
    txid = e.commit_stage("db", owner.generation, None, 0, {2: page_of(22)}).txid
    check("stage")
    e.commit_stage("db", owner.generation, txid, 0, {3: page_of(33), 4: page_of(44)})
    check("stage again with the same seq (replaces it)")
    owner.commit({6: page_of(66)})
    check("commit over an abandoned staged commit")
    owner.stage_commit([{7: page_of(77)}, {140: page_of(140)}], size=140)
    check("stage and finalize, with a shrink")
    e.commit_stage("db", owner.generation, None, 0, {8: page_of(88)})

    def dangle(tr: Transaction) -> None:  # behind the engine's back: what a crash may leave
        for key, value in blob_rows(
            lambda i: keys.delta_chunk(owner.head_txid + 5, 0, i), b"orphan", 100
        ):
            tr.set(key, value)

    store.transact(dangle)
    owner.reopen(Engine(store, config))
    check("takeover: a staged commit and an uncounted DELTA above head removed")
    e = owner.engine
    owner.commit({}, size=0)
    e.compact_until_done("db")
    check("shrink to nothing, then compaction")
    owner.commit({p: page_of(p + 3) for p in range(1, 90)})
    e.compact("db")
    owner.commit({p: page_of(p + 4) for p in range(1, 90, 4)})
    e.fork("db", "copy")
    head = check_invariants(store, "copy")
    assert head.storage_used == stored_bytes(store, "copy"), "fork"
    assert database_state(e, "copy", 1) == database_state(e, "db", owner.generation)

    writes = {op for op, _ in used}
    assert writes == {
        "open",
        "commit",
        "stage",
        "finalize",
        "compact",
        "fork_begin",
        "fork_copy",
        "fork_finish",
    }, writes
    assert {m for _, m in used} == set(LEDGER_WRITES), set(LEDGER_WRITES) - {m for _, m in used}


def test_only_the_ledger_writes_keys_in_the_engine() -> None:
    """No engine module but the ledger calls a store transaction's set or clear."""
    engine_dir = Path(sqlkv.engine.__file__).parent
    writers = re.compile(r"\btr\.(set|clear|clear_range)\(")
    offenders = [
        f"{path.relative_to(engine_dir)}:{n}"
        for path in sorted(engine_dir.rglob("*.py"))
        if path.name != "ledger.py"
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if writers.search(line)
    ]
    assert offenders == []


def test_a_published_pidx_map_cannot_be_changed(owner: Owner) -> None:
    owner.commit({1: page_of(1)})
    keys = DbKeys("db")
    head = owner.engine.head("db")
    rows = owner.engine.store.transact(lambda tr: owner.engine.pidx.rows_for(tr, "db", keys, head))
    assert dict(rows) == {1: (head.head_txid, 0)}
    with pytest.raises(TypeError):
        rows[2] = (1, 0)  # type: ignore[index]
    with pytest.raises(TypeError, match="frozen"):
        owner.engine.pidx.publish("db", head, {1: (1, 0)})  # type: ignore[arg-type]
