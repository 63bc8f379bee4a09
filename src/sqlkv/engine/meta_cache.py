"""The META bytes this engine last wrote or was told, per database: what a commit guards.

A commit on a database whose META this engine knows sends its writes with the guard
``M == known bytes`` and reads nothing (``Ledger.assume_head``): one store round trip. The
guard is checked by the store inside the commit's own transaction and joins its
read-conflict set, so the fence is exactly as strong as the serializable META read it
replaces; a stale entry only costs a failed guard, whose answer (the current META) is kept
here and the commit retried on it (``guarded.commit_one``). Nothing here is ever trusted
without the guard.

An entry is replaced only by a newer head: every META write moves one of (generation,
head_txid, next_txid, fold_epoch) forward, so a slow thread cannot put back an older entry
after a newer one. The cache is filled by the engine's own commits, finalizes, stages and
compaction passes and by failed guards; a takeover leaves it empty (the first commit after
an open reads META as before). Bounded: least recently used entries go first.

``turn(db)``: the lock this engine's commits of a database and its compaction applies take
around their store operation (commits, grouped or not, in ``guarded.land``, applies in
``Engine.compact``),
so a pass applies on the META of the owner's last commit instead of failing its guard on
every commit that lands meanwhile (docs/hot-path.md "Compaction of tiny deltas"). Only an
optimization: the guard on META decides, across engines and processes. Striped (a fixed
number of re-entrant locks, each made when first used: ``sqlkv.connect`` builds an engine
per connection, and making all 1,024 cost ~4 µs each, a fifth of a cold open's CPU), so it
costs no memory per database.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from sqlkv.engine.apply import remember_decoded
from sqlkv.engine.head import Head

Order = tuple[int, int, int, int]
TURN_STRIPES = 1024


def order_of(head: Head) -> Order:
    return (head.generation, head.head_txid, head.next_txid, head.fold_epoch)


class MetaCache:
    def __init__(self, max_entries: int = 65_536) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[str, tuple[Order, bytes]] = OrderedDict()
        self._lock = threading.Lock()
        self._turns: dict[int, threading.RLock] = {}

    def turn(self, db: str) -> threading.RLock:
        """The lock of ``db``'s writes in this engine (module docstring)."""
        stripe = hash(db) % TURN_STRIPES
        lock = self._turns.get(stripe)
        if lock is None:  # setdefault is atomic: racing threads get the same lock
            lock = self._turns.setdefault(stripe, threading.RLock())
        return lock

    def get(self, db: str) -> bytes | None:
        with self._lock:
            entry = self._entries.get(db)
            if entry is None:
                return None
            self._entries.move_to_end(db)
            return entry[1]

    def newer(self, db: str, head: Head, raw: bytes) -> bytes:
        """The entry for ``db`` if it is newer than ``head`` (encoded as ``raw``), else ``raw``."""
        with self._lock:
            entry = self._entries.get(db)
        return entry[1] if entry is not None and entry[0] > order_of(head) else raw

    def put(self, db: str, head: Head, raw: bytes) -> None:
        """Remember ``raw`` (the encoding of ``head``, as stored) unless a newer one is held.

        An equal order replaces the entry: a later stage call of the same txid (or any
        write that changes only ``storage_used``) keeps every field of the order and is
        still the newer META."""
        order = order_of(head)
        with self._lock:
            entry = self._entries.get(db)
            if entry is not None and entry[0] > order:
                return
            self._entries[db] = (order, raw)
            self._entries.move_to_end(db)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        remember_decoded(raw, db, head)  # the next commit guards raw: no decode

    def forget(self, db: str) -> None:
        with self._lock:
            self._entries.pop(db, None)
