"""The memory driver's own tools: snapshot and restore of the whole store."""

from __future__ import annotations

import pytest

from sqlkv.errors import ConflictError
from sqlkv.store import MemoryStore


def test_restore_state_keeps_open_snapshots_point_in_time() -> None:
    store = MemoryStore()
    store.transact(lambda tr: tr.set(b"a", b"1"))
    saved = store.snapshot_state()
    store.transact(lambda tr: tr.set(b"b", b"2"))
    reader = store.begin()
    assert reader.get(b"b", snapshot=True) == b"2"
    store.restore_state(saved)
    # The open snapshot still reads the store as it was when it began...
    assert reader.get_range(b"", b"z", snapshot=True) == [(b"a", b"1"), (b"b", b"2")]
    # ...and a serializable read of anything makes its commit conflict.
    reader.get(b"a")
    reader.set(b"c", b"3")
    with pytest.raises(ConflictError):
        reader.commit()
    assert store.dump() == {b"a": b"1"}
    assert store.transact(lambda tr: tr.get_range(b"", b"z")) == [(b"a", b"1")]


def test_versions_are_kept_while_a_snapshot_reads_them_and_pruned_after() -> None:
    store = MemoryStore()
    store.transact(lambda tr: tr.set(b"k", b"0"))
    old = store.begin()
    assert old.get(b"k", snapshot=True) == b"0"
    for i in range(1, 200):
        store.transact(lambda tr, i=i: tr.set(b"k", b"%d" % i))
        store.transact(lambda tr, i=i: tr.clear(b"gone%d" % i))
    newer = store.begin()
    assert newer.get(b"k", snapshot=True) == b"199"
    store.transact(lambda tr: tr.set(b"k", b"last"))
    assert old.get(b"k", snapshot=True) == b"0"
    assert old.get_range(b"", b"z", snapshot=True) == [(b"k", b"0")]
    assert newer.get(b"k", snapshot=True) == b"199"
    old.close()
    store.transact(lambda tr: tr.set(b"x", b"1"))
    assert newer.get(b"k", snapshot=True) == b"199"
    newer.close()
    store.transact(lambda tr: tr.set(b"x", b"2"))
    # Pruned (a commit prunes while its own snapshot is still open: x keeps both).
    assert {k: len(h) for k, h in store._hist.items()} == {b"k": 1, b"x": 2}
    assert len(store._log) == 1
