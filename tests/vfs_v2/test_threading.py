"""The threading model of docs/vfs.md: a connection's VFS objects are used by one thread at a
time (apsw refuses a concurrent call rather than queue it), and the compaction threads never
call into the VFS."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import apsw
import pytest
from vfs_support import Opener, integrity, rows

from sqlkv.vfs.v2 import Connection

METHODS = ("xRead", "xWrite", "xTruncate", "xSync", "xFileSize", "xLock", "xUnlock")


class Watch:
    """Wraps the ``DbFile`` methods of one connection: which threads call them, and the
    largest number of calls in flight at once."""

    def __init__(self, conn: Connection) -> None:
        self.threads: set[str] = set()
        self.in_flight = 0
        self.most_in_flight = 0
        self._lock = threading.Lock()
        file = conn.sqlkv_file
        for name in METHODS:
            setattr(file, name, self._wrap(getattr(file, name)))

    def _wrap(self, method: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any) -> Any:
            with self._lock:
                self.threads.add(threading.current_thread().name)
                self.in_flight += 1
                self.most_in_flight = max(self.most_in_flight, self.in_flight)
            try:
                return method(*args)
            finally:
                with self._lock:
                    self.in_flight -= 1

        return call


def test_a_call_from_a_second_thread_during_a_commit_is_refused(open_mem: Opener) -> None:
    conn = open_mem()
    conn.execute("CREATE TABLE t(x)")
    file = conn.sqlkv_file
    inside, release = threading.Event(), threading.Event()
    sync = file.xSync

    def slow_sync(flags: int) -> None:
        inside.set()
        assert release.wait(10)
        sync(flags)

    file.xSync = slow_sync  # type: ignore[method-assign]
    writer = threading.Thread(target=lambda: conn.execute("INSERT INTO t VALUES (1)"))
    writer.start()
    try:
        assert inside.wait(10)
        with pytest.raises(apsw.ThreadingViolationError):
            conn.execute("SELECT count(*) FROM t").fetchall()
    finally:
        release.set()
        writer.join(10)
    assert rows(conn, "SELECT count(*) FROM t") == [(1,)]


def test_threads_sharing_a_connection_never_overlap_in_the_vfs(open_mem: Opener) -> None:
    conn = open_mem(cache_size="64 pages")
    conn.execute("PRAGMA cache_size=20")  # small pager cache: reads reach the VFS
    conn.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)")
    watch = Watch(conn)
    inserted = [0, 0, 0]

    def work(k: int) -> None:
        for _ in range(40):
            try:
                conn.execute("INSERT INTO t(v) VALUES (randomblob(2000))")
                inserted[k] += 1
                conn.execute("SELECT sum(length(v)) FROM t WHERE id % 3 = ?", (k,)).fetchall()
            except apsw.ThreadingViolationError:
                pass  # the connection was busy in another thread: refused, not queued

    threads = [threading.Thread(target=work, args=(k,), name=f"user-{k}") for k in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)

    assert watch.most_in_flight == 1
    assert rows(conn, "SELECT count(*) FROM t") == [(sum(inserted),)]
    assert integrity(conn) == "ok"
    assert not [name for name in watch.threads if name.startswith("sqlkv-compact")]


def test_compaction_threads_run_without_touching_the_vfs(open_mem: Opener) -> None:
    conn = open_mem()
    watch = Watch(conn)
    conn.execute("CREATE TABLE t(v)")
    for _ in range(40):  # 40 commits: past the 16-delta threshold that wakes compaction
        conn.execute("INSERT INTO t VALUES (randomblob(3000))")
    engine = conn.sqlkv_file.remote.engine
    compactor = getattr(engine, "compactor", None)
    assert compactor is not None and compactor.wait_idle(30)
    assert conn.sqlkv_head().materialized_txid > 1  # compaction did run
    assert watch.threads == {threading.current_thread().name}
    assert rows(conn, "SELECT count(*) FROM t") == [(40,)]
