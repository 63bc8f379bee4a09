"""Crashes at every store operation of the v1 format (memory store fault injection).

A crash (``SimulatedCrash``, before or after a commit point) kills the process's state
of the database; "reopening" is a new mount or connection over the same MemoryStore.
After it: no metadata points at a missing chunk, and SQLite rolls a hot journal back to
exactly the last committed state.
"""

from __future__ import annotations

import contextlib
import functools
import random
from collections.abc import Callable

import apsw
import pytest

from sqlkv.errors import SimulatedCrash
from sqlkv.store import MemoryStore
from sqlkv.vfs.v1 import connect_v1
from sqlkv.vfs.v1.check import check, inspect
from sqlkv.vfs.v1.file import V1File
from sqlkv.vfs.v1.keys import CHUNK_SIZE
from sqlkv.vfs.v1.vfs import get_vfs
from sqlkv.workloads import dump, integrity_ok

FileOpener = Callable[..., V1File]
C = CHUNK_SIZE
ORIGINAL = 10 * C + 123
BODY = random.Random(11).randbytes(ORIGINAL)


def _crash_points(store: MemoryStore, action: Callable[[], object]) -> list[tuple[int, bool]]:
    """(n, after_commit) for every store operation ``action`` performs; it runs once here."""
    store.record_ops, store.ops = True, []
    action()
    ops = [op.op for op in store.ops]
    store.record_ops = False
    points = [(n, False) for n in range(1, len(ops) + 1)]
    points += [(n, True) for n, op in enumerate(ops, 1) if op == "commit"]
    return points


def _crash(store: MemoryStore, point: tuple[int, bool], action: Callable[[], object]) -> None:
    """Run ``action`` with a crash armed at ``point``; it must end in that crash.

    Through SQLite the crash may surface as the I/O error of a later VFS call of the same
    statement (the dead connection refuses it), with the crash as its context.
    """
    fired = len(store.faults.fired)
    store.faults.crash_nth(point[0], after_commit=point[1])
    try:
        with pytest.raises(BaseException) as info:
            action()
    finally:
        store.faults.clear()
    assert len(store.faults.fired) == fired + 1, point
    exc: BaseException | None = info.value
    while exc is not None and not isinstance(exc, SimulatedCrash):
        assert isinstance(exc, apsw.Error), exc
        exc = exc.__context__
    assert exc is not None, f"{point}: {info.value!r} was not caused by the crash"


def _close_dead(conn: apsw.Connection) -> None:
    """Close a connection whose process crashed; SQLite's cleanup may report the I/O error."""
    with contextlib.suppress(apsw.Error):
        conn.close()
    with pytest.raises(apsw.ConnectionClosedError):
        conn.execute("SELECT 1")


# --------------------------------------------------------------------------- files


def _stored_file(open_file: FileOpener) -> tuple[MemoryStore, dict[bytes, bytes]]:
    store = MemoryStore()
    f = open_file(store)
    f.xWrite(BODY, 0)
    f.xClose()
    return store, store.snapshot_state()


@pytest.mark.parametrize("warm", [True, False], ids=["warm", "cold"])
@pytest.mark.parametrize(
    "size", [0, C, 3 * C, 2 * C + 777], ids=["zero", "one", "multiple", "inside"]
)
def test_crash_anywhere_in_truncate_keeps_metadata_on_existing_chunks(
    open_file: FileOpener, size: int, warm: bool
) -> None:
    store, base = _stored_file(open_file)

    def prepared() -> V1File:
        store.restore_state(base)
        f = open_file(store)
        if warm:
            f.xRead(ORIGINAL, 0)
        return f

    f = prepared()
    points = _crash_points(store, lambda: f.xTruncate(size))
    f.xClose()
    assert len(points) >= 3
    for point in points:
        f = prepared()
        _crash(store, point, functools.partial(f.xTruncate, size))
        ops = store.op_count
        with pytest.raises(apsw.IOError):
            f.xRead(10, 0)  # the crashed process's connection is dead ...
        f.xClose()
        assert store.op_count == ops  # ... and touches the store no more
        assert check(store, "t") == [], point
        g = open_file(store)
        now = g.xFileSize()
        assert now in (size, ORIGINAL), point
        assert g.xRead(ORIGINAL, 0) == BODY[:now], point
        g.xTruncate(size)  # finishing the truncate cleans up what the crash left
        report = inspect(store, "t")["db"]
        assert report.content() == BODY[:size] and report.orphans == [], point
        g.xClose()


def test_crash_anywhere_in_delete_leaves_the_file_whole_or_gone(open_file: FileOpener) -> None:
    store, base = _stored_file(open_file)
    vfs = get_vfs()

    def prepared() -> V1File:
        store.restore_state(base)
        return open_file(store)

    f = prepared()
    points = _crash_points(store, lambda: vfs.xDelete(f.mount.path, False))
    f.xClose()
    assert len(points) >= 2
    outcomes = set()
    for point in points:
        f = prepared()
        _crash(store, point, functools.partial(vfs.xDelete, f.mount.path, False))
        f.xClose()
        assert check(store, "t") == [], point
        g = open_file(store)
        if vfs.xAccess(g.mount.path, 0):
            outcomes.add("whole")
            assert g.xRead(ORIGINAL, 0) == BODY, point
        else:
            outcomes.add("gone")
            assert g.xFileSize() == 0, point
            g.xWrite(b"new", 0)  # orphaned chunks never show through a new file
            assert g.xRead(ORIGINAL, 0) == b"new"
            g.file.invalidate()
            assert g.xRead(ORIGINAL, 0) == b"new"
        vfs.xDelete(g.mount.path, False)
        assert store.dump() == {}, "the next delete removes the orphans"
        g.xClose()
    assert outcomes == {"whole", "gone"}


# --------------------------------------------------------------------------- SQLite


def _database() -> tuple[MemoryStore, dict[bytes, bytes], str]:
    store = MemoryStore()
    conn = connect_v1("db", store)
    with conn:
        conn.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT NOT NULL)")
        conn.execute("CREATE INDEX t_v ON t(v)")
        r = random.Random(5)
        conn.executemany(
            "INSERT INTO t(v) VALUES (?)", [(r.randbytes(100).hex(),) for _ in range(150)]
        )
    text = dump(conn)
    conn.close()
    return store, store.snapshot_state(), text


TRANSACTIONS = {
    "update_insert_delete": [
        "BEGIN",
        "UPDATE t SET v = upper(v) WHERE id % 3 = 0",
        "INSERT INTO t(v) SELECT v || 'x' FROM t WHERE id <= 60",
        "DELETE FROM t WHERE id % 7 = 0",
        "COMMIT",
    ],
    "delete_vacuum": ["DELETE FROM t WHERE id > 20", "VACUUM"],
}


def _run(conn: apsw.Connection, statements: list[str]) -> None:
    for sql in statements:
        conn.execute(sql)


def _reopen_state(store: MemoryStore) -> str:
    """Open a new connection (recovering a hot journal), check it and return its dump."""
    conn = connect_v1("db", store)
    try:
        assert integrity_ok(conn)
        text: str = dump(conn)
    finally:
        conn.close()
    assert check(store, "db") == []
    files = inspect(store, "db")
    journal = files.get("journal")
    if journal is not None and journal.size is not None:
        # SQLite leaves a journal whose header was never written: it is not hot.
        assert (journal.content() or b"\0")[:1] == b"\0", "a hot journal survived"
    return text


def _crash_transaction(store: MemoryStore, statements: list[str], point: tuple[int, bool]) -> None:
    conn = connect_v1("db", store)
    _crash(store, point, lambda: _run(conn, statements))
    ops = store.op_count
    _close_dead(conn)  # SQLite tries to roll back: the dead connection refuses it
    assert store.op_count == ops
    assert check(store, "db") == [], point


@pytest.mark.parametrize("txn", list(TRANSACTIONS))
def test_crash_anywhere_in_a_transaction_reopens_at_before_or_after(txn: str) -> None:
    statements = TRANSACTIONS[txn]
    store, base, before = _database()
    conn = connect_v1("db", store)
    points = _crash_points(store, lambda: _run(conn, statements))
    after = dump(conn)
    conn.close()
    assert before != after and len(points) > 20
    outcomes = []
    for point in points:
        store.restore_state(base)
        _crash_transaction(store, statements, point)
        state = _reopen_state(store)
        assert state in (before, after), point
        outcomes.append((point[0], state == after))
    # One switch point, in operation order: before until the commit point, after from it.
    flags = [done for _, done in sorted(outcomes)]
    assert flags == sorted(flags) and flags[0] is False and flags[-1] is True


def test_crash_during_hot_journal_recovery_recovers_on_the_next_open() -> None:
    statements = TRANSACTIONS["update_insert_delete"]
    store, base, before = _database()
    conn = connect_v1("db", store)
    points = _crash_points(store, lambda: _run(conn, statements))
    conn.close()
    store.restore_state(base)
    _crash_transaction(store, statements, points[len(points) * 3 // 4])
    hot = store.snapshot_state()
    assert "journal" in inspect(store, "db")
    opened: list[apsw.Connection] = []

    def recover() -> None:
        opened.append(connect_v1("db", store))
        integrity_ok(opened[-1])

    recovery = _crash_points(store, recover)
    opened.pop().close()
    for point in recovery:
        store.restore_state(hot)
        _crash(store, point, recover)
        for conn in opened:
            _close_dead(conn)
        opened.clear()
        assert check(store, "db") == [], point
        assert _reopen_state(store) == before, point
