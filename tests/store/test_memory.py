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
