"""verify: check every key of one database from one snapshot, and report each problem.

``verify_database`` reads META, then walks the database's whole key range in key order
(snapshot reads, ``SCAN_ROWS`` keys at a time, one blob in memory at a time) and checks:

- every value's check (``seal``), every blob's chunks (none missing) and its LTX file
  (fully decoded, file checksum included; header txid, pages inside the shard's range);
- META: its check, its invariants (``Head.validate``), and that its counters agree with
  the keys: ``pidx_count`` PIDX rows, ``shard_count`` shards, ``delta_count`` directory
  rows whose sizes add up to ``delta_bytes``, and ``storage_used`` equal to the bytes stored;
- every PIDX row names an existing delta part, at or below head, that holds that page;
  no PIDX row or shard page above ``db_size_pages``;
- every live delta has a directory row (X) with its exact stored size, and every X row a
  delta; every DELTA above head is a staged part with its manifest (T) and vice versa, and
  the manifest's pages and byte count match the part;
- history facts (H, docs/history.md) decode, describe no txid above head, and the parts
  they name for a stored delta exist and hold those pages; retention rows (R, U, V, G)
  decode, every retired version (U) has exactly its recorded chunks (V) with its state in
  their LTX header, and every retained delta (G) is a folded delta of its recorded size.

It never writes. Problems come back as ``Problem`` rows (kind, location, message), one per
damaged key or broken invariant; ``sqlkv verify`` prints them one per line.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlkv.engine.facts import Facts, decode_facts
from sqlkv.engine.head import CREATION_TXID, Head
from sqlkv.engine.keys import DbKeys, unpack_pidx
from sqlkv.engine.labels import parse_labels
from sqlkv.engine.retention import (
    Retired,
    parse_graves,
    parse_versions,
    parse_window,
    version_key,
)
from sqlkv.engine.seal import describe, join_chunks, unseal
from sqlkv.engine.staging import read_manifest
from sqlkv.errors import CorruptionError, DatabaseNotFound, EngineError, LtxError
from sqlkv.ltx import decode, lock_pgno
from sqlkv.store import Transaction, key_after

SCAN_ROWS = 256


@dataclass(frozen=True)
class Problem:
    kind: str  # META, PIDX, DELTA, SHARD, T, X or unknown
    location: str  # txid/part/chunk, shard/chunk, pgno; empty for the database as a whole
    message: str

    def __str__(self) -> str:
        where = f" {self.location}" if self.location else ""
        return f"{self.kind}{where}: {self.message}"

    def as_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "location": self.location, "message": self.message}


@dataclass
class VerifyReport:
    """What ``verify`` found in one database. ``ok`` when there is no problem."""

    db: str
    head: Head | None
    problems: list[Problem] = field(default_factory=list)
    keys: int = 0
    bytes: int = 0
    pidx_rows: int = 0
    delta_parts: int = 0
    shards: int = 0
    pages_checked: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {
            "db": self.db,
            "ok": self.ok,
            "head_txid": None if self.head is None else self.head.head_txid,
            "generation": None if self.head is None else self.head.generation,
            "keys": self.keys,
            "bytes": self.bytes,
            "pidx_rows": self.pidx_rows,
            "delta_parts": self.delta_parts,
            "shards": self.shards,
            "pages_checked": self.pages_checked,
            "problems": [p.as_dict() for p in self.problems],
        }


def verify_database(tr: Transaction, keys: DbKeys) -> VerifyReport:
    """Check database ``keys.name`` in ``tr``'s snapshot (``DatabaseNotFound`` if no META)."""
    raw = tr.get(keys.meta, snapshot=True, point="read_meta")
    if raw is None:
        raise DatabaseNotFound(keys.name)
    head: Head | None
    report = VerifyReport(keys.name, None)
    try:
        head = Head.decode(raw, keys.name)
    except EngineError as exc:
        report.problems.append(Problem("META", "", _reason(exc)))
        head = None
    report.head = head
    _Scan(tr, keys, report).run()
    return report


def _reason(exc: Exception) -> str:
    return exc.detail if isinstance(exc, CorruptionError) else str(exc)


class _Scan:
    def __init__(self, tr: Transaction, keys: DbKeys, report: VerifyReport) -> None:
        self.tr = tr
        self.keys = keys
        self.report = report
        self.head = report.head
        self.at = len(keys.prefix)
        self.parts: dict[tuple[int, int], set[int] | None] = {}  # part -> pages (None: damaged)
        self.delta_bytes: dict[int, int] = {}  # txid -> bytes of its chunks
        self.part_bytes: dict[tuple[int, int], int] = {}
        self.pidx: dict[int, tuple[int, int]] = {}
        self.manifests: dict[tuple[int, int], tuple[int, list[int]]] = {}
        self.directory: dict[int, int] = {}  # txid -> size in its X row
        self.shard_ids: set[int] = set()
        self.facts: dict[int, Facts] = {}
        self.versions: dict[tuple[int, int], Retired] = {}  # (until, shard) -> U row
        self.version_blobs: dict[tuple[int, int], tuple[int, int, int]] = {}  # size, state, from
        self.graves: dict[int, int] = {}  # txid -> stored bytes in its G row
        self.damaged: set[bytes] = set()  # row keys whose value failed its check

    def problem(self, key: bytes | None, message: str, kind: str = "", location: str = "") -> None:
        if key is not None:
            kind, location = describe(self.keys, key)
        self.report.problems.append(Problem(kind or "database", location, message))

    # ------------------------------------------------------------------ the walk

    def run(self) -> None:
        group: list[tuple[bytes, bytes]] = []
        group_id: tuple[int, ...] | None = None
        for key, value in self._rows():
            self.report.keys += 1
            self.report.bytes += len(key) + len(value)
            blob_id = self._blob_id(key)
            if group and blob_id != group_id:
                self._blob(group_id, group)
                group = []
            if blob_id is not None:
                group_id = blob_id
                group.append((key, value))
            elif key != self.keys.meta:
                self._row(key, value)
        if group:
            self._blob(group_id, group)
        if self.head is not None:
            self._cross_checks(self.head)

    def _rows(self) -> Iterator[tuple[bytes, bytes]]:
        begin, end = self.keys.all_range()
        while True:
            rows = self.tr.get_range(begin, end, limit=SCAN_ROWS, snapshot=True, point="scan")
            yield from rows
            if len(rows) < SCAN_ROWS:
                return
            begin = key_after(rows[-1][0])

    def _blob_id(self, key: bytes) -> tuple[int, ...] | None:
        """(tag, txid, part) / (tag, shard) for a well-formed blob chunk key, else None."""
        if len(key) <= self.at:
            return None
        tag, body = key[self.at], len(key) - self.at - 1
        if tag == ord("D") and body == 16:
            return (tag, *self.keys.delta_txid_part(key))
        if tag == ord("S") and body == 8:
            return (tag, self.keys.shard_id(key))
        if tag == ord("H") and body == 12:
            return (tag, self.keys.history_txid(key))
        if tag == ord("V") and body == 16:
            until, shard = struct.unpack_from(">QI", key, self.at + 1)
            return (tag, until, shard)
        return None

    # ------------------------------------------------------------------ blobs

    def _blob(self, blob_id: tuple[int, ...] | None, rows: list[tuple[bytes, bytes]]) -> None:
        assert blob_id is not None
        if blob_id[0] == ord("H"):
            self._facts(blob_id[1], rows)
            return
        size = sum(len(k) + len(v) for k, v in rows)
        try:
            ltx = decode(join_chunks(self.keys, rows))
        except CorruptionError as exc:
            self.report.problems.append(Problem(exc.kind, exc.location, exc.detail))
            ltx = None
        except LtxError as exc:
            self.problem(rows[0][0], f"its LTX file does not decode: {exc}")
            ltx = None
        pages = {p for p, _ in ltx.pages} if ltx is not None else set()
        self.report.pages_checked += len(pages)
        if blob_id[0] == ord("V"):
            h = ltx.header if ltx is not None else None
            self.version_blobs[(blob_id[1], blob_id[2])] = (
                size,
                h.min_txid if h else -1,
                h.max_txid if h else -1,
            )
            return
        if blob_id[0] == ord("D"):
            txid, part = blob_id[1], blob_id[2]
            self.report.delta_parts += 1
            self.parts[(txid, part)] = pages if ltx is not None else None
            self.part_bytes[(txid, part)] = size
            self.delta_bytes[txid] = self.delta_bytes.get(txid, 0) + size
            if ltx is not None and ltx.header.min_txid != txid:
                self.problem(rows[0][0], f"its LTX header says txid {ltx.header.min_txid}")
            return
        sid = blob_id[1]
        self.report.shards += 1
        self.shard_ids.add(sid)
        if self.head is not None and pages:
            size_ = self.head.shard_size
            outside = [p for p in pages if p // size_ != sid]
            if outside:
                self.problem(rows[0][0], f"it holds page {outside[0]} of another shard")
            above = [p for p in pages if p > self.head.db_size_pages]
            if above:
                self.problem(rows[0][0], f"it holds page {above[0]}, above the database size")

    def _facts(self, txid: int, rows: list[tuple[bytes, bytes]]) -> None:
        try:
            self.facts[txid] = decode_facts(txid, join_chunks(self.keys, rows))
        except CorruptionError as exc:
            self.report.problems.append(Problem(exc.kind, exc.location, exc.detail))
        except ValueError as exc:
            self.problem(rows[0][0], f"its history facts do not decode: {exc}")

    # ------------------------------------------------------------------ rows

    def _row(self, key: bytes, value: bytes) -> None:
        tag, body = (key[self.at], len(key) - self.at - 1) if len(key) > self.at else (-1, 0)
        try:
            if tag == ord("P") and body == 4:
                payload = unseal(self.keys, key, value)
                if len(payload) != 12:
                    raise LtxError(f"a PIDX row of {len(payload)} bytes is malformed")
                self.pidx[self.keys.pidx_pgno(key)] = unpack_pidx(payload)
                self.report.pidx_rows += 1
            elif tag == ord("T") and body == 12:
                self.manifests[self.keys.stage_txid_part(key)] = read_manifest(
                    self.keys, key, value
                )
            elif tag == ord("R") and body == 0:
                parse_window(self.keys, key, value)
            elif tag == ord("U") and body == 12:
                (version,) = parse_versions(self.keys, [(key, value)])
                self.versions[(version.until, version.shard)] = version
            elif tag == ord("L") and body > 0:
                parse_labels(self.keys, [(key, value)])
            elif tag == ord("G") and body == 16:
                ((_, txid, stored),) = parse_graves(self.keys, [(key, value)])
                self.graves[txid] = stored
            elif tag == ord("X") and body == 8:
                payload = unseal(self.keys, key, value)
                if len(payload) != 8:
                    raise LtxError(f"a directory row of {len(payload)} bytes is malformed")
                self.directory[self.keys.delta_dir_txid(key)] = struct.unpack(">Q", payload)[0]
            else:
                self.problem(key, "a key sqlkv does not write")
        except CorruptionError as exc:
            self.report.problems.append(Problem(exc.kind, exc.location, exc.detail))
            self.damaged.add(key)
        except LtxError as exc:
            self.problem(key, str(exc))
            self.damaged.add(key)

    # ------------------------------------------------------------------ invariants

    def _cross_checks(self, head: Head) -> None:
        meta = self.keys.meta
        try:
            head.validate()
        except EngineError as exc:
            self.problem(meta, str(exc))
        self._check_pidx(head)
        self._check_deltas(head)
        self._check_facts(head)
        self._check_retained(head)
        damaged = {describe(self.keys, k)[0] for k in self.damaged}
        counters = [
            ("pidx_count", head.pidx_count, len(self.pidx), "PIDX rows", "PIDX"),
            ("shard_count", head.shard_count, len(self.shard_ids), "shards", ""),
            ("delta_count", head.delta_count, len(self.directory), "directory rows", "X"),
            ("delta_bytes", head.delta_bytes, sum(self.directory.values()), "delta bytes", "X"),
            ("storage_used", head.storage_used, self.report.bytes, "bytes stored", ""),
        ]
        for name, claimed, found, what, kind in counters:
            if kind in damaged:
                continue  # a damaged row is reported already; its count would only echo it
            if claimed != found:
                self.problem(meta, f"{name} is {claimed} but the store holds {found} {what}")

    def _check_pidx(self, head: Head) -> None:
        lock = lock_pgno(head.page_size)
        for pgno, (txid, part) in self.pidx.items():
            key = self.keys.pidx(pgno)
            if pgno > head.db_size_pages or pgno == lock:
                self.problem(key, f"a row for page {pgno}, above the database size or the lock")
            if txid > head.head_txid:
                self.problem(key, f"it names txid {txid}, above head txid {head.head_txid}")
            if (txid, part) not in self.parts:
                self.problem(key, f"it names delta txid {txid} part {part}, which is missing")
                continue
            pages = self.parts[(txid, part)]
            if pages is not None and pgno not in pages:
                self.problem(key, f"delta txid {txid} part {part} does not hold page {pgno}")

    def _check_deltas(self, head: Head) -> None:
        for txid in sorted(self.delta_bytes):
            if txid > head.head_txid:
                continue  # staged: checked against its manifests below
            if txid in self.graves:
                continue  # folded, retained for older states (checked below)
            if txid <= head.materialized_txid and txid not in self.directory:
                self.problem(None, "a folded delta was not deleted", "DELTA", f"txid {txid}")
            elif txid not in self.directory and self.keys.delta_dir(txid) not in self.damaged:
                self.problem(None, "a live delta has no directory row", "DELTA", f"txid {txid}")
        for txid, size in sorted(self.directory.items()):
            key = self.keys.delta_dir(txid)
            if not head.materialized_txid < txid <= head.head_txid:
                self.problem(key, "a directory row for a txid outside the live deltas")
            if self.delta_bytes.get(txid, 0) != size:
                self.problem(
                    key, f"it says {size} bytes, the delta holds {self.delta_bytes.get(txid, 0)}"
                )
        staged = {loc for loc in self.parts if loc[0] > head.head_txid}
        for loc in sorted(staged - set(self.manifests)):
            if self.keys.stage(*loc) in self.damaged:
                continue  # its manifest is reported already
            self.problem(
                None, "a delta part above head with no staging manifest", "DELTA", _loc(loc)
            )
        for loc, (used, pgnos) in sorted(self.manifests.items()):
            key = self.keys.stage(*loc)
            if not head.head_txid < loc[0] < head.next_txid:
                self.problem(key, "a manifest for a txid that is not reserved by a stage")
            if loc not in self.parts:
                self.problem(key, "it names a staged part that is missing")
            elif self.part_bytes[loc] != used or self.parts[loc] not in (None, set(pgnos)):
                self.problem(key, "its byte count or pages disagree with the staged part")

    def _check_retained(self, head: Head) -> None:
        for txid, stored in sorted(self.graves.items()):
            where = f"txid {txid}"
            if txid in self.directory or txid > head.materialized_txid:
                self.problem(None, "a retained delta that is not folded", "G", where)
            if self.delta_bytes.get(txid, 0) != stored:
                found = self.delta_bytes.get(txid, 0)
                self.problem(None, f"it says {stored} bytes, the delta holds {found}", "G", where)
        for (until, shard), version in sorted(self.versions.items()):
            key = version_key(self.keys, until, shard)
            blob = self.version_blobs.get((until, shard))
            if version.stored == 0:  # absent, or lost (UNKNOWN)
                if blob is not None:
                    self.problem(key, "an absent shard version has chunks")
                continue
            if blob is None:
                self.problem(key, "its retired shard version's chunks are missing")
            elif blob[0] != version.stored or blob[1:] not in (
                (version.state, version.valid_from),
                (-1, -1),
            ):
                self.problem(key, "its size or state disagrees with its chunks")
        for until, shard in sorted(set(self.version_blobs) - set(self.versions)):
            self.problem(
                version_key(self.keys, until, shard), "retired shard chunks without their row"
            )

    def _check_facts(self, head: Head) -> None:
        # Compaction keeps the facts of every committed txid from materialized_txid on:
        # follow the chain back from the head (txids committed before this sqlkv wrote
        # facts end it: a database that has none yet is not checked).
        txid = head.head_txid
        while self.facts and txid >= head.materialized_txid and txid > CREATION_TXID:
            facts = self.facts.get(txid)
            if facts is None:
                self.problem(
                    self.keys.history_chunk(txid, 0),
                    f"the history facts of txid {txid} are missing",
                )
                break
            if facts.prev_txid >= txid:
                self.problem(self.keys.history_chunk(txid, 0), "its previous txid is not older")
                break
            txid = facts.prev_txid
        for txid, facts in sorted(self.facts.items()):
            key = self.keys.history_chunk(txid, 0)
            if txid > head.head_txid:
                self.problem(key, f"history facts of txid {txid}, above head txid {head.head_txid}")
            if txid not in self.directory:
                continue  # its delta was folded and deleted (or it wrote no page)
            for part, pgnos in facts.parts:
                pages = self.parts.get((txid, part), set())
                if pages is not None and not set(pgnos) <= pages:
                    self.problem(key, f"it names pages of delta part {part} that the part lacks")


def _loc(loc: tuple[int, int]) -> str:
    return f"txid {loc[0]} part {loc[1]}"
