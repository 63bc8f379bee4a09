"""Store rewind detection: the newest head of each database this engine acknowledged, so
that a head older than it is reported as lost commits (``StoreRewound``), not mistaken for
a takeover.

A head only moves forward: ``head_txid`` never decreases (takeover keeps it, compaction does
not touch it) and ``generation`` never decreases. So a head of the same database
(``created_ms`` identifies one creation: a deleted and re-created database starts over)
with a smaller ``head_txid`` or ``generation`` than one acknowledged means the store went
back in time: it crashed with fsync off, was restored from a backup, or fails over to a
replica that lags.

Only acknowledgements that finished before a transaction began are compared with what it
reads: a read whose snapshot is older than a commit that lands while it runs is not a
rewind. So each acknowledgement gets a sequence number, callers take ``now()`` before
their store transaction and pass it as ``since``; a newer acknowledgement skips the check.

Reporting is once per loss: ``check`` raises and then adopts the store's head, so the
database stays usable through this engine (a client that had acknowledged the lost commits
detects the loss itself, in the VFS). The table is bounded (least recently used go).
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict

from sqlkv.engine.head import Head
from sqlkv.errors import StoreRewound

log = logging.getLogger("sqlkv.engine")

_Mark = tuple[int, int, int]  # created_ms, generation, head_txid


def rewound(acknowledged: Head | _Mark, found: Head) -> bool:
    """True when ``found`` is older than ``acknowledged`` (the same database's heads)."""
    mark = _mark(acknowledged) if isinstance(acknowledged, Head) else acknowledged
    created, generation, head_txid = mark
    if created != found.created_ms:
        return False
    return found.head_txid < head_txid or found.generation < generation


def _mark(head: Head) -> _Mark:
    return (head.created_ms, head.generation, head.head_txid)


class AckedHeads:
    def __init__(self, max_databases: int = 65536) -> None:
        self.max_databases = max_databases
        self._marks: OrderedDict[str, tuple[_Mark, int]] = OrderedDict()  # mark, sequence
        self._lock = threading.Lock()
        self._sequence = 0

    def now(self) -> int:
        """The sequence number of the latest acknowledgement (take it before a transaction)."""
        with self._lock:
            return self._sequence

    def ack(self, db: str, head: Head) -> None:
        """Remember ``head`` as acknowledged (keeps the newest)."""
        mark = _mark(head)
        with self._lock:
            self._sequence += 1
            held = self._marks.get(db)
            old = held[0] if held else None
            if old is None or old[0] != mark[0] or (old[2], old[1]) <= (mark[2], mark[1]):
                self._marks[db] = (mark, self._sequence)
            self._marks.move_to_end(db)
            while len(self._marks) > self.max_databases:
                self._marks.popitem(last=False)

    def check(self, db: str, found: Head, *, since: int, taken_over: bool = False) -> None:
        """Raise ``StoreRewound`` when ``found`` is older than what was acknowledged before
        ``since`` (``now()`` taken before the transaction that read ``found`` began).
        ``taken_over``: ``found`` is the head an open just wrote (its generation is one
        more than the store held)."""
        with self._lock:
            held = self._marks.get(db)
            if held is None or held[1] > since:
                return  # nothing acknowledged, or acknowledged while this read ran
            mark = held[0]
            older = found
            if taken_over:
                older = found.with_changes(generation=found.generation - 1)
            if not rewound(mark, older):
                return
            self._sequence += 1
            self._marks[db] = (_mark(found), self._sequence)  # reported once: adopt it
        log.error(
            "store rewound: acknowledged commits lost",
            extra={
                "db": db,
                "acknowledged_txid": mark[2],
                "acknowledged_generation": mark[1],
                "found_txid": found.head_txid,
                "found_generation": found.generation,
            },
        )
        raise StoreRewound(db, mark[2], found.head_txid)
