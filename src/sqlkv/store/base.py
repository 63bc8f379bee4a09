"""The KV store contract (docs/design.md §2): transactions, limits, retries, counters.

Every driver has the same narrow shape: it opens a *snapshot* (consistent point-in-time
reads) and applies a *commit request* atomically, refusing it with ``ConflictError`` when
a key or range in its read-conflict set changed since the snapshot was taken. Everything
else lives here, once, for all drivers:

- ``Transaction`` buffers writes (so nothing reaches the driver before commit), answers
  reads from its own writes first, records serializable reads as conflict ranges, and
  enforces the size limits *before* anything is written;
- ``Store.transact(fn)`` runs ``fn`` in a fresh transaction and retries retryable errors
  with exponential backoff and jitter, up to a bounded number of attempts;
- ``Limits``, ``RetryPolicy`` and ``StoreStats`` (``store/limits.py``) are the size
  limits, retry policy and counters every store carries; ``Snapshot`` and
  ``CommitRequest``, what a driver implements, are in ``store/driver.py``.

Values are stored and returned byte for byte: no layer here looks inside them.
"""

from __future__ import annotations

import bisect
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from operator import itemgetter
from typing import TypeVar

from sortedcontainers import SortedList

from sqlkv.errors import ConfigError, LimitExceeded, RetriesExhausted, StoreError
from sqlkv.store.driver import CommitRequest as CommitRequest  # re-exported: the contract's names
from sqlkv.store.driver import Snapshot as Snapshot
from sqlkv.store.faults import APPLY, point_name
from sqlkv.store.limits import Limits as Limits
from sqlkv.store.limits import RetryPolicy as RetryPolicy
from sqlkv.store.limits import StoreStats as StoreStats
from sqlkv.store.ranges import (
    KeyRange,
    RangeRead,
    coalesce,
    key_after,
    merge_sorted,
    range_read,
)

T = TypeVar("T")


class Transaction:
    """One attempt at a transaction. Use ``Store.transact`` rather than making these.

    Writes are buffered until ``commit``; reads see them. A read is *serializable*
    (joins the read-conflict set) unless ``snapshot=True`` is passed. ``name`` and each
    read's ``point`` name the store operations for fault injection (``sqlkv.store.faults``).
    """

    def __init__(self, store: Store, snapshot: Snapshot, name: str = "") -> None:
        self._store = store
        self._snap = snapshot
        self.name = name
        self._limits = store.limits
        self._writes: dict[bytes, bytes | None] = {}  # key -> value, or None: cleared
        # its keys in order, built by the first range operation that needs them (few do)
        self._index: SortedList | None = None
        self._cleared: list[KeyRange] = []  # sorted, coalesced
        self._cleared_begins: list[bytes] = []
        self._read_ranges: list[KeyRange] = []
        self._guards: dict[bytes, bytes | None] = {}
        self._size = 0
        self._writes_count = 0
        self._done = False
        self._stats = StoreStats()

    # ------------------------------------------------------------------ reads

    def get(self, key: bytes, *, snapshot: bool = False, point: str = "") -> bytes | None:
        self._check_open()
        self._check_key(key)
        if not snapshot:
            self._read_ranges.append((key, key + b"\x00"))  # (key, key_after(key))
        if key in self._writes:
            return self._writes[key]
        if self._in_cleared(key):
            return None
        self._stats.round_trips += 1
        self._snap.at(point_name(self.name, point))
        value = self._snap.get(key)
        self._count_read([value])
        return value

    def get_many(
        self, keys: Sequence[bytes], *, snapshot: bool = False, point: str = ""
    ) -> list[bytes | None]:
        """Values of ``keys`` in order (``None`` for an absent key), in one round trip."""
        self._check_open()
        result: list[bytes | None] = [None] * len(keys)
        missing: list[int] = []
        for i, key in enumerate(keys):
            self._check_key(key)
            if not snapshot:
                self._read_ranges.append((key, key_after(key)))
            if key in self._writes:
                result[i] = self._writes[key]
            elif not self._in_cleared(key):
                missing.append(i)
        if missing:
            self._stats.round_trips += 1
            self._snap.at(point_name(self.name, point))
            values = self._snap.get_many([keys[i] for i in missing])
            self._count_read(values)
            for i, value in zip(missing, values, strict=True):
                result[i] = value
        return result

    def get_range(
        self,
        begin: bytes,
        end: bytes,
        *,
        limit: int = 0,
        reverse: bool = False,
        snapshot: bool = False,
        point: str = "",
    ) -> list[tuple[bytes, bytes]]:
        """Pairs with ``begin <= key < end`` in key order (descending if ``reverse``).

        ``limit`` > 0 returns at most that many. With a limit, only the part of the range
        actually read joins the read-conflict set.
        """
        self._check_open()
        if limit < 0:
            raise StoreError(f"range read limit must be >= 0, got {limit}")
        self._check_key(begin)
        self._check_key(end)
        if begin >= end:
            return []
        result = self._merged_range(begin, end, limit, reverse, point)
        if not snapshot:
            self._read_ranges.append(range_read(begin, end, limit, reverse, result))
        return result

    def get_ranges(
        self, ranges: Sequence[RangeRead], *, snapshot: bool = False, point: str = ""
    ) -> list[list[tuple[bytes, bytes]]]:
        """Several ``get_range`` reads, ``(begin, end, limit, reverse)`` each, in one round
        trip when none of them overlaps this transaction's own writes."""
        self._check_open()
        for begin, end, limit, _ in ranges:
            if limit < 0:
                raise StoreError(f"range read limit must be >= 0, got {limit}")
            self._check_key(begin)
            self._check_key(end)
        if not ranges:
            return []
        if any(self._touched(b, e) for b, e, _, _ in ranges):
            return [
                self.get_range(b, e, limit=n, reverse=r, snapshot=snapshot, point=point)
                for b, e, n, r in ranges
            ]
        wanted = [(b, e, n, r) for b, e, n, r in ranges if b < e]
        self._stats.round_trips += 1
        self._snap.at(point_name(self.name, point))
        answers = iter(self._snap.get_ranges(wanted))
        out: list[list[tuple[bytes, bytes]]] = []
        for begin, end, limit, reverse in ranges:
            rows = next(answers) if begin < end else []
            self._count_read([v for _, v in rows])
            if not snapshot and begin < end:
                self._read_ranges.append(range_read(begin, end, limit, reverse, rows))
            out.append(rows)
        return out

    def _touched(self, begin: bytes, end: bytes) -> bool:
        """True when this transaction wrote or cleared anything in ``[begin, end)``."""
        if self._writes:
            written = self._sorted_keys().irange(begin, end, inclusive=(True, False))
            if next(iter(written), None) is not None:
                return True
        return any(b < end and begin < e for b, e in self._cleared)

    def _sorted_keys(self) -> SortedList:
        """The written keys in order (kept up to date by ``set`` and ``clear`` from now on)."""
        if self._index is None:
            self._index = SortedList(self._writes)
        return self._index

    def _merged_range(
        self, begin: bytes, end: bytes, limit: int, reverse: bool, point: str
    ) -> list[tuple[bytes, bytes]]:
        """Driver rows in the range overlaid with this transaction's own writes."""
        local = (
            [
                (k, self._writes[k])
                for k in self._sorted_keys().irange(
                    begin, end, inclusive=(True, False), reverse=reverse
                )
            ]
            if self._writes
            else []
        )
        out: list[tuple[bytes, bytes]] = []
        lo, hi = begin, end
        while True:
            # Every driver row in a range this transaction cleared is dropped below: do not
            # read them (a limited read would otherwise take a round trip per cleared key).
            lo, hi = self._outside_cleared(lo, hi)
            batch_limit = limit + len(local) if limit else 0
            if lo < hi:
                self._stats.round_trips += 1
                self._snap.at(point_name(self.name, point))
                rows = self._snap.get_range(lo, hi, batch_limit, reverse)
                self._count_read([v for _, v in rows])
            else:
                rows = []
            exhausted = not batch_limit or len(rows) < batch_limit
            if not exhausted:
                edge = rows[-1][0]
                # Merge only keys up to the last driver key read; continue past it next round.
                window = [(k, v) for k, v in local if (k >= edge if reverse else k <= edge)]
                local = local[len(window) :]
            else:
                window, local = local, []
            merged = merge_sorted(
                [(k, v) for k, v in rows if not self._in_cleared(k) and k not in self._writes],
                window,
                reverse,
            )
            out.extend((k, v) for k, v in merged if v is not None)
            if limit and len(out) >= limit:
                return out[:limit]
            if exhausted:
                return out
            if reverse:
                hi = edge
            else:
                lo = key_after(edge)

    # ------------------------------------------------------------------ writes

    def set(self, key: bytes, value: bytes) -> None:
        # The checks of _check_open, _check_key, _grow and _put, inlined: the engine sets
        # about five keys per commit.
        if self._done:
            self._check_open()
        limits = self._limits
        if type(key) is not bytes or len(key) > limits.max_key_bytes:
            self._check_key(key)
        if type(value) is not bytes:
            if not isinstance(value, bytes | bytearray | memoryview):
                raise StoreError(f"values must be bytes, got {type(value).__name__}")
            value = bytes(value)
        if len(value) > limits.max_value_bytes:
            raise LimitExceeded("value", len(value), limits.max_value_bytes)
        size = self._size + len(key) + len(value)
        if size > limits.max_transaction_bytes:
            raise LimitExceeded("transaction", size, limits.max_transaction_bytes)
        self._size = size
        if self._index is not None and key not in self._writes:
            self._index.add(key)
        self._writes[key] = value
        self._writes_count += 1

    def clear(self, key: bytes) -> None:
        self._check_open()
        self._check_key(key)
        self._grow(len(key))
        self._put(key, None)

    def _put(self, key: bytes, value: bytes | None) -> None:
        if self._index is not None and key not in self._writes:
            self._index.add(key)
        self._writes[key] = value
        self._writes_count += 1

    def clear_range(self, begin: bytes, end: bytes) -> None:
        """Remove every key with ``begin <= key < end``."""
        self._check_open()
        self._check_key(begin)
        self._check_key(end)
        if begin >= end:
            return
        self._grow(len(begin) + len(end))
        if self._writes:
            index = self._sorted_keys()
            for k in list(index.irange(begin, end, inclusive=(True, False))):
                del self._writes[k]
                index.remove(k)
        self._cleared = coalesce([*self._cleared, (begin, end)])
        self._cleared_begins = [b for b, _ in self._cleared]
        self._writes_count += 1

    def guard(self, key: bytes, expected: bytes | None) -> None:
        """Commit only if ``key`` holds ``expected`` (None: absent) in the store when the
        commit applies; else nothing is applied and the commit raises ``GuardFailed(key,
        current)``. Checked by the driver inside the commit's own store transaction, so a
        guard replaces a serializable read of the key: it costs no round trip, and it
        joins the read-conflict set, so it conflicts with a concurrent writer of the key
        exactly as a read would. The stored value is compared, not this transaction's own
        writes. A transaction with a guard always reaches the driver at commit."""
        self._check_open()
        self._check_key(key)
        if expected is not None:
            expected = bytes(expected)
        self._guards[key] = expected
        self._read_ranges.append((key, key_after(key)))

    # ------------------------------------------------------------------ end

    @property
    def limits(self) -> Limits:
        return self._limits

    @property
    def size(self) -> int:
        """Bytes of mutations so far, as counted against ``max_transaction_bytes``."""
        return self._size

    def commit(self) -> None:
        """Apply every buffered write atomically, or raise ``ConflictError``."""
        self._check_open()
        try:
            if self._writes or self._cleared or self._guards:
                writes = self._writes
                request = CommitRequest(
                    writes=(
                        [(k, writes[k]) for k in self._index]
                        if self._index is not None
                        else sorted(writes.items(), key=itemgetter(0))
                    ),
                    clear_ranges=coalesce(self._cleared),
                    read_ranges=coalesce(self._read_ranges),
                    size=self._size,
                    guards=list(self._guards.items()),
                )
                self._stats.round_trips += 1
                self._snap.at(point_name(self.name, APPLY))
                self._snap.commit(request)
                self._stats.writes += self._writes_count
                self._stats.bytes_written += self._size
            self._stats.transactions += 1
        finally:
            self.close()

    def close(self) -> None:
        """Abandon the transaction (no-op after commit). Buffered writes are dropped."""
        if self._done:
            return
        self._done = True
        self._snap.close()
        self._store._merge_stats(self._stats)

    # ------------------------------------------------------------------ helpers

    def _check_open(self) -> None:
        if self._done:
            raise StoreError("this transaction is finished; start a new one with store.transact")

    def _check_key(self, key: bytes) -> None:
        if type(key) is not bytes and not isinstance(key, bytes):
            raise StoreError(f"keys must be bytes, got {type(key).__name__}")
        if len(key) > self._limits.max_key_bytes:
            raise LimitExceeded("key", len(key), self._limits.max_key_bytes)

    def _grow(self, n: int) -> None:
        if self._size + n > self._limits.max_transaction_bytes:
            raise LimitExceeded("transaction", self._size + n, self._limits.max_transaction_bytes)
        self._size += n

    def _in_cleared(self, key: bytes) -> bool:
        if not self._cleared:
            return False
        i = bisect.bisect_right(self._cleared_begins, key) - 1
        return i >= 0 and key < self._cleared[i][1]

    def _outside_cleared(self, lo: bytes, hi: bytes) -> KeyRange:
        """``[lo, hi)`` without a cleared range holding ``lo`` or the keys just below ``hi``
        (cleared ranges are coalesced, so one step from each end is enough)."""
        if not self._cleared:
            return lo, hi
        i = bisect.bisect_right(self._cleared_begins, lo) - 1
        if i >= 0 and lo < self._cleared[i][1]:
            lo = self._cleared[i][1]
        i = bisect.bisect_left(self._cleared_begins, hi) - 1
        if i >= 0 and hi <= self._cleared[i][1]:
            hi = self._cleared[i][0]
        return lo, hi

    def _count_read(self, values: Iterable[bytes | None]) -> None:
        for v in values:
            if v is not None:
                self._stats.reads += 1
                self._stats.bytes_read += len(v)


class Store(ABC):
    """A transactional ordered key-value store. Drivers implement ``_open_snapshot``."""

    url: str = ""

    def __init__(self, *, limits: Limits | None = None, retry: RetryPolicy | None = None) -> None:
        self.limits = limits or Limits()
        self.limits.validate()
        self.retry = retry or RetryPolicy()
        self.stats = StoreStats()
        self._stats_lock = threading.Lock()

    @abstractmethod
    def _open_snapshot(self) -> Snapshot: ...

    def begin(self, name: str = "") -> Transaction:
        """Start one transaction attempt (for tests and tools; prefer ``transact``)."""
        return Transaction(self, self._open_snapshot(), name)

    def transact(
        self,
        fn: Callable[[Transaction], T],
        *,
        max_attempts: int | None = None,
        name: str = "",
    ) -> T:
        """Run ``fn(tr)`` and commit, retrying retryable errors with backoff.

        ``fn`` may run several times, so it must not have side effects outside ``tr``.
        Raises ``RetriesExhausted`` after the bounded number of attempts. ``name`` names the
        transaction's store operations as fault points (``sqlkv.store.faults``).
        """
        if max_attempts is not None and max_attempts < 1:
            raise ConfigError(f"max_attempts must be at least 1, got {max_attempts}")
        attempts = max_attempts or self.retry.max_attempts
        last: StoreError | None = None
        for attempt in range(1, attempts + 1):
            tr: Transaction | None = None
            try:
                tr = self.begin(name)
                result = fn(tr)
                tr.commit()
                return result
            except StoreError as exc:
                # Only the store's own transient errors are retried here; a retryable
                # engine answer (for example CompactionBehind) belongs to the caller, and
                # so does GuardFailed (not retryable: the same guard would fail again).
                if not exc.retryable:
                    raise
                last = exc
                with self._stats_lock:
                    self.stats.conflicts += 1
            finally:
                if tr is not None:
                    tr.close()
                with self._stats_lock:
                    self.stats.attempts += 1
            if attempt < attempts:
                time.sleep(self.retry.backoff(attempt))
        assert last is not None
        raise RetriesExhausted(attempts, last) from last

    def close(self) -> None:  # noqa: B027 - drivers without resources need nothing
        """Release connections and files. The store must not be used afterwards."""

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _merge_stats(self, s: StoreStats) -> None:
        with self._stats_lock:
            st = self.stats
            st.transactions += s.transactions
            st.round_trips += s.round_trips
            st.reads += s.reads
            st.writes += s.writes
            st.bytes_read += s.bytes_read
            st.bytes_written += s.bytes_written
