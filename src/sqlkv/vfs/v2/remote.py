"""The connection's side of the engine protocol: retries, fencing and commit resolution.

``RemoteDb`` holds what this owner knows of the database (generation, last committed txid
and size) and makes every engine call through ``_call``, which counts it, retries errors
whose class says a retry can help (with exponential backoff), and turns a ``FenceMismatch``
into a dead connection.

A commit whose answer is lost (``CommitUnknown``, or a retryable error after the request may
have landed) is sent again with the same ``commit_id``: the engine answers
``already_applied`` for a retry of a commit that landed, so nothing is applied twice. When
every retry fails, ``_settle`` decides from ``head()``; if the commit has not landed, the
connection commits nothing on top of the head it knows (an empty commit with its own
``commit_id``), so that a delayed copy of the request, which expects the old head, can never
land later, and only then reports the commit as failed. It does not re-open (take over) the
database: an owner that opened it since would be fenced out by the owner it replaced. When the
engine cannot be reached even for that, the outcome is unknown and the connection dies
rather than guess (a new connection sees the commit if it landed).

Every head the connection sees is compared with the newest it acknowledged: an older one
(a smaller ``head_txid``, or a smaller generation) means the store lost acknowledged
commits. That is reported as ``StoreRewound`` (``RewoundIOError``, an apsw I/O error too)
and the connection dies; it is never mistaken for a takeover, whose generation is higher
and whose head is not older.

Methods raise ``apsw.Error`` for a fenced or dead connection, ``Unreachable`` when retries ran
out, and the engine's own non-retryable ``SqlkvError`` (quota, invalid request) unchanged.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from typing import NoReturn, TypeVar

import apsw

from sqlkv.engine.api import CommitResult, EngineApi, OpenResult, Pages
from sqlkv.engine.head import Head
from sqlkv.errors import (
    CommitTooLarge,
    CommitUnknown,
    ConnectionFenced,
    FenceMismatch,
    SqlkvError,
    StoreRewound,
)
from sqlkv.vfs.sqlite_errors import sqlite_error
from sqlkv.vfs.v2.config import PAGE_SIZE, VfsConfig
from sqlkv.vfs.v2.counters import ClientCounters

T = TypeVar("T")

FENCED_MESSAGE = "another owner took this database over; open a new connection"


class FencedIOError(apsw.IOError, ConnectionFenced):
    """Raised by every call on a fenced connection: an apsw I/O error (SQLite sees
    ``SQLITE_IOERR``) that is also a ``sqlkv.errors.ConnectionFenced``."""

    _sqlkv_dual = True  # its sqlkv class is ConnectionFenced (errors.sqlkv_kind)


def fenced_error(cause: BaseException | None = None) -> FencedIOError:
    exc = FencedIOError(FENCED_MESSAGE)
    # what apsw reads to tell SQLite the error code
    setattr(exc, "result", apsw.SQLITE_IOERR)  # noqa: B010
    setattr(exc, "extendedresult", apsw.SQLITE_IOERR)  # noqa: B010
    exc.__cause__ = cause
    return exc


class RewoundIOError(apsw.IOError, StoreRewound):
    """Raised by every call once the store was seen to lose acknowledged commits: an apsw
    I/O error that is also a ``sqlkv.errors.StoreRewound``."""

    _sqlkv_dual = True  # its sqlkv class is StoreRewound (errors.sqlkv_kind)


def rewound_error(db: str, acknowledged_txid: int, found_txid: int) -> RewoundIOError:
    exc = RewoundIOError(db, acknowledged_txid, found_txid)
    setattr(exc, "result", apsw.SQLITE_IOERR)  # noqa: B010
    setattr(exc, "extendedresult", apsw.SQLITE_IOERR)  # noqa: B010
    return exc


class Unreachable(Exception):
    """Every attempt of an engine call failed with a retryable (transport-like) error."""

    def __init__(self, what: str, attempts: int, cause: SqlkvError) -> None:
        super().__init__(f"{what} failed after {attempts} attempts: {cause}")
        self.cause = cause


class RemoteDb:
    def __init__(
        self, engine: EngineApi, name: str, config: VfsConfig, counters: ClientCounters
    ) -> None:
        self.engine = engine
        self.name = name
        self.config = config
        self.counters = counters
        self.generation = 0
        self.head_txid = 0
        self.size_pages = 0  # committed size, as the engine knows it
        self.storage_used = 0
        self.known_head: Head | None = None  # the newest head learned (open, commit, head)
        self._dead: BaseException | None = None
        self.on_dead: Callable[[], None] | None = None  # called when ``dead`` is set

    # ------------------------------------------------------------------ state

    @property
    def dead(self) -> BaseException | None:
        """Why the connection is unusable (set once), or None while it is usable."""
        return self._dead

    @dead.setter
    def dead(self, exc: BaseException | None) -> None:
        self._dead = exc
        if exc is not None and self.on_dead is not None:
            self.on_dead()

    @property
    def fenced(self) -> bool:
        return isinstance(self.dead, FenceMismatch)

    def check_alive(self) -> None:
        if self.dead is not None:
            raise self.dead_error()

    def dead_error(self) -> Exception:
        if isinstance(self.dead, FenceMismatch):
            return fenced_error(self.dead)
        if isinstance(self.dead, RewoundIOError):
            return self.dead
        # of the class of what killed it (the transport error), like the failure itself
        cause = self.dead.cause if isinstance(self.dead, Unreachable) else self.dead
        return sqlite_error(
            apsw.SQLITE_IOERR,
            f"this connection to database {self.name!r} is unusable after an earlier "
            f"failure ({self.dead}); open a new connection",
            cause,
        )

    def _fence(self, exc: FenceMismatch) -> NoReturn:
        if isinstance(exc.head, Head):
            self._check_rewind(exc.head)
        self.dead = exc
        raise fenced_error(exc)

    def _check_rewind(self, head: Head) -> None:
        """Raise (and die) when ``head`` is older than the newest this connection saw."""
        if self.generation == 0:
            return  # not open yet: nothing acknowledged
        if head.head_txid < self.head_txid or head.generation < self.generation:
            exc = rewound_error(self.name, self.head_txid, head.head_txid)
            self.dead = exc
            raise exc

    def _learn(self, head: Head) -> None:
        self._check_rewind(head)
        self.head_txid = head.head_txid
        self.size_pages = head.db_size_pages
        self.storage_used = head.storage_used
        self.known_head = head

    # ------------------------------------------------------------------ calls

    def _call(self, what: str, fn: Callable[[], T], *, lost_ok: bool = False) -> T:
        """One engine call with retries; ``lost_ok``: a lost answer may be asked again."""
        self.check_alive()
        attempt = 0
        while True:
            attempt += 1
            self.counters.round_trips += 1
            try:
                return fn()
            except FenceMismatch as exc:
                self._fence(exc)
            except StoreRewound as exc:  # the engine saw it first
                self.dead = rewound_error(self.name, exc.acknowledged_txid, exc.found_txid)
                raise self.dead from exc
            except SqlkvError as exc:
                lost = isinstance(exc, CommitUnknown)
                if not (exc.retryable or (lost and lost_ok)):
                    raise
                if attempt >= self.config.retry_attempts:
                    raise Unreachable(what, attempt, exc) from exc
            self.counters.retries += 1
            time.sleep(self.config.backoff(attempt))

    def open(self, preload: Sequence[int]) -> OpenResult:
        result = self._call(
            "open",
            lambda: self.engine.open(
                self.name,
                preload=preload,
                preload_bytes=self.config.preload_bytes,
                create=self.config.create,
            ),
        )
        self.generation = result.head.generation
        self._learn(result.head)
        self.counters.pages_preloaded += len(result.pages)
        self.counters.bytes_received += sum(len(p) for p in result.pages.values())
        return result

    def get_pages(self, pgnos: Sequence[int]) -> dict[int, bytes | None]:
        self.counters.get_pages_calls += 1
        result = self._call(
            "get_pages", lambda: self.engine.get_pages(self.name, self.generation, pgnos)
        )
        self._check_rewind(result.head)  # pages of an older state must not be served
        got = [p for p in result.pages.values() if p is not None]
        self.counters.pages_fetched += len(got)
        self.counters.bytes_received += sum(len(p) for p in got)
        return result.pages

    def head(self) -> Head:
        return self._call("head", lambda: self.engine.head(self.name))

    def save_hint(self, pgnos: Sequence[int]) -> None:
        """Leave ``pgnos`` as the pages the next open returns (one engine call, no retry:
        a hint that does not land costs the next owner a few reads, nothing more)."""
        self.check_alive()
        self.counters.round_trips += 1
        self.counters.hints_saved += 1
        self.engine.save_hint(self.name, self.generation, pgnos)

    # ------------------------------------------------------------------ commit

    def commit(self, pages: Pages, size_pages: int) -> CommitResult:
        """Make ``pages`` and ``size_pages`` the next committed state, exactly once."""
        commit_id = os.urandom(16)
        try:
            if len(pages) * PAGE_SIZE <= self.config.fast_path_bytes:
                try:
                    result = self._commit_fast(pages, size_pages, commit_id)
                except CommitTooLarge:
                    result = self._commit_staged(pages, size_pages, commit_id)
            else:
                result = self._commit_staged(pages, size_pages, commit_id)
        except Unreachable as exc:
            result = self._settle(exc, commit_id)
        self.counters.commits += 1
        self.counters.pages_committed += len(pages)
        self._learn(result.head)
        return result

    def _commit_fast(self, pages: Pages, size_pages: int, commit_id: bytes) -> CommitResult:
        expected = self.head_txid

        def call() -> CommitResult:
            self.counters.commit_calls += 1
            self.counters.bytes_sent += len(pages) * PAGE_SIZE
            return self.engine.commit(
                self.name, self.generation, expected, pages, size_pages, commit_id=commit_id
            )

        return self._call("commit", call, lost_ok=True)

    def _commit_staged(self, pages: Pages, size_pages: int, commit_id: bytes) -> CommitResult:
        if not pages:  # a pure resize has nothing to stage
            return self._commit_fast(pages, size_pages, commit_id)
        self.counters.staged_commits += 1
        per_chunk = max(1, self.config.stage_chunk_bytes // PAGE_SIZE)
        ordered = sorted(pages.items())
        chunks = [ordered[i : i + per_chunk] for i in range(0, len(ordered), per_chunk)]
        txid: int | None = None
        seq = 0
        while chunks:
            chunk = chunks.pop(0)
            try:
                txid = self._stage(txid, seq, dict(chunk))
            except CommitTooLarge:
                if len(chunk) == 1:
                    raise
                half = len(chunk) // 2
                chunks[:0] = [chunk[:half], chunk[half:]]
                continue
            seq += 1
        assert txid is not None
        expected, staged = self.head_txid, txid

        def finalize() -> CommitResult:
            self.counters.finalize_calls += 1
            return self.engine.commit_finalize(
                self.name, self.generation, expected, staged, size_pages, commit_id=commit_id
            )

        return self._call("commit_finalize", finalize, lost_ok=True)

    def _stage(self, txid: int | None, seq: int, chunk: Pages) -> int:
        def call() -> int:
            self.counters.stage_calls += 1
            self.counters.bytes_sent += len(chunk) * PAGE_SIZE
            return self.engine.commit_stage(self.name, self.generation, txid, seq, chunk).txid

        # a lost stage answer is safe to ask again: the same (txid, seq) is rewritten, and a
        # txid reserved by a lost first call is abandoned (the next takeover removes it)
        return self._call("commit_stage", call, lost_ok=True)

    def _settle(self, unreachable: Unreachable, commit_id: bytes) -> CommitResult:
        """Every attempt failed: find out whether the commit landed, and make it final."""
        barrier_id = os.urandom(16)
        try:
            head = self.head()
            if head.generation != self.generation:
                self._fence(FenceMismatch(FENCED_MESSAGE, head))
            if not self._landed(head, commit_id) and head.head_txid == self.head_txid:
                # not landed yet: move the head on with an empty commit of our own, so that a
                # delayed copy of the request (which expects the old head) can never land.
                # Not a takeover: that would fence out an owner who opened since head().
                head = self._barrier(barrier_id)
        except (FencedIOError, RewoundIOError):
            raise  # another owner took over, or the store lost commits: not "unreachable"
        except (Unreachable, SqlkvError) as exc:
            self.dead = exc
            raise sqlite_error(
                apsw.SQLITE_IOERR_FSYNC,
                f"commit to database {self.name!r} may or may not have landed ({unreachable}) "
                f"and it cannot be settled now ({exc}); open a new connection: it will see "
                "the commit if it landed",
                unreachable.cause,
            ) from unreachable.cause
        if self._landed(head, commit_id):
            return CommitResult(head, already_applied=True)
        if head.generation == self.generation and head.last_commit_id == barrier_id:
            self._learn(head)  # our empty commit landed instead: the connection carries on
            raise sqlite_error(
                apsw.SQLITE_IOERR_FSYNC,
                f"commit to database {self.name!r} was not applied: {unreachable}",
                unreachable.cause,
            )
        self._fence(FenceMismatch(FENCED_MESSAGE, head))

    def _barrier(self, barrier_id: bytes) -> Head:
        """Commit nothing on top of the head we know; the head after it. A ``FenceMismatch``
        that only says the head moved (our lost commit landed late) answers that head."""
        expected, size = self.head_txid, self.size_pages

        def call() -> Head:
            self.counters.commit_calls += 1
            try:
                return self.engine.commit(
                    self.name, self.generation, expected, {}, size, commit_id=barrier_id
                ).head
            except FenceMismatch as exc:
                head = exc.head
                if isinstance(head, Head) and head.generation == self.generation:
                    return head
                raise

        return self._call("commit", call, lost_ok=True)

    def _landed(self, head: Head, commit_id: bytes) -> bool:
        return head.last_commit_id == commit_id and head.head_txid > self.head_txid
