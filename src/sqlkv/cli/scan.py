"""Walking the store's key space for the admin commands: list, inspect, delete.

Everything here reads with snapshot reads (no conflicts with running clients) and pages
through ranges ``SCAN_ROWS`` keys at a time, so memory stays bounded however large a
database is. Database names are found by skipping from one database's key range to the
next: one short range read per database, not a read of every key.

The key ranges come from ``sqlkv.keyspace`` (a database's prefix) and its two layouts:
``DbKeys(name).all_range()`` for v2, and ``prefix .. prefix + 0xFF`` for v1 (v1 sub-keys
start with ``META/`` or ``CHUNK/``, never 0xFF).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from sqlkv.engine.head import Head
from sqlkv.engine.keys import DbKeys
from sqlkv.errors import EngineError
from sqlkv.keyspace import FORMAT_V1, FORMAT_V2, db_prefix, decode_db_prefix
from sqlkv.store import KeyRange, Store, Transaction, key_after
from sqlkv.vfs.v1.keys import ROLES, FileKeys, decode_size, migration_state_key

SCAN_ROWS = 256
DELETE_ROWS = 100
"""Keys removed per delete transaction: at most 100 values (about 10 MB at the store's
100 kB value limit) read and cleared at once."""
FORMAT_NAMES = {FORMAT_V1: "v1", FORMAT_V2: "v2"}


def v1_range(name: str) -> KeyRange:
    prefix = db_prefix(FORMAT_V1, name)
    return prefix, prefix + b"\xff"


def db_range(fmt: str, name: str) -> KeyRange:
    return DbKeys(name).all_range() if fmt == "v2" else v1_range(name)


# --------------------------------------------------------------------------- list


@dataclass(frozen=True)
class DatabaseEntry:
    """One database found in the store. ``complete`` is False for keys without a head
    (v2) or main-file metadata (v1): what an interrupted delete leaves."""

    name: str
    format: str
    size_bytes: int | None
    storage_used: int | None
    complete: bool
    note: str | None = None

    def as_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self)


def list_databases(store: Store) -> list[DatabaseEntry]:
    """Every database in ``store``, v1 and v2, in key order (format, then name)."""

    def walk(tr: Transaction) -> list[DatabaseEntry]:
        out: list[DatabaseEntry] = []
        cursor = FORMAT_V1
        end = bytes([FORMAT_V2[0] + 1])
        while True:
            rows = tr.get_range(cursor, end, limit=1, snapshot=True)
            if not rows:
                return out
            key = rows[0][0]
            try:
                fmt, name, length = decode_db_prefix(key)
            except (ValueError, UnicodeDecodeError):
                cursor = key_after(key)  # not a key sqlkv wrote: step over it
                continue
            prefix = key[:length]
            out.append(_entry(tr, FORMAT_NAMES[fmt], name))
            cursor = prefix + b"\xff"

    return store.transact(walk)


def _entry(tr: Transaction, fmt: str, name: str) -> DatabaseEntry:
    if fmt == "v2":
        raw = tr.get(DbKeys(name).meta, snapshot=True)
        if raw is None:
            return DatabaseEntry(name, fmt, None, None, False)
        try:
            head = Head.decode(raw, name)
        except EngineError:
            return DatabaseEntry(name, fmt, None, None, False)
        return DatabaseEntry(
            name, fmt, head.db_size_pages * head.page_size, head.storage_used, True
        )
    raw = tr.get(FileKeys(name, "db").meta, snapshot=True)
    if raw is None:
        if tr.get(migration_state_key(name), snapshot=True) is not None:
            return DatabaseEntry(name, fmt, None, None, True, "migrated to v2; record only")
        return DatabaseEntry(name, fmt, None, None, False)
    try:
        size = decode_size(raw)
    except ValueError:
        return DatabaseEntry(name, fmt, None, None, False)
    return DatabaseEntry(name, fmt, size, None, True)


# --------------------------------------------------------------------------- inspect


@dataclass
class KeyFamily:
    """Keys of one kind: how many, how many distinct objects (txids, shards), how big."""

    keys: int = 0
    objects: int = 0
    bytes: int = 0
    _last: object = None

    def add(self, obj: object, nbytes: int) -> None:
        self.keys += 1
        self.bytes += nbytes
        if obj != self._last:
            self.objects += 1
            self._last = obj

    def as_dict(self) -> dict[str, int]:
        return {"keys": self.keys, "objects": self.objects, "bytes": self.bytes}


@dataclass
class V2Scan:
    """A v2 database as its keys show it, read in one snapshot with its head."""

    head: Head
    families: dict[str, KeyFamily] = field(default_factory=dict)
    total_bytes: int = 0
    unknown_keys: int = 0

    def family(self, name: str) -> KeyFamily:
        return self.families.setdefault(name, KeyFamily())


V2_TAGS = {
    ord("M"): "meta",
    ord("P"): "pidx",
    ord("D"): "deltas",
    ord("S"): "shards",
    ord("T"): "staged",
    ord("X"): "delta_directory",
    ord("H"): "history",
}


def scan_v2(store: Store, name: str) -> V2Scan | None:
    """Count the keys of v2 database ``name`` by kind; None if it has no head."""
    keys = DbKeys(name)

    def walk(tr: Transaction) -> V2Scan | None:
        raw = tr.get(keys.meta, snapshot=True)
        if raw is None:
            return None
        scan = V2Scan(Head.decode(raw, name))
        for fam in (
            "deltas",
            "staged_deltas",
            "shards",
            "pidx",
            "delta_directory",
            "staged",
            "history",
        ):
            scan.family(fam)
        at = len(keys.prefix)
        for key, value in _paged(tr, keys.all_range()):
            size = len(key) + len(value)
            scan.total_bytes += size
            kind = V2_TAGS.get(key[at]) if len(key) > at else None
            if kind == "deltas":
                txid, _ = keys.delta_txid_part(key)
                if txid > scan.head.head_txid:  # staged, not yet finalized
                    kind = "staged_deltas"
                scan.family(kind).add(txid, size)
            elif kind == "shards":
                scan.family(kind).add(keys.shard_id(key), size)
            elif kind == "history":
                scan.family(kind).add(keys.history_txid(key), size)
            elif kind is not None:
                scan.family(kind).add(key, size)
            else:
                scan.unknown_keys += 1
        return scan

    return store.transact(walk)


@dataclass
class V1Scan:
    name: str
    files: dict[str, int | None]
    chunks: KeyFamily
    total_bytes: int


def scan_v1(store: Store, name: str) -> V1Scan | None:
    """The files and chunks of v1 database ``name``; None if it has no keys."""

    def walk(tr: Transaction) -> V1Scan | None:
        files: dict[str, int | None] = {}
        for role in ROLES:
            raw = tr.get(FileKeys(name, role).meta, snapshot=True)
            files[role] = decode_size(raw) if raw is not None else None
        chunks = KeyFamily()
        total = 0
        prefix_len = len(db_prefix(FORMAT_V1, name))
        for key, value in _paged(tr, v1_range(name)):
            total += len(key) + len(value)
            if key[prefix_len:].startswith(b"CHUNK/"):
                chunks.add(key[: key.rindex(b"/")], len(key) + len(value))
        if total == 0:
            return None
        return V1Scan(name, files, chunks, total)

    return store.transact(walk)


def _paged(tr: Transaction, rng: KeyRange) -> Iterator[tuple[bytes, bytes]]:
    """Every row of ``rng``, read ``SCAN_ROWS`` at a time in ``tr``'s snapshot."""
    begin, end = rng
    while True:
        rows = tr.get_range(begin, end, limit=SCAN_ROWS, snapshot=True)
        yield from rows
        if len(rows) < SCAN_ROWS:
            return
        begin = key_after(rows[-1][0])


# --------------------------------------------------------------------------- delete


@dataclass
class DeleteResult:
    keys: int = 0
    bytes: int = 0
    transactions: int = 0


class Recreated(Exception):
    """The database was opened (and so created) again while it was being deleted."""


def delete_database(
    store: Store, name: str, fmt: str, *, progress: Callable[[int, int], None] = lambda k, b: None
) -> DeleteResult:
    """Remove every key of database ``name`` in format ``fmt`` and nothing else.

    First, in one transaction, the keys that make it a database (the v2 head; the v1 files'
    metadata, per docs/design.md §6), so no client can read or commit to it any more; then the rest
    of its range, ``DELETE_ROWS`` keys per transaction. A crash in between leaves orphaned
    keys that ``sqlkv list`` shows as incomplete and a new ``delete`` removes. If a client
    opens (re-creates) the database meanwhile, ``Recreated`` is raised.
    """
    result = DeleteResult()
    begin, end = db_range(fmt, name)
    anchors = [DbKeys(name).meta] if fmt == "v2" else [FileKeys(name, r).meta for r in ROLES]

    def drop_anchors(tr: Transaction) -> tuple[int, int]:
        values = tr.get_many(anchors)
        found = [(k, v) for k, v in zip(anchors, values, strict=True) if v is not None]
        for key, _ in found:
            tr.clear(key)
        return len(found), sum(len(k) + len(v) for k, v in found)

    def sweep(tr: Transaction) -> tuple[int, int, bool]:
        if any(v is not None for v in tr.get_many(anchors, snapshot=True)):
            raise Recreated(name)
        rows = tr.get_range(begin, end, limit=DELETE_ROWS, snapshot=True)
        if rows:
            tr.clear_range(begin, key_after(rows[-1][0]))
        return len(rows), sum(len(k) + len(v) for k, v in rows), len(rows) < DELETE_ROWS

    n, nbytes = store.transact(drop_anchors)
    result.keys, result.bytes, result.transactions = n, nbytes, 1
    progress(result.keys, result.bytes)
    while True:
        n, nbytes, done = store.transact(sweep)
        result.keys += n
        result.bytes += nbytes
        result.transactions += 1
        progress(result.keys, result.bytes)
        if done:
            return result
