"""The in-memory PIDX cache: for each database, page number -> (txid, part) of the newest
unfolded copy, so reads and commits do not re-read the PIDX rows from the store.

Loads are cached too (``offer``), when there is room. An entry is valid only for the head
it was loaded or produced at: it is tagged with
(generation, head_txid, fold_epoch), one of which every change of PIDX (takeover, commit,
compaction pass) also changes in META. A reader that finds a different head reloads the rows
inside its own store transaction, so the cache can never serve a stale mapping. A published
map is read-only (``freeze``: a ``MappingProxyType``, so a mutation raises ``TypeError``); an
operation that changes PIDX builds a new dict from it and freezes that.

The cache is bounded by its total number of rows (``EngineConfig.pidx_cache_rows``): an
engine serving many databases keeps the most recently used ones and reloads the others.
"""

from __future__ import annotations

import struct
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING

from xxhash import xxh3_128_digest

from sqlkv.engine.head import Head
from sqlkv.engine.keys import DbKeys
from sqlkv.engine.seal import TAG_SIZE, corrupt, unseal
from sqlkv.errors import CorruptionError

if TYPE_CHECKING:
    from sqlkv.engine.ledger import StoreReader

Location = tuple[int, int]
"""(txid, part) of the DELTA part holding a page."""
PidxMap = Mapping[int, Location]
"""A published PIDX map: page number -> location, read-only."""
Tag = tuple[int, int, int]

PIDX_VALUE_BYTES = 12 + TAG_SIZE  # (txid, part), sealed
_LOC = struct.Struct(">QI")
_PGNO = struct.Struct(">I")


def freeze(rows: dict[int, Location]) -> PidxMap:
    """``rows`` as a read-only map (the caller drops its own reference to the dict)."""
    return MappingProxyType(rows)


def tag_of(head: Head) -> Tag:
    return (head.generation, head.head_txid, head.fold_epoch)


@dataclass(frozen=True)
class _Entry:
    tag: Tag
    rows: PidxMap
    head: Head  # the head the rows belong to (a get_pages plans its reads on it)


class PidxCache:
    def __init__(self, max_rows: int = 1_000_000) -> None:
        self.max_rows = max_rows
        self._entries: OrderedDict[str, _Entry] = OrderedDict()  # least recently used first
        self._rows = 0
        self._lock = threading.Lock()
        self.loads = 0

    @property
    def rows(self) -> int:
        """Rows held now, over every database."""
        return self._rows

    def rows_for(
        self, tr: StoreReader, db: str, keys: DbKeys, head: Head, point: str = "read_pidx"
    ) -> PidxMap:
        """The PIDX rows as of ``head``: from the cache, or read inside ``tr``."""
        with self._lock:
            entry = self._entries.get(db)
            if entry is not None and entry.tag == tag_of(head):
                self._entries.move_to_end(db)
                return entry.rows
        rows = load_rows(tr, keys, head, point)
        self.loads += 1
        self.offer(db, head, rows)
        return rows

    def peek(self, db: str) -> tuple[Head, PidxMap] | None:
        """The head and map cached for ``db`` (valid only if META still has its tag)."""
        with self._lock:
            entry = self._entries.get(db)
            if entry is None:
                return None
            self._entries.move_to_end(db)
            return entry.head, entry.rows

    def offer(self, db: str, head: Head, rows: PidxMap) -> None:
        """Keep ``rows``, read as of ``head`` in one snapshot, if there is room for them
        without evicting another database and the cache holds nothing newer for ``db``.

        A load is valid for its tag whether or not its transaction commits (the rows and
        the head come from one snapshot), so an engine that only serves reads of a database
        (one it never opened or committed to) loads its PIDX once, not on every call.
        Owners' maps (``publish``) may evict; loads may not, so reads of many databases
        never push out the maps of the databases being written through this engine.
        """
        tag = tag_of(head)
        with self._lock:
            entry = self._entries.get(db)
            held = 0
            if entry is not None:
                if all(new <= old for new, old in zip(tag, entry.tag, strict=True)):
                    return  # the cached map is as new or newer
                held = len(entry.rows)
            if self._rows - held + len(rows) > self.max_rows:
                return
            self._drop(db)
            self._entries[db] = _Entry(tag, rows, head)
            self._rows += len(rows)

    def publish(self, db: str, head: Head, rows: PidxMap) -> None:
        """Remember ``rows`` as the PIDX at ``head`` (call only after the commit landed)."""
        if not isinstance(rows, MappingProxyType):
            raise TypeError("only a frozen PIDX map is published (pidx.freeze)")
        with self._lock:
            self._drop(db)
            if len(rows) > self.max_rows:
                return  # larger than the whole cache: reload it each time instead
            self._entries[db] = _Entry(tag_of(head), rows, head)
            self._rows += len(rows)
            while self._rows > self.max_rows:
                self._drop(next(iter(self._entries)))

    def peek_rows(self, db: str) -> PidxMap | None:
        """The map held for ``db`` whatever its tag (possibly stale: only for guessing where
        pages are before reading the head, as ``open`` does), or None."""
        with self._lock:
            entry = self._entries.get(db)
        return None if entry is None else entry.rows

    def forget(self, db: str) -> None:
        with self._lock:
            self._drop(db)

    def _drop(self, db: str) -> None:
        entry = self._entries.pop(db, None)
        if entry is not None:
            self._rows -= len(entry.rows)


def load_rows(tr: StoreReader, keys: DbKeys, head: Head, point: str = "read_pidx") -> PidxMap:
    rows = tr.get_range(*keys.pidx_range(), snapshot=True, point=point)
    return freeze(parse_rows(keys, head, rows))


def parse_rows(keys: DbKeys, head: Head, rows: list[tuple[bytes, bytes]]) -> dict[int, Location]:
    """page number -> (txid, part) from PIDX key/value rows (a new, mutable dict), each
    checked, and as many as ``head.pidx_count`` says (a row the store lost is
    ``CorruptionError``)."""
    out = parse_some_rows(keys, rows)
    if len(out) != head.pidx_count:
        raise CorruptionError(
            keys.name,
            "PIDX",
            "",
            f"{len(out)} PIDX rows are stored but the head counts {head.pidx_count}: rows "
            "were lost or added outside the engine",
        )
    return out


def parse_some_rows(keys: DbKeys, rows: list[tuple[bytes, bytes]]) -> dict[int, Location]:
    """page number -> (txid, part) from some of the PIDX rows, each checked."""
    out: dict[int, Location] = {}
    at = len(keys.prefix) + 1
    check, loc, pgno_of = xxh3_128_digest, _LOC.unpack_from, _PGNO.unpack_from
    for key, value in rows:  # the hot loop of a cold start: kept to a few calls per row
        if len(value) != PIDX_VALUE_BYTES or check(key + value[:12]) != value[12:]:
            unseal(keys, key, value)  # raises the precise CorruptionError
            raise corrupt(keys, key, f"a PIDX row of {len(value)} bytes is malformed")
        out[pgno_of(key, at)[0]] = loc(value)
    return out


def pidx_row_bytes(keys: DbKeys) -> int:
    """Bytes one PIDX row occupies (all rows have the same size)."""
    return len(keys.pidx(0)) + PIDX_VALUE_BYTES
