"""The main database file: write buffer, page cache, read-ahead, one commit per transaction.

Sizes are in pages of ``PAGE_SIZE``; page ``p`` covers bytes ``(p-1)*4096 .. p*4096``.

- ``local_size``: the file size SQLite sees (buffered growth and truncation included);
- ``remote.size_pages``: the size the engine has committed;
- ``low_water``: the smallest ``local_size`` since the last commit. A page above it that is
  not in the buffer was truncated away in this transaction (or never existed): it reads as
  zeros, and if the file regrows over it the commit sends it as zeros.

Reads: buffer, then zeros for pages past ``min(low_water, remote.size_pages)`` (never
fetched), then the page cache, then one ``get_pages`` for the miss plus the read-ahead window.

Writes go to the buffer; a full-page write never fetches. SQLite truncates a shrinking
database (VACUUM) after the commit's xSync; that truncation is sent at once as a size-only
commit, so the engine frees the pages now, not at some later commit. ``xSync`` is the commit point
(docs/design.md §5): the buffer is sent as one commit, minus pages identical to their committed
copy (a ROLLBACK after a cache spill writes the original pages back, then syncs). Whether a
page is unchanged is decided from the cached copy when there is one, else from a 16-byte
digest of the committed copy, made when the page left the cache (16 bytes per page of the
database, kept for every page this connection has seen). The digest is XXH3-128 with a
secret per-connection seed (0.2 us a page, where SHA-256 took 20 us and was 12% of a scan
larger than the cache): a changed page would be taken for unchanged only on a 128-bit
collision, which content cannot be crafted for without the seed.
"""

from __future__ import annotations

import os
from typing import Any

import apsw
from xxhash import xxh3_128_digest

from sqlkv.errors import QuotaExceeded, SqlkvError
from sqlkv.ltx import lock_pgno
from sqlkv.vfs.sqlite_errors import sqlite_error
from sqlkv.vfs.v2.cache import PageCache
from sqlkv.vfs.v2.config import PAGE_SIZE, VfsConfig
from sqlkv.vfs.v2.learn import FirstReads
from sqlkv.vfs.v2.readahead import ReadAhead
from sqlkv.vfs.v2.remote import RemoteDb, Unreachable

ZERO_PAGE = bytes(PAGE_SIZE)
DIGEST_SIZE = 16
_NO_DIGEST = bytes(DIGEST_SIZE)  # "unknown"
LOCK_PAGE = lock_pgno(PAGE_SIZE)


class Digests:
    """A digest per page number of the committed copy this connection last saw, for pages
    that left the cache (a cached page is compared byte for byte). All zeros: unknown."""

    def __init__(self) -> None:
        self._data = bytearray()
        self._seed = int.from_bytes(os.urandom(8), "big")

    def _digest(self, page: bytes) -> bytes:
        return xxh3_128_digest(page, self._seed)

    def set(self, pgno: int, page: bytes) -> None:
        end = pgno * DIGEST_SIZE
        if len(self._data) < end:
            self._data.extend(bytes(end - len(self._data)))
        self._data[end - DIGEST_SIZE : end] = self._digest(page)

    def matches(self, pgno: int, page: bytes) -> bool:
        end = pgno * DIGEST_SIZE
        if len(self._data) < end:
            return False
        known = self._data[end - DIGEST_SIZE : end]
        return known != _NO_DIGEST and known == self._digest(page)

    def forget(self, pgno: int) -> None:
        end = pgno * DIGEST_SIZE
        if len(self._data) >= end:
            self._data[end - DIGEST_SIZE : end] = _NO_DIGEST

    def truncate(self, size_pages: int) -> None:
        del self._data[size_pages * DIGEST_SIZE :]


class DbFile:
    """apsw calls these ``VFSFile`` methods for the main database file."""

    def __init__(self, remote: RemoteDb, config: VfsConfig, preloaded: dict[int, bytes]):
        self.remote = remote
        self.config = config
        self.counters = remote.counters
        self.digests = Digests()
        self.cache = PageCache(config.cache_bytes, PAGE_SIZE, on_evict=self.digests.set)
        self.readahead = ReadAhead(config.readahead_max_pages)
        self.buffer: dict[int, bytes] = {}
        self.local_size = remote.size_pages
        self.low_water = remote.size_pages
        self.lock_level = 0
        for pgno, page in sorted(preloaded.items()):
            self._known_committed(pgno, page)
        self.preloaded = frozenset(preloaded)
        self.first_reads = FirstReads(config.preload_bytes // PAGE_SIZE)

    # ------------------------------------------------------------------ pages

    def _known_committed(self, pgno: int, page: bytes) -> None:
        self.digests.forget(pgno)  # the cache has it now; the digest is made at eviction
        self.cache.put(pgno, page)

    def _fetchable(self, pgno: int) -> bool:
        """Whether the engine holds a page this transaction has not replaced or cut off."""
        return pgno <= self.low_water and pgno <= self.remote.size_pages and pgno != LOCK_PAGE

    def _worth_fetching(self, pgno: int) -> bool:
        return pgno != LOCK_PAGE and pgno not in self.cache and pgno not in self.buffer

    def _page(self, pgno: int) -> bytes:
        page = self.buffer.get(pgno)
        if page is not None:
            self.counters.buffer_hits += 1
            return page
        if not self._fetchable(pgno) or pgno > self.local_size:
            self.counters.zero_reads += 1
            return ZERO_PAGE
        page = self.cache.get(pgno)
        if page is not None:
            self.counters.cache_hits += 1
            return page
        self.counters.cache_misses += 1
        return self._fetch(pgno)

    def _fetch(self, pgno: int) -> bytes:
        wanted = self._plan(pgno, min(self.low_water, self.remote.size_pages))
        try:
            got = self.remote.get_pages(wanted)
        except apsw.Error:
            raise  # already what SQLite should see (a fenced connection)
        except Unreachable as exc:
            raise sqlite_error(apsw.SQLITE_IOERR_READ, str(exc), exc.cause) from exc.cause
        except SqlkvError as exc:
            raise sqlite_error(
                apsw.SQLITE_IOERR_READ, f"reading page {pgno} failed: {exc}", exc
            ) from exc
        self.counters.readahead_pages += len(wanted) - 1
        for p in wanted[1:]:
            data = got.get(p)
            if data is not None:
                self._known_committed(p, data)
        page = got.get(pgno)
        if page is None:  # the engine says it is past the end: it reads as zeros
            page = ZERO_PAGE
        self._known_committed(pgno, page)
        return page

    def _plan(self, pgno: int, last: int) -> list[int]:
        """Pages to fetch for a miss on ``pgno`` (itself first), none past ``last``."""
        cached, buffered = self.cache.numbers(), self.buffer

        def worth_fetching(p: int) -> bool:  # _worth_fetching, without a call per test
            return p != LOCK_PAGE and p not in cached and p not in buffered

        return self.readahead.plan(pgno, worth_fetching, last)

    # ------------------------------------------------------------------ VFSFile

    def xRead(self, amount: int, offset: int) -> bytes:
        self.remote.check_alive()
        first = offset // PAGE_SIZE + 1
        start = offset % PAGE_SIZE
        if start + amount <= PAGE_SIZE:
            page = self._page(first)
            learning = self.first_reads
            if learning.open and first not in learning.pages:
                learning.note(first, page)
            return page if amount == PAGE_SIZE else page[start : start + amount]
        out = bytearray()
        pgno = first
        while len(out) < amount:
            take = min(PAGE_SIZE - start, amount - len(out))
            out += self._page(pgno)[start : start + take]
            pgno, start = pgno + 1, 0
        return bytes(out)

    def xWrite(self, data: Any, offset: int) -> None:
        self.remote.check_alive()
        data = bytes(data)
        pgno = offset // PAGE_SIZE + 1
        start = offset % PAGE_SIZE
        if start == 0 and len(data) == PAGE_SIZE:
            self.buffer[pgno] = data
            self.local_size = max(self.local_size, pgno)
            return
        pos = 0
        while pos < len(data):
            take = min(PAGE_SIZE - start, len(data) - pos)
            if start == 0 and take == PAGE_SIZE:
                self.buffer[pgno] = data[pos : pos + take]
            else:  # a partial write: fetches only a page that exists
                page = bytearray(self._page(pgno))
                page[start : start + take] = data[pos : pos + take]
                self.buffer[pgno] = bytes(page)
            self.local_size = max(self.local_size, pgno)
            pos += take
            pgno, start = pgno + 1, 0

    def xTruncate(self, newsize: int) -> None:
        self.remote.check_alive()
        pages = -(-newsize // PAGE_SIZE)
        if pages * PAGE_SIZE != newsize:
            raise sqlite_error(
                apsw.SQLITE_IOERR_TRUNCATE,
                f"truncate to {newsize} bytes is not a whole number of {PAGE_SIZE}-byte pages",
            )
        shrink_after_commit = not self.buffer and pages < self.remote.size_pages
        for pgno in [p for p in self.buffer if p > pages]:
            del self.buffer[pgno]
        self.local_size = pages
        self.low_water = min(self.low_water, pages)
        if shrink_after_commit:
            # SQLite cuts the file after the commit's xSync (VACUUM): the shrink is part of
            # the transaction that just committed, so send it now rather than with the
            # next commit (which may never come) - one size-only commit
            self.commit()

    def xSync(self, flags: int) -> None:
        self.remote.check_alive()
        self.commit()

    def xFileSize(self) -> int:
        self.remote.check_alive()
        return self.local_size * PAGE_SIZE

    def xLock(self, level: int) -> None:
        self.remote.check_alive()
        self.lock_level = level

    def xUnlock(self, level: int) -> None:
        self.lock_level = level

    def xCheckReservedLock(self) -> bool:
        return self.lock_level >= apsw.SQLITE_LOCK_RESERVED

    def xFileControl(self, op: int, ptr: int) -> bool:
        return False

    def xSectorSize(self) -> int:
        return PAGE_SIZE

    def xDeviceCharacteristics(self) -> int:
        return int(apsw.SQLITE_IOCAP_POWERSAFE_OVERWRITE | apsw.SQLITE_IOCAP_SAFE_APPEND)

    def xClose(self) -> None:
        self.buffer.clear()
        self.cache.clear()

    # ------------------------------------------------------------------ commit

    def pending(self) -> tuple[dict[int, bytes], int]:
        """The delta the buffer amounts to: changed pages, plus zeros over truncated ranges."""
        committed = self.remote.size_pages
        size = self.local_size
        delta: dict[int, bytes] = {}
        for pgno, page in self.buffer.items():
            if pgno > size or pgno == LOCK_PAGE:
                continue
            if pgno <= committed and self._unchanged(pgno, page):
                self.counters.unchanged_pages_dropped += 1
                continue
            delta[pgno] = page
        # regrown over a range cut off earlier in this transaction: the engine still holds
        # the old pages there, and they must read as zeros
        for pgno in range(self.low_water + 1, min(committed, size) + 1):
            if pgno not in self.buffer and pgno != LOCK_PAGE:
                delta[pgno] = ZERO_PAGE
        return delta, size

    def _unchanged(self, pgno: int, page: bytes) -> bool:
        cached = self.cache.peek(pgno)
        if cached is not None:
            return cached == page
        return self.digests.matches(pgno, page)

    def commit(self) -> None:
        delta, size = self.pending()
        if not delta and size == self.remote.size_pages:
            self.counters.empty_syncs += 1
            self._reset_transaction()
            return
        try:
            self.remote.commit(delta, size)
        except BaseException as exc:
            # the engine's commit is atomic: whatever failed, the file is its committed state
            # again, which is also what SQLite's rollback restores
            self.buffer.clear()
            self.local_size = self.low_water = self.remote.size_pages
            if isinstance(exc, apsw.Error):
                raise
            if isinstance(exc, QuotaExceeded):
                raise sqlite_error(apsw.SQLITE_FULL, str(exc), exc) from exc
            if isinstance(exc, SqlkvError):
                raise sqlite_error(apsw.SQLITE_IOERR_FSYNC, f"commit failed: {exc}", exc) from exc
            raise
        self.cache.discard_above(size)
        self.digests.truncate(size)
        for pgno, page in delta.items():
            self._known_committed(pgno, page)
        self._reset_transaction()

    def _reset_transaction(self) -> None:
        self.buffer.clear()
        self.low_water = self.local_size
