"""The engine's history operations (``snapshot``, ``read_at``, ``changes_since``): one
store transaction each, read-only (snapshot reads: they never conflict with, fence or
slow down the owner). ``Engine`` inherits them; the reads are in ``timetravel.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from sqlkv.engine.api import ChangesResult, PagesResult, SnapshotResult
from sqlkv.engine.read import check_pgnos
from sqlkv.engine.timetravel import changes_since, read_at
from sqlkv.errors import InvalidRequest

if TYPE_CHECKING:
    from sqlkv.engine.keys import DbKeys
    from sqlkv.engine.pidx import PidxCache
    from sqlkv.store import Store, Transaction


class HistoryOps:
    """Mixed into ``Engine``: reads of committed states without owning the database."""

    store: Store
    pidx: PidxCache

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

        return self.store.transact(fn, name="snapshot")

    def read_at(self, db: str, txid: int, pgnos: Sequence[int]) -> PagesResult:
        """Pages exactly as of committed ``txid``; ``SnapshotTooOld`` when no longer kept."""
        keys = self.keys(db)
        wanted = check_pgnos(pgnos)
        _check_txid_type(txid)

        def fn(tr: Transaction) -> PagesResult:
            view, _, pages = read_at(tr, keys, self.pidx, txid, wanted, "read_pages")
            return PagesResult(view.head, pages)

        return self.store.transact(fn, name="read_at")

    def changes_since(self, db: str, txid: int) -> ChangesResult:
        """The newest head and the pages changed in ``(txid, head]``, one store operation."""
        keys = self.keys(db)
        _check_txid_type(txid)
        head, size, changed = self.store.transact(
            lambda tr: changes_since(tr, keys, txid, "read_history"), name="changes_since"
        )
        return ChangesResult(head.head_txid, size, head, changed)


def _check_txid_type(txid: object) -> None:
    if not isinstance(txid, int) or isinstance(txid, bool) or txid < 1:
        raise InvalidRequest(f"txid {txid!r} is invalid: committed txids are integers >= 1")
