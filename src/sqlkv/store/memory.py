"""The in-memory store: the readable reference driver, and the test bench for faults.

Multi-version: every key keeps the versions that an open snapshot may still read, so
snapshots are truly point-in-time. Conflicts are found the way FoundationDB's resolver
finds them: each commit's write ranges are logged with its version, and a commit whose
read ranges overlap a write logged after its read version is refused.

For tests it adds injected latency and jitter (per round trip), an operation log, and a
fault plan (``sqlkv.store.faults``): fail or crash at a named store operation, before or
after a commit point, and snapshot/restore of the whole store.
"""

from __future__ import annotations

import bisect
import random
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from operator import itemgetter

from sortedcontainers import SortedDict

from sqlkv.errors import ConflictError, GuardFailed
from sqlkv.store.base import (
    CommitRequest,
    Limits,
    RetryPolicy,
    Snapshot,
    Store,
)
from sqlkv.store.faults import FaultPlan, SimulatedCrash, check_registered
from sqlkv.store.ranges import KeyRange, RangeRead, ranges_intersect

History = list[tuple[int, bytes | None]]


@dataclass
class OpRecord:
    """One driver operation: its sequence number from the store's start, name and detail,
    and its fault point name ("" when the caller did not name it)."""

    seq: int
    op: str  # "get", "get_many", "get_range", "get_ranges", "commit"
    detail: str = ""
    point: str = ""


class MemoryStore(Store):
    """A store held in this process's memory. Lost when the process ends."""

    def __init__(
        self,
        *,
        limits: Limits | None = None,
        retry: RetryPolicy | None = None,
        latency_s: float = 0.0,
        jitter_s: float = 0.0,
        record_ops: bool = False,
        url: str = "memory://",
    ) -> None:
        super().__init__(limits=limits, retry=retry)
        self.url = url
        self.latency_s = latency_s
        self.jitter_s = jitter_s
        self.record_ops = record_ops
        self.ops: list[OpRecord] = []
        self.op_count = 0
        self.faults = FaultPlan()
        self._lock = threading.RLock()
        self._hist: SortedDict = SortedDict()  # key -> History, oldest version first
        self._version = 0
        self._active: Counter[int] = Counter()  # read versions of open snapshots
        self._log: list[tuple[int, list[KeyRange]]] = []  # (version, write ranges)
        self._prunable: set[bytes] = set()
        self._pruned_to = -1  # the horizon of the last prune

    def _open_snapshot(self) -> Snapshot:
        with self._lock:
            self._active[self._version] += 1
            return _MemorySnapshot(self, self._version)

    # ------------------------------------------------------------------ test tools

    def dump(self) -> dict[bytes, bytes]:
        """Every live key and value, as of the latest commit."""
        with self._lock:
            out = {}
            for key, hist in self._hist.items():
                value = hist[-1][1]
                if value is not None:
                    out[key] = value
            return out

    def snapshot_state(self) -> dict[bytes, bytes]:
        """A copy of the whole store, for ``restore_state``."""
        return self.dump()

    def restore_state(self, state: dict[bytes, bytes]) -> None:
        """Replace the whole store with ``state``, as one commit: open snapshots still read
        what they saw, and a serializable read in one makes its commit conflict."""
        with self._lock:
            self._version += 1
            v = self._version
            for key in list(self._hist):
                if key not in state:
                    self._put(key, v, None)
            for key, value in state.items():
                self._put(key, v, bytes(value))
            self._log.append((v, [(b"", b"\xff" * (self.limits.max_key_bytes + 1))]))
            self._prune()

    @contextmanager
    def recording(self) -> Iterator[list[OpRecord]]:
        """Log the driver operations of the ``with`` body into the list it yields."""
        before, self.record_ops = self.record_ops, True
        first = len(self.ops)
        log: list[OpRecord] = []
        try:
            yield log
        finally:
            log.extend(self.ops[first:])
            self.record_ops = before
            if not before:
                del self.ops[first:]

    def stored_bytes(self, begin: bytes = b"", end: bytes | None = None) -> int:
        """Sum of key and value bytes of the live keys in ``[begin, end)``."""
        with self._lock:
            total = 0
            for key in self._hist.irange(begin, end, inclusive=(True, False)):
                value = self._hist[key][-1][1]
                if value is not None:
                    total += len(key) + len(value)
            return total

    # ------------------------------------------------------------------ internals

    def _round_trip(self, op: str, detail: str, point: str) -> bool:
        """Account for one driver operation: log, latency, injected faults. Returns True
        when a crash is armed right after this (commit) operation."""
        check_registered(point)
        with self._lock:
            self.op_count += 1
            if self.record_ops:
                self.ops.append(OpRecord(self.op_count, op, detail, point))
            fault = self.faults.reach(point) if point else None
        if self.latency_s or self.jitter_s:
            time.sleep(self.latency_s + random.uniform(0, self.jitter_s))
        if fault is None:
            return False
        kind, at, error = fault
        if kind == "fail":
            raise error(f"injected failure at {point} (fault plan); retry the transaction")
        if not at.after_commit:
            raise SimulatedCrash(str(at))
        return True

    def _read(self, key: bytes, rv: int) -> bytes | None:
        hist: History | None = self._hist.get(key)
        if hist is None:
            return None
        for ver, value in reversed(hist):
            if ver <= rv:
                return value
        return None

    def _commit(self, rv: int, req: CommitRequest) -> None:
        with self._lock:
            for key, expected in req.guards:  # against the latest version, under the lock
                current = self._read(key, self._version)
                if current != expected:
                    raise GuardFailed(key, current)
            if req.read_ranges:
                # The log is in version order: check only the commits after rv.
                first = bisect.bisect_right(self._log, rv, key=itemgetter(0))
                for _, written in self._log[first:]:
                    if ranges_intersect(req.read_ranges, written):
                        raise ConflictError(
                            "another transaction changed keys this one read; it will be retried"
                        )
            self._version += 1
            v = self._version
            for begin, end in req.clear_ranges:
                for key in list(self._hist.irange(begin, end, inclusive=(True, False))):
                    self._put(key, v, None)
            for key, value in req.writes:
                self._put(key, v, value)
            self._log.append((v, req.write_ranges))
            self._prune()

    def _put(self, key: bytes, version: int, value: bytes | None) -> None:
        hist = self._hist.get(key)
        if hist is None:
            if value is None:
                return
            hist = self._hist[key] = []
        hist.append((version, value))
        self._prunable.add(key)

    def _release(self, rv: int) -> None:
        with self._lock:
            self._active[rv] -= 1
            if self._active[rv] <= 0:
                del self._active[rv]

    def _prune(self) -> None:
        """Drop versions and log entries that no open snapshot can read any more."""
        horizon = min(self._active) if self._active else self._version
        if horizon == self._pruned_to:
            # Nothing became prunable: what was committed since has versions > horizon.
            # (So a long-open snapshot does not make every commit rescan its backlog.)
            return
        self._pruned_to = horizon
        self._log = self._log[bisect.bisect_right(self._log, horizon, key=itemgetter(0)) :]
        done = []
        for key in self._prunable:
            hist = self._hist.get(key)
            if hist is None:
                done.append(key)
                continue
            # Keep the newest version visible at the horizon and everything after it.
            keep_from = 0
            for i, (ver, _) in enumerate(hist):
                if ver <= horizon:
                    keep_from = i
            if keep_from:
                del hist[:keep_from]
            if len(hist) == 1 and hist[0][0] <= horizon:
                if hist[0][1] is None:
                    del self._hist[key]
                done.append(key)
        self._prunable.difference_update(done)


class _MemorySnapshot(Snapshot):
    def __init__(self, store: MemoryStore, read_version: int) -> None:
        self._store = store
        self._rv = read_version
        self._closed = False
        self._point = ""

    def at(self, point: str) -> None:
        self._point = point

    def get(self, key: bytes) -> bytes | None:
        self._store._round_trip("get", repr(key), self._point)
        with self._store._lock:
            return self._store._read(key, self._rv)

    def get_many(self, keys: list[bytes]) -> list[bytes | None]:  # type: ignore[override]
        self._store._round_trip("get_many", f"{len(keys)} keys", self._point)
        with self._store._lock:
            return [self._store._read(k, self._rv) for k in keys]

    def get_range(
        self, begin: bytes, end: bytes, limit: int, reverse: bool
    ) -> list[tuple[bytes, bytes]]:
        self._store._round_trip(
            "get_range", f"{begin!r}..{end!r} limit={limit} rev={reverse}", self._point
        )
        return self._range(begin, end, limit, reverse)

    def _range(
        self, begin: bytes, end: bytes, limit: int, reverse: bool
    ) -> list[tuple[bytes, bytes]]:
        out: list[tuple[bytes, bytes]] = []
        st = self._store
        with st._lock:
            for key in st._hist.irange(begin, end, inclusive=(True, False), reverse=reverse):
                value = st._read(key, self._rv)
                if value is not None:
                    out.append((key, value))
                    if limit and len(out) >= limit:
                        break
        return out

    def get_ranges(self, ranges: Sequence[RangeRead]) -> list[list[tuple[bytes, bytes]]]:
        self._store._round_trip("get_ranges", f"{len(ranges)} ranges", self._point)
        return [self._range(*r) for r in ranges]

    def commit(self, request: CommitRequest) -> None:
        point = self._point
        crash_after = self._store._round_trip("commit", f"{len(request.writes)} writes", point)
        try:
            self._store._commit(self._rv, request)
        except ConflictError:
            if crash_after:  # the process dies after the refused commit: nothing applied
                raise SimulatedCrash(f"after {point} (refused; the answer is lost)") from None
            raise
        if crash_after:
            raise SimulatedCrash(f"after {point} (the commit applied, its answer is lost)")

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._store._release(self._rv)
