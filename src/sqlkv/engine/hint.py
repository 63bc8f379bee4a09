"""save_hint: remember which pages the owner read first, so the next open returns them.

The hint is one sealed row per database (``N``, docs/key-layout.md): a format byte and
the page numbers, in the order the owner first read them (page 1, the schema, the B-tree
interior pages and whatever leaves its first queries touched). The client sends it when
its connection closes (``vfs/v2/connection.py``), and only when the pages it read first
were not what its open returned. ``open`` (``takeover.py``) reads the hint in its first
store operation and returns those pages with the answer, up to ``preload_bytes``.

One store transaction: META and the old hint in one read (META serializably, so a
takeover since makes the caller's generation stale: ``FenceMismatch``), then the new hint
and META with ``storage_used`` adjusted through the ``Ledger``. No quota check: the row is
bounded (``MAX_HINT_PAGES``) and a hint must never be what refuses a database its pages.
An identical hint writes nothing. A damaged hint is only a hint: ``open`` ignores it (and
logs it); ``verify`` reports it.
"""

from __future__ import annotations

import struct
import threading
import weakref
from collections import OrderedDict
from collections.abc import Sequence
from typing import TYPE_CHECKING

from sqlkv.engine.apply import check_generation
from sqlkv.engine.head import Head
from sqlkv.engine.keys import DbKeys
from sqlkv.engine.ledger import Ledger
from sqlkv.engine.pidx import PidxMap
from sqlkv.engine.read import check_pgnos
from sqlkv.engine.seal import corrupt, seal, unseal

if TYPE_CHECKING:
    from sqlkv.store.base import Store

HINT_FORMAT = 1
MAX_HINT_PAGES = 4096
"""Bound on the pages one hint names (16 KiB of page numbers), whatever ``preload_bytes``."""


def encode_hint(key: bytes, pgnos: Sequence[int]) -> bytes:
    """The sealed value of the hint row for ``pgnos``."""
    return seal(key, struct.pack(f">B{len(pgnos)}I", HINT_FORMAT, *pgnos))


def decode_hint(keys: DbKeys, value: bytes) -> list[int]:
    """The page numbers of a stored hint, checked (``CorruptionError`` otherwise)."""
    raw = unseal(keys, keys.hint, value)
    if not raw or raw[0] != HINT_FORMAT or (len(raw) - 1) % 4:
        raise corrupt(keys, keys.hint, f"a hint of {len(raw)} bytes is malformed")
    count = (len(raw) - 1) // 4
    if count > MAX_HINT_PAGES:
        raise corrupt(keys, keys.hint, f"a hint of {count} pages is over {MAX_HINT_PAGES}")
    return list(struct.unpack_from(f">{count}I", raw, 1))


def hint_pages(pgnos: Sequence[int], max_pages: int) -> list[int]:
    """``pgnos`` checked, first occurrences only, at most ``max_pages`` of them."""
    seen: dict[int, None] = {}
    for p in check_pgnos(pgnos):
        if len(seen) >= min(max_pages, MAX_HINT_PAGES):
            break
        seen.setdefault(p)
    return list(seen)


def save_hint(ledger: Ledger, generation: int, pgnos: Sequence[int], max_pages: int) -> Head:
    """Store ``pgnos`` (bounded by ``max_pages``) as the database's hint; the head after."""
    keys = ledger.keys
    head, old = ledger.read_head_with(keys.hint, point="read_meta")
    check_generation(ledger.db, head, generation)
    wanted = hint_pages(pgnos, max_pages)
    new = encode_hint(keys.hint, wanted) if wanted else None
    if new == old:
        return head
    if old is None:
        assert new is not None
        ledger.put(keys.hint, new)
    elif new is None:
        ledger.drop(keys.hint, len(old))
    else:
        ledger.replace(keys.hint, new, len(old))
    return ledger.write_head(head)


class HintMemory:
    """The last hint an engine read or saved per database (the most recent ``size``
    databases), with where its pages were when last seen (the delta parts the PIDX named;
    any age): ``open`` reads the blobs of those pages in its first store operation."""

    def __init__(self, size: int = 4096) -> None:
        self.size = size
        self._hints: OrderedDict[str, tuple[tuple[int, ...], PidxMap]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, db: str, default: tuple[int, ...] = ()) -> tuple[int, ...]:
        with self._lock:
            entry = self._hints.get(db)
        return default if entry is None else entry[0]

    def where(self, db: str) -> PidxMap:
        """The delta parts that held the hint's pages when it was put (possibly stale)."""
        with self._lock:
            entry = self._hints.get(db)
        return {} if entry is None else entry[1]

    def put(self, db: str, pgnos: Sequence[int], where: PidxMap | None = None) -> None:
        """Remember ``pgnos`` and, of ``where`` (a PIDX map), the rows of those pages."""
        found = {p: where[p] for p in pgnos if p in where} if where else {}
        with self._lock:
            self._hints.pop(db, None)
            if pgnos:
                self._hints[db] = (tuple(pgnos), found)
                if len(self._hints) > self.size:
                    self._hints.popitem(last=False)


_shared: weakref.WeakKeyDictionary[Store, HintMemory] = weakref.WeakKeyDictionary()
_shared_lock = threading.Lock()


def shared_hints(store: Store) -> HintMemory:
    """The process's one ``HintMemory`` for the engines ``sqlkv.connect`` builds on
    ``store`` (one engine per connection): a connection's open then knows the hint the
    previous connection read or saved, and reads its pages' blobs in its first store
    operation (docs/open-and-preload.md). Only a guess, as every ``HintMemory``."""
    with _shared_lock:
        memory = _shared.get(store)
        if memory is None:
            memory = _shared[store] = HintMemory()
        return memory
