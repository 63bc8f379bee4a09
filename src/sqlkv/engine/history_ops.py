"""The engine's history operations (``snapshot``, ``read_at``, ``changes_since``): one
store transaction each, read-only (snapshot reads: they never conflict with, fence or
slow down the owner). ``Engine`` inherits them; the reads are in ``timetravel.py``. Also
the two operations built on them, ``fork`` (``fork.py``) and ``restore`` (``restore.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, cast

from sqlkv.engine.api import ChangesResult, PagesResult, SnapshotResult
from sqlkv.engine.labels import HistoryEntry, check_label, history, resolve, set_label
from sqlkv.engine.ledger import Ledger
from sqlkv.engine.read import check_pgnos
from sqlkv.engine.retention import check_window, read_window_ms, write_window
from sqlkv.engine.timetravel import changes_since, read_at
from sqlkv.errors import DatabaseNotFound, InvalidRequest, SnapshotTooOld

if TYPE_CHECKING:
    from sqlkv.engine.engine import Engine
    from sqlkv.engine.head import Head
    from sqlkv.engine.keys import DbKeys
    from sqlkv.engine.metrics import EngineMetrics
    from sqlkv.engine.pidx import PidxCache
    from sqlkv.engine.restore import RestoreResult
    from sqlkv.store import Store, Transaction


class HistoryOps:
    """Mixed into ``Engine``: reads of committed states without owning the database."""

    store: Store
    pidx: PidxCache
    metrics: EngineMetrics

    def keys(self, db: str) -> DbKeys:
        raise NotImplementedError

    def snapshot(
        self, db: str, *, at: int | None = None, preload: Sequence[int] = ()
    ) -> SnapshotResult:
        """Page 1 and ``preload`` as of committed txid ``at`` (None: the head)."""
        keys = self.keys(db)
        wanted = [1] + [p for p in check_pgnos(preload) if p != 1]
        if at is not None:
            _check_txid_type(at)

        def fn(tr: Transaction) -> SnapshotResult:
            view, size, pages = read_at(tr, keys, self.pidx, at, wanted, "read_pages")
            txid = view.head.head_txid if at is None else at
            return SnapshotResult(txid, size, view.head, pages)

        with self._past_read():
            out = self.store.transact(fn, name="snapshot")
        self.metrics.read_lag.observe(out.head.head_txid - out.txid)
        return out

    def read_at(self, db: str, txid: int, pgnos: Sequence[int]) -> PagesResult:
        """Pages exactly as of committed ``txid``; ``SnapshotTooOld`` when no longer kept."""
        keys = self.keys(db)
        wanted = check_pgnos(pgnos)
        _check_txid_type(txid)

        def fn(tr: Transaction) -> PagesResult:
            view, _, pages = read_at(tr, keys, self.pidx, txid, wanted, "read_pages")
            return PagesResult(view.head, pages)

        with self._past_read():
            out = self.store.transact(fn, name="read_at")
        self.metrics.read_lag.observe(out.head.head_txid - txid)
        return out

    @contextmanager
    def _past_read(self) -> Iterator[None]:
        try:
            yield
        except SnapshotTooOld:
            self.metrics.past_reads.labels("too_old").inc()
            raise
        self.metrics.past_reads.labels("ok").inc()

    def set_retention(self, db: str, window_s: float) -> float:
        """Set ``db``'s retention window (seconds; 0 = none); returns it. Shortening it
        frees the history outside the new window at the next compaction pass."""
        keys = self.keys(db)
        window_ms = check_window(window_s)

        def fn(tr: Transaction) -> float:
            ledger = Ledger(tr, db, keys)
            head = ledger.read_head()
            write_window(ledger, head, window_ms)
            ledger.write_head(head)
            return window_ms / 1000

        return self.store.transact(fn, name="retention")

    def retention(self, db: str) -> float:
        """``db``'s retention window in seconds (one snapshot read)."""
        keys = self.keys(db)

        def fn(tr: Transaction) -> float:
            if tr.get(keys.meta, snapshot=True, point="read_meta") is None:
                raise DatabaseNotFound(db)
            return read_window_ms(tr, keys) / 1000

        return self.store.transact(fn, name="retention_get")

    def label(self, db: str, label: str, txid: int | None = None) -> int:
        """Name committed ``txid`` (default: the head) ``label`` (moving an existing
        label); returns the txid. A label does not extend retention."""
        keys = self.keys(db)
        name = check_label(label)
        if txid is not None:
            _check_txid_type(txid)
        return self.store.transact(
            lambda tr: set_label(Ledger(tr, db, keys), name, txid), name="label"
        )

    def resolve(self, db: str, at: int | datetime | str) -> int:
        """The committed txid that ``at`` names: a txid, a timezone-aware datetime (the
        newest commit at or before it) or a label."""
        keys = self.keys(db)
        return self.store.transact(lambda tr: resolve(tr, keys, at), name="resolve")

    def history(self, db: str, *, limit: int | None = None) -> list[HistoryEntry]:
        """The retained commits, newest first: txid, commit time, size, labels."""
        keys = self.keys(db)
        if limit is not None and (not isinstance(limit, int) or limit < 0):
            raise InvalidRequest(f"limit must be None or an integer >= 0, got {limit!r}")
        return self.store.transact(lambda tr: history(tr, keys, limit), name="history")

    def changes_since(self, db: str, txid: int) -> ChangesResult:
        """The newest head and the pages changed in ``(txid, head]``, one store operation."""
        keys = self.keys(db)
        _check_txid_type(txid)
        head, size, changed = self.store.transact(
            lambda tr: changes_since(tr, keys, txid, "read_history"), name="changes_since"
        )
        return ChangesResult(head.head_txid, size, head, changed)

    def fork(
        self,
        src: str,
        dst: str,
        at: int | datetime | str | None = None,
        *,
        progress: Callable[[int, int], None] | None = None,
    ) -> Head:
        """Create the new database ``dst`` holding ``src``'s state (``engine/fork.py``);
        ``progress(done_bytes, total_bytes)`` after each batch. Returns ``dst``'s head."""
        from sqlkv.engine.fork import fork_database
        from sqlkv.engine.restore import resolve_state

        txid = None if at is None else resolve_state(cast("Engine", self), src, at)
        return fork_database(cast("Engine", self), src, dst, txid, progress)

    def restore(
        self,
        db: str,
        to: int | datetime | str,
        *,
        progress: Callable[[int, int], None] | None = None,
    ) -> RestoreResult:
        """Make ``db``'s state at ``to`` its newest state, as one new commit; takes the
        database over (``engine/restore.py``)."""
        from sqlkv.engine.restore import restore_database

        return restore_database(cast("Engine", self), db, to, progress)


def _check_txid_type(txid: object) -> None:
    if not isinstance(txid, int) or isinstance(txid, bool) or txid < 1:
        raise InvalidRequest(f"txid {txid!r} is invalid: committed txids are integers >= 1")
