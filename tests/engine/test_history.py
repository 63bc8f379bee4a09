"""Reads of past states (``snapshot``, ``read_at``) and ``changes_since`` (docs/history.md).

Every committed state is recorded from the owner's page model; a read at a past txid must
equal that state exactly or raise ``SnapshotTooOld`` — never another state's pages — and
before compaction folds anything, every past state is readable.
"""

from __future__ import annotations

import random
from datetime import UTC

import pytest
from engine_support import ZERO, Owner, check_invariants, page_of

from sqlkv.engine import Engine, EngineConfig
from sqlkv.errors import InvalidRequest, SnapshotTooOld
from sqlkv.store import MemoryStore

State = tuple[int, dict[int, bytes]]


class Recorder:
    """An owner plus every committed state: txid -> (size, pages)."""

    def __init__(self, owner: Owner) -> None:
        self.owner = owner
        self.states: dict[int, State] = {}
        self.written: dict[int, set[int]] = {}

    def commit(self, pages: dict[int, bytes], size: int | None = None) -> int:
        self.owner.commit(pages, size=size)
        return self._record(set(pages))

    def stage_commit(self, batches: list[dict[int, bytes]], size: int | None = None) -> int:
        self.owner.stage_commit(batches, size=size)
        return self._record({p for b in batches for p in b})

    def _record(self, pages: set[int]) -> int:
        o = self.owner
        self.states[o.head_txid] = (o.size, dict(o.model))
        self.written[o.head_txid] = pages
        return o.head_txid

    def expected(self, txid: int, pgnos: list[int]) -> dict[int, bytes | None]:
        size, model = self.states[txid]
        return {p: (model.get(p, ZERO) if p <= size else None) for p in pgnos}


def check_past(engine: Engine, rec: Recorder, txid: int, *, must: bool) -> bool:
    """Read every page of ``txid``'s state (and two above): equal to the recorded state, or
    SnapshotTooOld (not allowed when ``must``). True when it was readable."""
    size = rec.states[txid][0]
    pgnos = list(range(1, size + 3))
    try:
        got = engine.read_at("db", txid, pgnos).pages
    except SnapshotTooOld:
        assert not must, f"txid {txid} should be readable"
        return False
    want = rec.expected(txid, pgnos)
    bad = [p for p in pgnos if got[p] != want[p]]
    assert not bad, f"txid {txid}: pages {bad[:8]} differ from the committed state"
    snap = engine.snapshot("db", at=txid, preload=[2, size])
    assert (snap.txid, snap.db_size_pages) == (txid, size)
    assert snap.pages == {p: want.get(p, rec.expected(txid, [p])[p]) for p in {1, 2, size}}
    return True


def history_of(owner: Owner) -> Recorder:
    rec = Recorder(owner)
    rec.commit({p: page_of(p) for p in range(1, 150)})
    rec.commit({p: page_of(p + 1000) for p in range(100, 201, 3)}, size=200)
    rec.commit({}, size=90)  # shrink: cuts shards and rows
    rec.commit({95: page_of(9595)}, size=130)  # regrow: 91..130 are zeros except 95
    rec.stage_commit([{p: page_of(-p) for p in range(1, 40)}, {p: page_of(-p) for p in (3, 120)}])
    rec.commit({7: page_of(77)})
    return rec


def test_every_past_state_reads_exactly_before_compaction(owner: Owner, engine: Engine) -> None:
    rec = history_of(owner)
    for txid in rec.states:
        check_past(engine, rec, txid, must=True)
    # a fresh engine (cold caches) answers the same
    other = Engine(engine.store)
    for txid in rec.states:
        check_past(other, rec, txid, must=True)


def test_reads_after_compaction_are_exact_or_snapshot_too_old(owner: Owner, engine: Engine) -> None:
    rec = history_of(owner)
    engine.compact_until_done("db")
    check_invariants(engine.store, "db")
    head = owner.head_txid
    readable = [t for t in rec.states if check_past(engine, rec, t, must=t == head)]
    assert head in readable
    with pytest.raises(SnapshotTooOld, match="older than what it retains"):
        engine.read_at("db", min(rec.states), [1])


def test_past_txids_that_do_not_exist_are_invalid(owner: Owner, engine: Engine) -> None:
    rec = history_of(owner)
    abandoned = engine.commit_stage("db", owner.generation, None, 0, {1: page_of(5)}).txid
    rec.commit({2: page_of(22)})  # overtakes the abandoned staged txid
    with pytest.raises(InvalidRequest, match="never committed"):
        engine.read_at("db", abandoned, [1])
    with pytest.raises(InvalidRequest, match="not committed"):
        engine.read_at("db", owner.head_txid + 1, [1])
    with pytest.raises(InvalidRequest, match="not committed"):
        engine.changes_since("db", owner.head_txid + 1)


def test_changes_since_names_every_page_written_or_cut(owner: Owner, engine: Engine) -> None:
    rec = history_of(owner)
    txids = sorted(rec.states)
    head = owner.head_txid
    for since in txids:
        got = engine.changes_since("db", since)
        assert (got.txid, got.db_size_pages) == (head, owner.size)
        assert got.changed is not None
        later = set().union(*(rec.written[t] for t in txids if t > since))
        assert later <= got.changed
        # every page whose content differs between the two states is named
        size0 = rec.states[since][0]
        differs = {
            p
            for p in range(1, owner.size + 1)
            if rec.expected(since, [p])[p] != rec.expected(head, [p])[p] and p <= size0
        }
        assert differs <= got.changed, (since, sorted(differs - got.changed)[:5])
    assert engine.changes_since("db", head).changed == frozenset()


def test_changes_since_a_folded_txid_is_unknown(owner: Owner, engine: Engine) -> None:
    rec = history_of(owner)
    engine.compact_until_done("db")
    assert engine.changes_since("db", min(rec.states)).changed is None


def test_snapshot_at_the_head_reads_like_an_owner(owner: Owner, engine: Engine) -> None:
    history_of(owner)
    snap = engine.snapshot("db", preload=range(1, 140))
    assert (snap.txid, snap.db_size_pages) == (owner.head_txid, owner.size)
    assert snap.head.head_txid == owner.head_txid
    assert snap.pages == owner.expected(range(1, 140))
    # read-only: the owner is not fenced
    owner.commit({9: page_of(99)})


def test_reads_at_a_txid_cost_one_store_transaction(mem: MemoryStore) -> None:
    engine = Engine(mem)
    rec = Recorder(Owner.open(engine, "db"))
    for i in range(6):
        rec.commit({p: page_of(p + i) for p in range(1 + i, 80, 5)})
    rec.commit({200: page_of(200)})  # changes one page, beyond the others
    head = rec.owner.head_txid
    for call, ops in (
        # a reader one commit behind: facts since its txid, then the head's read path
        (lambda: engine.read_at("db", head - 1, range(1, 80)), 2),
        (lambda: engine.snapshot("db", at=head - 1, preload=range(1, 80)), 2),
        # further back: + the older facts, + the blobs of the pages changed since
        (lambda: engine.read_at("db", head - 3, range(1, 80)), 4),
        (lambda: engine.changes_since("db", head - 4), 1),
    ):
        before, first = mem.stats.transactions, len(mem.ops)
        call()
        assert mem.stats.transactions - before == 1
        assert len(mem.ops) - first == ops
        assert all(op.op != "commit" for op in mem.ops[first:])


def test_random_histories_with_compaction_never_read_wrong_pages() -> None:
    rng = random.Random(15)
    for round_ in range(6):
        mem = MemoryStore()
        engine = Engine(mem, EngineConfig(part_pages=8))
        rec = Recorder(Owner.open(engine, "db"))
        readable = 0
        for step in range(40):
            size = rec.owner.size
            roll = rng.random()
            if roll < 0.1 and size > 4:
                rec.commit({}, size=rng.randint(1, size))
            elif roll < 0.25:
                engine.compact("db")
            elif roll < 0.3:
                rec.stage_commit(
                    [{rng.randint(1, 120): page_of(step * 1000 + k)} for k in range(3)]
                )
            else:
                pgnos = {rng.randint(1, 120) for _ in range(rng.randint(1, 12))}
                rec.commit({p: page_of(step * 1000 + p) for p in pgnos})
            for txid in rng.sample(sorted(rec.states), min(4, len(rec.states))):
                readable += check_past(engine, rec, txid, must=txid == rec.owner.head_txid)
        check_invariants(mem, "db")
        assert readable > 25, f"round {round_}: only {readable} reads were possible"


# ---------------------------------------------------------------------- labels, resolve, history


def test_labels_resolve_and_history(owner: Owner, engine: Engine) -> None:
    from datetime import datetime, timedelta

    from sqlkv.errors import UnknownLabel

    rec = history_of(owner)
    txids = sorted(rec.states)
    assert engine.label("db", "before-shrink", txids[1]) == txids[1]
    assert engine.label("db", "now") == owner.head_txid
    assert engine.resolve("db", "before-shrink") == txids[1]
    assert engine.resolve("db", txids[2]) == txids[2]
    with pytest.raises(UnknownLabel, match="no label 'nope'"):
        engine.resolve("db", "nope")
    with pytest.raises(InvalidRequest, match="all digits"):
        engine.label("db", "123")
    entries = engine.history("db")
    assert [e.txid for e in entries] == sorted(rec.states, reverse=True)
    assert entries[0].labels == ("now",)
    assert {e.txid: e.labels for e in entries}[txids[1]] == ("before-shrink",)
    assert [e.db_size_pages for e in entries] == [rec.states[t][0] for t in sorted(txids)[::-1]]
    assert len(engine.history("db", limit=2)) == 2
    # times: the newest commit at or before the time
    for e in entries:
        at = datetime.fromtimestamp(e.committed_ms / 1000, UTC)
        assert engine.resolve("db", at) >= e.txid
    future = datetime.now(UTC) + timedelta(days=1)
    assert engine.resolve("db", future) == owner.head_txid
    with pytest.raises(InvalidRequest, match="no timezone"):
        engine.resolve("db", datetime.now())
    # before the first commit: the empty database (txid 1)
    created = engine.head("db").created_ms
    first = min(e.committed_ms for e in entries)
    if first > created:
        at = datetime.fromtimestamp(created / 1000, UTC)
        assert engine.resolve("db", at) == 1
    assert engine.read_at("db", 1, [1, 2]).pages == {1: None, 2: None}
    assert engine.snapshot("db", at=1).db_size_pages == 0
    # moving a label; relabelling keeps accounting exact
    engine.label("db", "now", txids[0])
    assert engine.resolve("db", "now") == txids[0]
    check_invariants(engine.store, "db")


def test_a_label_survives_compaction_but_does_not_pin_history(owner: Owner, engine: Engine) -> None:
    rec = history_of(owner)
    first = min(rec.states)
    engine.label("db", "old", first)
    engine.compact_until_done("db")
    check_invariants(engine.store, "db")
    assert engine.resolve("db", "old") == first
    with pytest.raises(SnapshotTooOld):
        engine.read_at("db", engine.resolve("db", "old"), [1])
    with pytest.raises(SnapshotTooOld):
        engine.resolve("db", first)


def test_metrics_count_past_reads_lag_and_retained_bytes(owner: Owner, engine: Engine) -> None:
    engine.set_retention("db", 3600)
    rec = history_of(owner)
    engine.read_at("db", min(rec.states), [1])
    engine.compact_until_done("db")
    reg = engine.metrics.registry
    assert reg.get_sample_value("sqlkv_past_reads_total", {"outcome": "ok"}) == 1
    assert reg.get_sample_value("sqlkv_read_lag_txids_count") == 1
    assert reg.get_sample_value("sqlkv_read_lag_txids_sum") == owner.head_txid - min(rec.states)
    retained = reg.get_sample_value("sqlkv_history_retained_bytes")
    assert retained is not None and retained > 0
    engine.set_retention("db", 0)
    engine.compact_until_done("db")
    assert reg.get_sample_value("sqlkv_history_retained_bytes") == 0
