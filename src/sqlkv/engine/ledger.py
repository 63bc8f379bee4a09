"""The ledger: the one writer of a database's keys, and the one home of ``storage_used``.

Every engine operation that writes (open, commit, stage, finalize, compaction) gets a
``Ledger`` instead of the store transaction. Its write methods are the only code of the
engine that sets or clears keys, and each one adds the change in stored bytes (key + value
lengths, as the store counts them) to ``delta``. Values are written as stored: sealed
(``seal.seal``, or ``put_blob``'s chunks with their count), so the bytes counted are the
sealed sizes. ``write_head`` writes META last, with
``storage_used`` = the old head's + ``delta`` (+ META itself when it is new), after the quota
check; ``Head`` validates its invariants when it is built. A key written without its term in
``storage_used`` would need a write that is not here.

What a write replaces is stated by the caller from what it read or knows for sure (a row
read in this transaction, a manifest's or directory row's recorded size, the PIDX map);
``tests/engine/test_accounting.py`` compares the result with a scan of the stored bytes
after every step of every engine path. docs/accounting.md has the rules.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from sqlkv.engine.blobs import blob_rows
from sqlkv.engine.head import Head
from sqlkv.engine.keys import DbKeys
from sqlkv.engine.seal import CHUNK_OVERHEAD, seal_chunk
from sqlkv.errors import DatabaseNotFound, QuotaExceeded
from sqlkv.store import Limits, Transaction
from sqlkv.store.ranges import RangeRead

Rows = list[tuple[bytes, bytes]]


class StoreReader(Protocol):
    """The reads of a store transaction (``Transaction`` and ``Ledger`` both offer them)."""

    def get(self, key: bytes, *, snapshot: bool = ..., point: str = ...) -> bytes | None: ...

    def get_many(
        self, keys: Sequence[bytes], *, snapshot: bool = ..., point: str = ...
    ) -> list[bytes | None]: ...

    def get_range(
        self,
        begin: bytes,
        end: bytes,
        *,
        limit: int = ...,
        reverse: bool = ...,
        snapshot: bool = ...,
        point: str = ...,
    ) -> Rows: ...

    def get_ranges(
        self, ranges: Sequence[RangeRead], *, snapshot: bool = ..., point: str = ...
    ) -> list[Rows]: ...


def row_bytes(rows: Rows) -> int:
    """Bytes ``rows`` occupy in the store (keys and values)."""
    return sum(len(k) + len(v) for k, v in rows)


class Ledger:
    """The writes of one engine operation on one database, with their exact size.

    The operation reads META first (``read_head``): ``write_head`` counts from that head.
    """

    def __init__(self, tr: Transaction, db: str, keys: DbKeys) -> None:
        self._tr = tr
        self.db = db
        self.keys = keys
        self.head: Head | None = None
        """META as read in this transaction (None: absent, the database is being created)."""
        self.delta = 0
        """Bytes added (negative: freed) by the writes so far."""
        self.written: tuple[Head, bytes] | None = None
        """META as ``write_head`` wrote it, and its bytes (what a later commit may guard)."""
        # The transaction's reads, as they are (the ledger only guards the writes).
        self.get = tr.get
        self.get_many = tr.get_many
        self.get_range = tr.get_range
        self.get_ranges = tr.get_ranges

    # ------------------------------------------------------------------ reads

    def read_head(self) -> Head:
        """META, read serializably (any concurrent writer of META makes one of us retry)."""
        head = self.read_head_if_any()
        if head is None:
            raise DatabaseNotFound(self.db)
        return head

    def read_head_if_any(self) -> Head | None:
        """META read serializably, or None when the database does not exist."""
        raw = self._tr.get(self.keys.meta, point="read_meta")
        self.head = None if raw is None else Head.decode(raw, self.db)
        return self.head

    def read_head_with(self, key: bytes, *, point: str) -> tuple[Head, bytes | None]:
        """META and ``key``, both read serializably, in one round trip."""
        raw, value = self._tr.get_many([self.keys.meta, key], point=point)
        self.use_head(raw)
        if self.head is None:
            raise DatabaseNotFound(self.db)
        return self.head, value

    def use_head(self, raw: bytes | None) -> Head | None:
        """META as the operation read it itself (serializably, in this transaction, e.g. in
        a multi-range read): ``write_head`` counts from it."""
        self.head = None if raw is None else Head.decode(raw, self.db)
        return self.head

    def guard(self, key: bytes, expected: bytes | None) -> None:
        """Commit only if ``key`` still holds ``expected`` (``Transaction.guard``)."""
        self._tr.guard(key, expected)

    def assume_head(self, head: Head, raw: bytes) -> Head:
        """Take ``head`` (encoded as ``raw``) as META without reading it: the commit is
        guarded by ``M == raw`` (``Transaction.guard``), checked by the store inside this
        transaction and conflicting like the serializable read it replaces."""
        self._tr.guard(self.keys.meta, raw)
        self.head = head
        return head

    @property
    def limits(self) -> Limits:
        return self._tr.limits

    @property
    def size(self) -> int:
        """Bytes of mutations so far, as the store counts them against its limit."""
        return self._tr.size

    # ------------------------------------------------------------------ writes

    def put(self, key: bytes, value: bytes) -> int:
        """Write a key that does not exist; returns the bytes it adds."""
        self._tr.set(key, value)
        n = len(key) + len(value)
        self.delta += n
        return n

    def replace(self, key: bytes, value: bytes, old_value_bytes: int) -> int:
        """Overwrite a key that exists with a value of ``old_value_bytes``."""
        self._tr.set(key, value)
        return self._count(len(value) - old_value_bytes)

    def put_blob(self, key_of: Callable[[int], bytes], data: bytes) -> int:
        """Write ``data`` as new sealed chunk keys ``key_of(0..n-1)`` (each with the chunk
        count); returns the bytes they add."""
        max_value_bytes = self._tr.limits.max_value_bytes
        if len(data) <= max_value_bytes - CHUNK_OVERHEAD:  # one chunk: a commit's usual blob
            key = key_of(0)
            return self.put(key, seal_chunk(key, data, 1))
        return sum(self.put(key, piece) for key, piece in blob_rows(key_of, data, max_value_bytes))

    def put_uncounted(self, key: bytes, value: bytes) -> None:
        """Write (or overwrite) a key that no head counts: a fork's progress record in a
        database that has no META yet; the fork drops it before it writes the head."""
        self._tr.set(key, value)

    def drop(self, key: bytes, value_bytes: int) -> int:
        """Clear one key known to hold ``value_bytes``; returns the bytes freed."""
        self._tr.clear(key)
        return -self._count(-(len(key) + value_bytes))

    def drop_rows(self, rows: Rows) -> int:
        """Clear each of ``rows`` (read in this transaction); returns the bytes freed."""
        for key, _ in rows:
            self._tr.clear(key)
        return -self._count(-row_bytes(rows))

    def drop_range(self, key_range: tuple[bytes, bytes], rows: Rows) -> int:
        """Clear ``key_range``, whose whole content is ``rows`` (read in this transaction)."""
        return self.drop_counted_range(key_range, row_bytes(rows))

    def drop_counted_range(self, key_range: tuple[bytes, bytes], stored: int) -> int:
        """Clear ``key_range``, known to hold ``stored`` bytes (from a manifest, a directory
        row or the PIDX map); returns the bytes freed."""
        self._tr.clear_range(*key_range)
        return -self._count(-stored)

    def drop_uncounted_range(self, key_range: tuple[bytes, bytes]) -> None:
        """Clear keys that ``storage_used`` never counted: what a delete or a crashed owner
        left where no head refers to it (a DELTA above head without a manifest)."""
        self._tr.clear_range(*key_range)

    def write_head(
        self,
        head: Head,
        *,
        check_quota: bool = False,
        staged: bool = False,
        pages: int = 0,
        delta_bytes: int = 0,
        carried: int = 0,
    ) -> Head:
        """Write META as ``head`` with the exact ``storage_used``; returns what was written.

        ``check_quota``: refuse (``QuotaExceeded``, nothing written) what ``quota_check``
        refuses: a commit of ``pages`` pages in ``delta_bytes`` that grows the database over
        its quota (``staged``: a stage, whose final size is not known yet).
        ``carried``: bytes that earlier transactions of the same operation wrote and no head
        counted yet (a fork's copy, recorded in its progress record); only for a new head.
        """
        old = self.head
        if old is None:
            meta_bytes = len(self.keys.meta) + len(head.encode())
            used = meta_bytes + self.delta + carried
        else:
            used = old.storage_used + self.delta
            if check_quota:
                quota_check(
                    self.db,
                    old,
                    used,
                    db_size_pages=None if staged else head.db_size_pages,
                    pages=pages,
                    delta_bytes=delta_bytes,
                )
        new = head.with_changes(storage_used=used)
        raw = new.encode()
        self.written = (new, raw)
        self._tr.set(self.keys.meta, raw)
        return new

    def _count(self, n: int) -> int:
        self.delta += n
        return n


def quota_check(
    db: str,
    head: Head,
    new_used: int,
    *,
    db_size_pages: int | None = None,
    pages: int = 0,
    delta_bytes: int = 0,
) -> None:
    """Refuse a commit that would take the database over its quota *and grow it*.

    Accepted whatever the quota: a commit that uses no more bytes than before, and a commit
    that does not grow the database: no more pages than it has (``db_size_pages``), and new
    copies no larger on average than the database's stored bytes per page (``pages`` pages
    in ``delta_bytes``). Its delta holds the bytes until compaction reclaims the copies it
    replaces (back-pressure bounds that overshoot), so DELETE, DROP, VACUUM and truncation
    always work at the quota. A stage passes ``db_size_pages=None`` (its final size is not
    known yet): it may overshoot by at most one rewrite of the whole database, and the
    finalize decides.
    """
    quota = head.storage_quota
    if not quota or new_used <= quota or new_used <= head.storage_used:
        return
    per_page = head.storage_used / max(1, head.db_size_pages)
    if db_size_pages is None:
        if new_used <= quota + per_page * head.db_size_pages:
            return
    elif db_size_pages <= head.db_size_pages and delta_bytes <= pages * per_page:
        return
    raise QuotaExceeded(db, new_used, quota)
