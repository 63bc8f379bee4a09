"""Read-only connections: a past state (``at=``) or a live reader that follows the head.

``connect_reader`` (``sqlkv.connect(name, readonly=True, at=...)``) opens the database with
``SQLITE_OPEN_READONLY``, so SQLite itself refuses every write with ``SQLITE_READONLY``
("attempt to write a readonly database"). Its ``SnapshotReader`` uses only the engine's
read-only calls: it never takes the database over and never fences the owner
(docs/read-replicas.md).

How SQLite learns that the file changed: a following reader runs with
``locking_mode=NORMAL``, so SQLite takes a SHARED lock at the start of each read transaction
and drops it at the end. On each such ``xLock(SHARED)`` the ``SnapshotFile`` refreshes (one
``changes_since``) and drops from the VFS page cache only the pages changed since its
previous txid. SQLite then compares the 16 header bytes at offset 24 of page 1 with those it
saw last and, when they differ, empties its pager cache (``pagerSharedLock``). The writer
runs in ``locking_mode=EXCLUSIVE``, where SQLite bumps the change counter (offset 24) only
once per connection, so the header alone would not change on most commits: the reader
stamps the txid's low 32 bits into the change counter, and into the version-valid-for number
at offset 92 when the stored page has the two equal, on every read of page 1. A reader
opened ``at=`` one state runs with ``locking_mode=EXCLUSIVE``: its pager cache stays valid
for ever and no lock call reaches the engine.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime

import apsw

from sqlkv.engine.api import EngineApi
from sqlkv.errors import ConfigError, SqlkvError
from sqlkv.vfs.sqlite_errors import sqlite_error
from sqlkv.vfs.v2.config import PAGE_SIZE, VfsConfig
from sqlkv.vfs.v2.connection import Connection, preload_hints
from sqlkv.vfs.v2.counters import ClientCounters
from sqlkv.vfs.v2.file import DbFile
from sqlkv.vfs.v2.reader_metrics import METRICS, ReaderMetrics
from sqlkv.vfs.v2.remote import Unreachable
from sqlkv.vfs.v2.snapshot import READONLY_MESSAGE, At, SnapshotReader, check_at
from sqlkv.vfs.v2.vfs import SqlkvVfs

CHANGE_COUNTER = slice(24, 28)
VERSION_VALID_FOR = slice(92, 96)


def stamp_page1(page: bytes, txid: int) -> bytes:
    """Page 1 with ``txid``'s low 32 bits as its change counter (and as version-valid-for
    when the stored page has both numbers equal, so SQLite keeps trusting the header's size)."""
    if len(page) < 100:
        return page
    out = bytearray(page)
    stamp = (txid & 0xFFFFFFFF).to_bytes(4, "big")
    if page[CHANGE_COUNTER] == page[VERSION_VALID_FOR]:
        out[VERSION_VALID_FOR] = stamp
    out[CHANGE_COUNTER] = stamp
    return bytes(out)


class SnapshotFile(DbFile):
    """The main database file of a read-only connection: reads at ``reader.txid``."""

    def __init__(self, reader: SnapshotReader, config: VfsConfig, preloaded: dict[int, bytes]):
        super().__init__(reader, config, preloaded)
        self.reader = reader
        self.cache.on_evict = None  # digests serve writes only
        self.following = False  # refresh at each read transaction (set once the pragmas ran)
        # cached pages a refresh dropped and no read has fetched again: hot pages, fetched
        # together at the first miss on one of them (one read_at, not one per page)
        self.stale: set[int] = set()

    def _page(self, pgno: int) -> bytes:
        page = super()._page(pgno)
        if pgno == 1 and not self.reader.pinned:
            return stamp_page1(page, self.reader.txid)
        return page

    def _plan(self, pgno: int, last: int) -> list[int]:
        wanted = super()._plan(pgno, last)
        stale = self.stale
        if pgno in stale:
            room = self.config.readahead_max_pages - len(wanted) + 1
            asked = set(wanted)
            for p in sorted(stale):
                if room <= 0 or p > last:
                    break
                if p not in asked and self._worth_fetching(p):
                    wanted.append(p)
                    room -= 1
            stale.difference_update(wanted)
        return wanted

    def xLock(self, level: int) -> None:
        self.remote.check_alive()
        if self.following and self.lock_level == apsw.SQLITE_LOCK_NONE and level:
            self._refresh()
        self.lock_level = level

    def _refresh(self) -> None:
        try:
            changed = self.reader.refresh()
        except apsw.Error:
            raise  # a rewound store: the connection is dead, and says why
        except Unreachable as exc:
            raise sqlite_error(apsw.SQLITE_IOERR_LOCK, str(exc), exc.cause) from exc.cause
        except SqlkvError as exc:
            raise sqlite_error(
                apsw.SQLITE_IOERR_LOCK, f"reading the newest state failed: {exc}", exc
            ) from exc
        if changed is None:
            self.cache.clear()
            self.stale.clear()
            self.counters.cache_drops += 1
        elif changed:
            dropped = self.cache.discard(changed)
            self.stale.update(dropped)
            self.counters.pages_invalidated += len(dropped)
            self.reader.metrics.pages_invalidated.inc(len(dropped))
        size = self.reader.size_pages
        if self.stale and max(self.stale) > size:
            self.stale = {p for p in self.stale if p <= size}
        self.cache.discard_above(size)
        self.local_size = self.low_water = size

    def _refuse(self) -> None:
        raise sqlite_error(apsw.SQLITE_READONLY, READONLY_MESSAGE)

    def xWrite(self, data: object, offset: int) -> None:
        self._refuse()

    def xTruncate(self, newsize: int) -> None:
        self._refuse()

    def xSync(self, flags: int) -> None:
        self._refuse()

    def xCheckReservedLock(self) -> bool:
        return False


class ReaderConnection(Connection):
    """A read-only ``Connection``: ``sqlkv_txid`` is the committed state it reads."""

    OPEN_FLAGS = apsw.SQLITE_OPEN_READONLY

    @property
    def sqlkv_reader(self) -> SnapshotReader:
        reader = self._sqlkv_remote
        assert isinstance(reader, SnapshotReader)
        return reader

    @property
    def sqlkv_txid(self) -> int:
        """The committed txid the current (or last) read transaction reads."""
        return self.sqlkv_reader.txid

    @property
    def sqlkv_readonly(self) -> bool:
        return True

    @property
    def sqlkv_pinned(self) -> bool:
        """Opened ``at=`` one state (True), or following the head (False)."""
        return self.sqlkv_reader.pinned


def connect_reader(
    name: str,
    engine: EngineApi,
    config: VfsConfig | None = None,
    *,
    at: At | None = None,
    metrics: ReaderMetrics | None = None,
    closers: list[Callable[[], None]] | None = None,
) -> ReaderConnection:
    """Open ``name`` read-only at ``at`` (a txid, an aware datetime, a label), or following
    the head when ``at`` is None; one round trip (two when ``at`` must be resolved).

    ``closers`` run (last first) when the connection closes, or now if opening fails.
    """
    config = config or VfsConfig()
    closers = closers if closers is not None else []
    try:
        config.validate()
        if at is not None:
            at = check_at(at)
        reader = SnapshotReader(engine, name, config, ClientCounters(), metrics or METRICS)
        try:
            snap = reader.start(at, preload_hints(config))
        except Unreachable as exc:
            raise exc.cause from exc
        if snap.head.page_size != PAGE_SIZE:
            raise ConfigError(
                f"database {name!r} has {snap.head.page_size}-byte pages; "
                f"this client uses {PAGE_SIZE}"
            )
        preloaded = {p: page for p, page in snap.pages.items() if page is not None}
        file = SnapshotFile(reader, config, preloaded)
        vfs = SqlkvVfs(file)
    except BaseException:
        while closers:
            closers.pop()()
        raise
    try:
        conn = ReaderConnection(vfs, reader, closers)
    except BaseException:
        vfs.unregister()
        while closers:
            closers.pop()()
        raise
    try:
        mode = "EXCLUSIVE" if reader.pinned else "NORMAL"
        for pragma, value in (("locking_mode", mode), ("temp_store", "MEMORY")):
            conn.execute(f"PRAGMA {pragma}={value}").fetchall()
        file.following = not reader.pinned
    except BaseException:
        conn.close()
        raise
    return conn


_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]")


def parse_at(text: str) -> At:
    """``at`` from text (URLs, the command line): digits are a txid, an ISO 8601 time with
    a UTC offset (``2026-12-02T08:00:00Z``) a time, ``label:NAME`` or anything else a label."""
    if text.isdigit():
        return int(text)
    if text.startswith("label:"):
        return check_at(text[len("label:") :])
    if _ISO.match(text):
        try:
            when = datetime.fromisoformat(text)
        except ValueError as exc:
            raise ConfigError(f"at={text!r} is not an ISO 8601 time: {exc}") from exc
        return check_at(when)
    return check_at(text)
