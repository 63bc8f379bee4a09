"""Crashes at every named store operation of the v1 format (memory store fault points).

A crash (``SimulatedCrash``, before a store operation or after a commit) kills the
process's state of the database; "reopening" is a new mount or connection over the same
MemoryStore. After it: no metadata points at a missing chunk, and SQLite rolls a hot journal
back to exactly the last committed state. ``crash_plan`` is what ``test_fault_points.py``
checks against the registry: the points of the same actions the tests crash.
"""

from __future__ import annotations

import contextlib
import functools
import random
from collections.abc import Callable, Iterator

import apsw
import pytest
from crash_support import crash, plan_of

from sqlkv.store import MemoryStore
from sqlkv.store.faults import CrashPoint, SimulatedCrash
from sqlkv.vfs.v1 import connect_v1
from sqlkv.vfs.v1.check import check, inspect
from sqlkv.vfs.v1.file import V1File
from sqlkv.vfs.v1.keys import CHUNK_SIZE
from sqlkv.vfs.v1.vfs import Mount, get_vfs
from sqlkv.workloads import dump, integrity_ok

FileOpener = Callable[..., V1File]
C = CHUNK_SIZE
ORIGINAL = 10 * C + 123
BODY = random.Random(11).randbytes(ORIGINAL)


def _crash(store: MemoryStore, point: CrashPoint, action: Callable[[], object]) -> None:
    """Run ``action`` with a crash armed at ``point``; it must end in that crash.

    Through SQLite the crash may surface as the I/O error of a later VFS call of the same
    statement (the dead connection refuses it), with the crash as its context.
    """
    exc: BaseException | None = crash(store, point, action)
    first = exc
    while exc is not None and not isinstance(exc, SimulatedCrash):
        assert isinstance(exc, apsw.Error), exc
        exc = exc.__context__
    assert exc is not None, f"{point}: {first!r} was not caused by the crash"


def _close_dead(conn: apsw.Connection) -> None:
    """Close a connection whose process crashed; SQLite's cleanup may report the I/O error."""
    with contextlib.suppress(apsw.Error):
        conn.close()
    with pytest.raises(apsw.ConnectionClosedError):
        conn.execute("SELECT 1")


# --------------------------------------------------------------------------- files


@contextlib.contextmanager
def _files() -> Iterator[FileOpener]:
    """What the ``open_file`` fixture gives, outside a test (for ``crash_plan``)."""
    opened: list[tuple[Mount, V1File]] = []
    vfs = get_vfs()

    def opener(store: MemoryStore, name: str = "t") -> V1File:
        mount = vfs.mount(store, name, cache_chunks=64)
        flags = apsw.SQLITE_OPEN_READWRITE | apsw.SQLITE_OPEN_CREATE | apsw.SQLITE_OPEN_MAIN_DB
        file = vfs.xOpen(mount.path, [flags, 0])
        assert isinstance(file, V1File)
        opened.append((mount, file))
        return file

    try:
        yield opener
    finally:
        for mount, file in reversed(opened):
            file.xClose()
            mount.close()


def _stored_file(open_file: FileOpener) -> tuple[MemoryStore, dict[bytes, bytes]]:
    store = MemoryStore()
    f = open_file(store)
    f.xWrite(BODY, 0)
    f.xClose()
    return store, store.snapshot_state()


def _truncate_plan(open_file: FileOpener, size: int, warm: bool) -> list[CrashPoint]:
    store, _ = _stored_file(open_file)
    f = open_file(store)
    if warm:
        f.xRead(ORIGINAL, 0)
    return plan_of(store, lambda: f.xTruncate(size))


def _delete_plan(open_file: FileOpener) -> list[CrashPoint]:
    store, _ = _stored_file(open_file)
    f = open_file(store)
    return plan_of(store, lambda: get_vfs().xDelete(f.mount.path, False))


def _patch_plan(open_file: FileOpener) -> list[CrashPoint]:
    """A write into the middle of chunks a cold file has not read (merged, not covered)."""
    store, _ = _stored_file(open_file)
    f = open_file(store)
    return plan_of(store, lambda: f.xWrite(PATCH, PATCH_AT))


SIZES = [0, C, 3 * C, 2 * C + 777]
PATCH, PATCH_AT = b"patched across a chunk boundary", 2 * C - 9


@pytest.mark.parametrize("warm", [True, False], ids=["warm", "cold"])
@pytest.mark.parametrize("size", SIZES, ids=["zero", "one", "multiple", "inside"])
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

    points = _truncate_plan(open_file, size, warm)
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


def test_crash_anywhere_in_a_partial_write_leaves_the_old_or_the_new_bytes(
    open_file: FileOpener,
) -> None:
    store, base = _stored_file(open_file)
    patched = BODY[:PATCH_AT] + PATCH + BODY[PATCH_AT + len(PATCH) :]
    points = _patch_plan(open_file)
    assert "v1.write.read_chunks" in {p.point for p in points}
    seen = set()
    for point in points:
        store.restore_state(base)
        f = open_file(store)
        _crash(store, point, functools.partial(f.xWrite, PATCH, PATCH_AT))
        f.xClose()
        assert check(store, "t") == [], point
        g = open_file(store)
        now = g.xRead(ORIGINAL, 0)
        g.xClose()  # the next round starts cold again
        assert now in (BODY, patched), point
        seen.add(now == patched)
    assert seen == {False, True}


def test_crash_anywhere_in_delete_leaves_the_file_whole_or_gone(open_file: FileOpener) -> None:
    store, base = _stored_file(open_file)
    vfs = get_vfs()

    def prepared() -> V1File:
        store.restore_state(base)
        return open_file(store)

    points = _delete_plan(open_file)
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


def _crash_transaction(store: MemoryStore, statements: list[str], point: CrashPoint) -> None:
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
    points = plan_of(store, lambda: _run(conn, statements))
    after = dump(conn)
    conn.close()
    assert before != after and len(points) > 20
    flags = []
    for point in points:
        store.restore_state(base)
        _crash_transaction(store, statements, point)
        state = _reopen_state(store)
        assert state in (before, after), point
        flags.append(state == after)
    # One switch point, in operation order: before until the commit point, after from it.
    assert flags == sorted(flags) and flags[0] is False and flags[-1] is True


HotJournal = tuple[MemoryStore, dict[bytes, bytes], str, Callable[[], None], list[apsw.Connection]]


def _hot_journal() -> HotJournal:
    """A store left with a hot journal by a crash (its state, the dump before the crashed
    transaction); ``recover`` opens it (into ``opened``)."""
    statements = TRANSACTIONS["update_insert_delete"]
    store, base, before = _database()
    conn = connect_v1("db", store)
    points = plan_of(store, lambda: _run(conn, statements))
    conn.close()
    store.restore_state(base)
    _crash_transaction(store, statements, points[len(points) * 3 // 4])
    hot = store.snapshot_state()
    assert "journal" in inspect(store, "db")
    opened: list[apsw.Connection] = []

    def recover() -> None:
        opened.append(connect_v1("db", store))
        integrity_ok(opened[-1])

    return store, hot, before, recover, opened


def test_crash_during_hot_journal_recovery_recovers_on_the_next_open() -> None:
    store, hot, before, recover, opened = _hot_journal()
    recovery = plan_of(store, recover)
    opened.pop().close()
    for point in recovery:
        store.restore_state(hot)
        _crash(store, point, recover)
        for conn in opened:
            _close_dead(conn)
        opened.clear()
        assert check(store, "db") == [], point
        assert _reopen_state(store) == before, point


def crash_plan() -> set[str]:
    """Every fault point this suite crashes at (``test_fault_points.py``)."""
    points: list[CrashPoint] = []
    with _files() as open_file:
        for size in SIZES:
            for warm in (True, False):
                points += _truncate_plan(open_file, size, warm)
        points += _delete_plan(open_file)
        points += _patch_plan(open_file)
    for statements in TRANSACTIONS.values():
        store, _, _ = _database()
        conn = connect_v1("db", store)
        points += plan_of(store, lambda: _run(conn, statements))  # noqa: B023 - runs now
        conn.close()
    store, _, _, recover, opened = _hot_journal()
    points += plan_of(store, recover)
    opened.pop().close()
    return {p.point for p in points}
