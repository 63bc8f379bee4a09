"""Compaction passes: folding, deleting dead deltas, idempotence, fencing, accounting."""

from __future__ import annotations

import pytest
from compaction_support import Db, page
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sqlkv.engine.engine as engine_module
from sqlkv.engine import Engine, EngineConfig
from sqlkv.engine.compaction import CompactionConfig
from sqlkv.engine.keys import DbKeys
from sqlkv.errors import FenceMismatch, GuardFailed
from sqlkv.store import MemoryStore


def delta_keys(engine: Engine, name: str = "db") -> list[bytes]:
    store = engine.store
    assert isinstance(store, MemoryStore)
    lo, hi = DbKeys(name).deltas_from(0)
    return [k for k in store.dump() if lo <= k < hi]


def test_a_delta_spanning_several_shards_is_consumed_over_several_passes(
    engine_on: Engine,
) -> None:
    engine_on._shards_per_pass = 1
    db = Db(engine_on)
    db.commit({p: page(1, p) for p in range(1, 300)})  # shards 0..4
    passes = 0
    while True:
        out = engine_on.compact("db")
        passes += 1
        db.head = out.head
        db.check()
        if out.deltas_deleted:
            break
        assert out.pages_folded > 0, "every pass before the last folds pages"
    assert passes == 5
    assert db.head.delta_count == 0
    assert db.head.materialized_txid == db.head.head_txid
    db.reopen()
    db.check()


def test_compaction_is_idempotent(mem_engine: Engine) -> None:
    db = Db(mem_engine)
    for v in range(5):
        db.commit({p: page(v, p) for p in range(1, 100, v + 1)})
    mem_engine.compact_until_done("db")
    store = mem_engine.store
    assert isinstance(store, MemoryStore)
    before = store.dump()
    out = mem_engine.compact("db")
    assert not out.changed
    assert store.dump() == before


def test_newest_copy_wins_and_old_deltas_are_deleted(mem_engine: Engine) -> None:
    db = Db(mem_engine)
    for v in range(10):
        db.commit({1: page(v, 1), 2: page(v, 2)})
    assert db.head.delta_count == 10
    db.head = mem_engine.compact_until_done("db")
    assert db.head.delta_count == 0
    assert delta_keys(mem_engine) == []
    db.check()
    assert db.stored() == db.head.storage_used


def test_a_takeover_during_compaction_fences_the_pass(mem_engine: Engine) -> None:
    db = Db(mem_engine)
    db.commit({p: page(1, p) for p in range(1, 70)})
    stale_generation = db.gen
    db.reopen()  # another owner took over
    store = mem_engine.store
    assert isinstance(store, MemoryStore)
    before = store.dump()
    with pytest.raises(FenceMismatch):
        mem_engine.compact("db", generation=stale_generation)
    assert store.dump() == before
    out = mem_engine.compact("db", generation=db.gen)
    assert out.pages_folded == 69


def test_shrink_after_compaction_removes_shard_pages_above_the_end(mem_engine: Engine) -> None:
    db = Db(mem_engine)
    db.commit({p: page(1, p) for p in range(1, 200)})
    db.head = mem_engine.compact_until_done("db")
    db.commit({}, size=70)  # shard 1 keeps pages 64..70, shards 2 and 3 go
    keys = DbKeys("db")
    store = mem_engine.store
    assert isinstance(store, MemoryStore)
    lo, hi = keys.shard_range(2)
    assert not [k for k in store.dump() if lo <= k < hi]
    db.commit({150: page(2, 150)}, size=150)  # regrow: pages 71..149 must read as zeros
    db.check()
    assert db.stored() == db.head.storage_used


def test_compacted_table_data_takes_no_more_than_its_raw_pages(mem_engine: Engine) -> None:
    import apsw

    con = apsw.Connection(":memory:")
    con.execute("PRAGMA page_size=4096")
    con.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT, email TEXT, score REAL)")
    with con:
        con.executemany(
            "INSERT INTO t(name, email, score) VALUES (?, ?, ?)",
            ((f"user {i}", f"user{i}@example.com", i * 0.37) for i in range(200_000)),
        )
    data = con.serialize("main")
    raw_pages = {i // 4096 + 1: data[i : i + 4096] for i in range(0, len(data), 4096)}
    assert len(data) >= 10_000_000
    db = Db(mem_engine)
    items = sorted(raw_pages.items())
    for i in range(0, len(items), 500):
        db.commit(dict(items[i : i + 500]), size=len(items))
    db.head = mem_engine.compact_until_done("db")
    assert db.head.storage_used == db.stored()
    assert db.stored() <= len(data), f"{db.stored()} stored bytes for {len(data)} raw bytes"
    db.check()


def test_hot_rows_keep_live_deltas_bounded() -> None:
    threshold, hard = 16, 32
    engine = Engine(
        MemoryStore(),
        EngineConfig(max_live_deltas=hard),
        compaction=CompactionConfig(delta_count_threshold=threshold, idle_seconds=0.2),
    )
    try:
        db = Db(engine)
        db.commit({p: page(0, p) for p in range(1, 9)})
        most = 0
        from sqlkv.errors import CompactionBehind

        refused = 0
        for i in range(10_000):
            pgno = 2 + i % 3  # 100 hot rows live on a few pages
            while True:
                try:
                    db.commit({pgno: page(i, pgno)})
                    break
                except CompactionBehind:
                    refused += 1
                    assert engine.compactor is not None
                    engine.compactor.wait_idle(1.0)
            most = max(most, db.head.delta_count)
        assert most <= hard
        assert engine.compactor is not None
        assert engine.compactor.wait_idle(10)
        db.head = engine.compact_until_done("db")
        db.check()
        assert db.head.delta_count == 0
    finally:
        engine.close()


ops = st.lists(
    st.one_of(
        st.tuples(
            st.just("commit"),
            st.dictionaries(st.integers(1, 400), st.integers(0, 3), min_size=1, max_size=30),
        ),
        st.tuples(st.just("shrink"), st.integers(0, 400)),
        st.tuples(st.just("compact"), st.integers(1, 4)),
        st.tuples(st.just("takeover"), st.none()),
    ),
    min_size=1,
    max_size=25,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=ops)
def test_any_sequence_reads_like_a_dict_model(steps: list[tuple[str, object]]) -> None:
    engine = Engine(MemoryStore(), EngineConfig(part_pages=32))
    db = Db(engine)
    for n, (kind, arg) in enumerate(steps):
        if kind == "commit":
            assert isinstance(arg, dict)
            db.commit({p: page(n * 10 + v, p) for p, v in arg.items()})
        elif kind == "shrink":
            assert isinstance(arg, int)
            db.commit({}, size=min(arg, db.head.db_size_pages))
        elif kind == "compact":
            assert isinstance(arg, int)
            engine._shards_per_pass = arg
            db.head = engine.compact("db").head
        else:
            db.reopen()
        assert db.head.storage_used == db.stored(), f"accounting drifted after step {n} {kind}"
        db.head.validate()
    db.check()
    db.reopen()
    db.check()


def test_commits_landing_between_plan_and_apply_are_absorbed(
    engine_on: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pass is planned from a snapshot and applied in one guarded operation: META and the
    PIDX rows commits rewrote meanwhile fail its guards, which it absorbs (the rewritten rows
    name newer copies and stay); nothing is lost and the pass lands."""
    db = Db(engine_on)
    db.commit({p: page(1, p) for p in range(1, 130)})  # shards 0..2
    db.commit({p: page(2, p) for p in range(1, 130, 5)})
    original = Engine._apply_pass
    racing = [{1: page(3, 1), 64: page(3, 64)}, {1: page(4, 1), 2: page(4, 2)}]

    def apply_after_a_commit(self: Engine, *args: object) -> object:
        if racing:
            db.commit(racing.pop(0))  # lands after the plan, before this apply
        return original(self, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(Engine, "_apply_pass", apply_after_a_commit)
    absorbed: list[bytes] = []
    absorb = engine_module.absorb

    def counting(keys: DbKeys, plan: object, state: object, failed: GuardFailed) -> bool:
        absorbed.append(failed.key)
        return absorb(keys, plan, state, failed)  # type: ignore[arg-type]

    monkeypatch.setattr(engine_module, "absorb", counting)
    out = engine_on.compact("db")
    assert not racing and out.changed and out.pages_folded >= 129
    assert DbKeys("db").pidx(1) in absorbed, "a rewritten PIDX row failed its guard"
    db.head = engine_on.head("db")
    assert db.head.delta_count >= 1, "the racing commits' deltas are live"
    db.check()
    db.reopen()
    db.check()
    db.head = engine_on.compact_until_done("db")
    assert db.head.delta_count == 0
    db.check()
