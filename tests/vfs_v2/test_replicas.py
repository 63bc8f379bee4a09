"""Acceptance of read replicas (issue 15, docs/read-replicas.md): 4 reader processes follow
the head while one writer commits 1,000 transactions, another owner takes the database
over half-way and compaction runs. Every read transaction sees a state equal to some
acknowledged commit (the oracle's digest for its txid), each reader's txids never go
back, the writer is never fenced by a reader, and each refresh costs one round trip."""

from __future__ import annotations

import multiprocessing
import random
from pathlib import Path
from typing import Any

import pytest
from replicas_support import SCHEMA, Oracle, apply, random_transaction, reader_loop

import sqlkv
from sqlkv.engine import Engine, EngineConfig
from sqlkv.store import open_store

READERS = 4
COMMITS = 1000
RETENTION_S = 3600


def _owner(store_url: str, name: str) -> tuple[Any, Engine, Any]:
    kv = open_store(store_url)
    # the retention window keeps every state a reader may still read while compaction runs
    engine = Engine(kv, EngineConfig(retention_s=RETENTION_S), compaction=True)
    return sqlkv.connect(name, engine=engine), engine, kv


@pytest.mark.slow
def test_four_readers_follow_a_writer_through_takeover_and_compaction(tmp_path: Path) -> None:
    store_url = str(tmp_path / "store")
    name = "replicated"
    rng = random.Random(15)
    oracle = Oracle()
    w, engine, kv = _owner(store_url, name)
    w.execute(SCHEMA)
    oracle.conn.execute(SCHEMA)
    oracle.record(w.sqlkv_txid)

    ctx = multiprocessing.get_context("spawn")
    stop = ctx.Event()
    results = ctx.Queue()
    readers = [
        ctx.Process(target=reader_loop, args=(store_url, name, stop, results, i))
        for i in range(READERS)
    ]
    for p in readers:
        p.start()
    next_key = [0]
    owners = [(w, engine, kv)]
    try:
        for i in range(COMMITS):
            if i == COMMITS // 2:  # a takeover: the old owner is fenced, by the new one
                assert not w.sqlkv_fenced
                w, engine, kv = _owner(store_url, name)
                owners.append((w, engine, kv))
                oracle.record(w.sqlkv_txid)
            if i % 250 == 125:
                engine.compact_until_done(name)
            statements = random_transaction(rng, next_key)
            with w:
                apply(w.execute, statements)
            with oracle.conn:
                apply(oracle.conn.execute, statements)
            oracle.record(w.sqlkv_txid)
        engine.compact_until_done(name)
        assert not w.sqlkv_fenced  # the owner after the takeover: no reader ever fenced it
    finally:
        stop.set()
        got = [results.get(timeout=120) for _ in readers]
        for p in readers:
            p.join(timeout=60)
        for conn, eng, store in reversed(owners):
            conn.close()
            eng.close()
            store.close()

    for index, seen, counters, error in sorted(got):
        print(
            f"reader {index}: {len(seen)} read transactions, "
            f"{len({t for t, _ in seen})} distinct txids, {counters['refreshes']} refreshes, "
            f"{counters['pages_invalidated']} pages invalidated, "
            f"{counters['cache_drops']} cache drops, {counters['get_pages_calls']} read_at, "
            f"{counters['too_old_transactions']} SnapshotTooOld"
        )
        assert error is None, f"reader {index}: {error}"
        assert len({txid for txid, _ in seen}) >= 20, f"reader {index} saw too few commits"
        txids = [txid for txid, _ in seen]
        assert txids == sorted(txids), f"reader {index} went back in time"
        for txid, state in seen:
            assert oracle.digests.get(txid) == state, f"reader {index} txid {txid}: wrong state"
        assert counters["refresh_max_round_trips"] == 1, counters
        assert counters["refresh_round_trips"] == counters["refreshes"], counters
        assert counters["too_old_transactions"] == 0, counters
        assert counters["cache_drops"] == 0, counters  # every refresh knew what changed
