"""Retention: a per-database window during which every committed txid stays readable
(docs/history.md §5). What compaction keeps, and for how long, is decided here.

Stored per database:

- ``R``: the window in milliseconds and the txid retention started from (absent: 0, no
  retention beyond what compaction has not folded yet). Written at creation when
  ``EngineConfig.retention_s`` > 0, changed by ``Engine.set_retention``; turning retention
  on makes the head of that moment the oldest state it may keep (nothing older was kept).
- ``U {until:u64} {shard:u32}``: a *retired shard version* — the shard as it was before a
  fold or a shrink at txid ``until`` replaced it, valid for txids below ``until``: its state
  txid, the txid it is valid from, its stored bytes (0: the shard did not exist then).
- ``V {until:u64} {shard:u32} {chunk:u32}``: that version's LTX blob (sealed chunks).
- ``G {death:u64} {txid:u64}``: a *retained delta*: folded at a pass whose head was
  ``death`` (so no state from ``death`` on needs it), still kept for older states; its
  stored bytes. The delta's ``D`` chunks stay where they were.

The oldest txid that must stay readable, ``keep_from``, is the newest committed txid whose
commit time is at or before ``now - window`` (the state the database was in at that
moment), or the head without retention. A pass retires a shard version only when some txid
from ``keep_from`` on needs it, keeps a dead delta only when its death is after
``keep_from``, and deletes what no longer is (``trim``).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from functools import partial

from sqlkv.engine.facts import decode_facts, now_ms
from sqlkv.engine.head import Head
from sqlkv.engine.keys import U64_END, DbKeys
from sqlkv.engine.ledger import Ledger, Rows, StoreReader
from sqlkv.engine.seal import corrupt, join_chunks, seal, unseal
from sqlkv.errors import InvalidRequest
from sqlkv.ltx import LtxFile, LtxHeader
from sqlkv.ltx.decoder import read_header

MAX_WINDOW_S = 10 * 365 * 24 * 3600
SCAN_FACTS = 2_000
"""Facts rows a pass reads to find ``keep_from`` (a pass that stops short keeps more)."""
TRIM_ROWS = 5_000
"""Retained deltas, retired versions or facts rows one pass deletes at most (per kind)."""

_VERSION = struct.Struct(">QQQ")  # state, valid from, stored bytes
_U64 = struct.Struct(">Q")
_WINDOW = struct.Struct(">QQ")  # window ms, retained since txid
UNKNOWN = (1 << 64) - 1
"""The state of a retired version that could not be kept (a shrink cutting more than one
transaction can copy): every read that would need it is ``SnapshotTooOld``."""


@dataclass(frozen=True)
class Retired:
    """A retired shard version: valid for txids in ``[valid_from, until)``."""

    shard: int
    until: int
    state: int
    valid_from: int
    stored: int  # bytes of its V chunks (0: the shard did not exist)


# ------------------------------------------------------------------ keys


def retention_key(keys: DbKeys) -> bytes:
    return keys.prefix + b"R"


def version_key(keys: DbKeys, until: int, shard: int) -> bytes:
    return keys.prefix + b"U" + struct.pack(">QI", until, shard)


def version_chunk(keys: DbKeys, until: int, shard: int, chunk: int) -> bytes:
    return keys.prefix + b"V" + struct.pack(">QII", until, shard, chunk)


def version_blob_range(keys: DbKeys, until: int, shard: int) -> tuple[bytes, bytes]:
    base = keys.prefix + b"V" + struct.pack(">QI", until, shard)
    return base, base + b"\xff" * 5


def versions_range(keys: DbKeys, first: int = 0, end: int = U64_END) -> tuple[bytes, bytes]:
    """U rows with ``first <= until < end``."""
    return _span(keys, b"U", first, end)


def version_blobs_range(keys: DbKeys, first: int = 0, end: int = U64_END) -> tuple[bytes, bytes]:
    return _span(keys, b"V", first, end)


def grave_key(keys: DbKeys, death: int, txid: int) -> bytes:
    return keys.prefix + b"G" + struct.pack(">QQ", death, txid)


def graves_range(keys: DbKeys, first: int = 0, end: int = U64_END) -> tuple[bytes, bytes]:
    """G rows with ``first <= death < end``."""
    return _span(keys, b"G", first, end)


def _span(keys: DbKeys, tag: bytes, first: int, end: int) -> tuple[bytes, bytes]:
    base = keys.prefix + tag
    hi = base + struct.pack(">Q", end) if end < U64_END else base + b"\xff" * 9
    return base + struct.pack(">Q", first), hi


# ------------------------------------------------------------------ the window


def read_window_ms(tr: StoreReader, keys: DbKeys, point: str = "read_retention") -> int:
    raw = tr.get(retention_key(keys), snapshot=True, point=point)
    return 0 if raw is None else parse_window(keys, retention_key(keys), raw)[0]


def parse_window(keys: DbKeys, key: bytes, raw: bytes) -> tuple[int, int]:
    """(window ms, retained since txid) in the sealed retention record ``raw``, checked."""
    payload = unseal(keys, key, raw)
    if len(payload) != _WINDOW.size:
        raise corrupt(keys, key, f"a retention record of {len(payload)} bytes is malformed")
    window, since = _WINDOW.unpack(payload)
    return int(window), int(since)


def check_window(window_s: float) -> int:
    """The window in ms; ``InvalidRequest`` outside 0 .. 10 years."""
    if isinstance(window_s, bool) or not isinstance(window_s, int | float):
        raise InvalidRequest(f"a retention window is a number of seconds, got {window_s!r}")
    if not 0 <= window_s <= MAX_WINDOW_S:
        raise InvalidRequest(
            f"retention window {window_s!r} s is outside 0 .. {MAX_WINDOW_S} s (10 years)"
        )
    return round(window_s * 1000)


def write_window(ledger: Ledger, head: Head, window_ms: int) -> None:
    """Set the window (the caller writes META: ``storage_used`` counts the record).
    Turning retention on keeps states from the current head on."""
    key = retention_key(ledger.keys)
    old = ledger.get(key, snapshot=True, point="read_retention")
    before, since = (0, 0) if old is None else parse_window(ledger.keys, key, old)
    if not before:
        since = head.head_txid
    value = seal(key, _WINDOW.pack(window_ms, since))
    if old is None:
        if window_ms:
            ledger.put(key, value)
    else:
        ledger.replace(key, value, len(old))


def put_window(ledger: Ledger, window_ms: int) -> None:
    """The window of a database being created (its range was just cleared)."""
    if window_ms:
        key = retention_key(ledger.keys)
        ledger.put(key, seal(key, _WINDOW.pack(window_ms, 1)))


def keep_from(ledger: Ledger, head: Head, window_ms: int, since: int = 0) -> int:
    """The oldest txid that must stay readable (module docstring)."""
    if window_ms <= 0:
        return head.head_txid
    return max(since, _dated(ledger, head, window_ms))


def _dated(ledger: Ledger, head: Head, window_ms: int) -> int:
    cutoff = now_ms() - window_ms
    keys = ledger.keys
    rows = ledger.get_range(
        *keys.history_range(), limit=SCAN_FACTS, snapshot=True, point="read_history"
    )
    kept = head.head_txid
    first = True
    for txid, group in _whole_blobs(keys, rows):
        try:
            facts = decode_facts(txid, join_chunks(keys, group))
        except ValueError as exc:
            raise corrupt(keys, group[0][0], str(exc)) from None
        if facts.committed_ms > cutoff:
            return txid if first else kept
        kept, first = txid, False
    if len(rows) >= SCAN_FACTS:
        return min(kept, head.head_txid)  # the scan stopped short: keep more
    return head.head_txid if first else kept


def _whole_blobs(keys: DbKeys, rows: Rows) -> list[tuple[int, Rows]]:
    """(txid, chunks) of the blobs wholly inside ``rows`` (a limited read may cut the last)."""
    out: list[tuple[int, Rows]] = []
    for key, value in rows:
        txid = keys.history_txid(key)
        if out and out[-1][0] == txid:
            out[-1][1].append((key, value))
        else:
            out.append((txid, [(key, value)]))
    if out:
        last = out[-1][1]
        (count,) = struct.unpack_from(">I", last[-1][1], len(last[-1][1]) - 20)
        if len(last) != count:
            out.pop()
    return out


# ------------------------------------------------------------------ what a pass keeps


def retire(
    ledger: Ledger,
    shard: int,
    until: int,
    rows: Rows,
    old: LtxHeader | None,
    *,
    absent_from: int = 0,
) -> int:
    """Keep the shard version ``rows`` (decoded: ``old``; None: no shard) for the txids
    before ``until``; returns the bytes written. An absent shard is recorded as absent from
    ``absent_from`` (a txid from which it certainly was: reads below it check the pages)."""
    keys = ledger.keys
    stored = 0
    state, valid_from = 0, absent_from
    if rows and old is not None:
        stored = ledger.put_blob(
            partial(version_chunk, keys, until, shard), join_chunks(keys, rows)
        )
        state, valid_from = old.min_txid, old.max_txid
    key = version_key(keys, until, shard)
    return stored + ledger.put(key, seal(key, _VERSION.pack(state, valid_from, stored)))


def retire_cut_shards(ledger: Ledger, txid: int, rows: Rows) -> None:
    """A shrink at ``txid`` deletes or rewrites the shards in ``rows``: with a retention
    window, keep each as it was for the txids before ``txid`` (compaction trims those no
    state in the window needs). Copies stop at a third of the transaction limit: a shrink
    that cuts more than that keeps the rest unreadable before ``txid`` (docs/history.md)."""
    keys = ledger.keys
    if not rows or not read_window_ms(ledger, keys):
        return
    budget = ledger.limits.max_transaction_bytes // 3
    groups: dict[int, Rows] = {}
    for key, value in rows:
        groups.setdefault(keys.shard_id(key), []).append((key, value))
    for sid, group in sorted(groups.items()):
        if ledger.size + sum(len(k) + len(v) for k, v in group) > budget:
            key = version_key(keys, txid, sid)  # lost: reads that need it say so
            ledger.put(key, seal(key, _VERSION.pack(UNKNOWN, 0, 0)))
            continue
        header = read_header(join_chunks(keys, group))
        retire(ledger, sid, txid, group, header)


def bury(ledger: Ledger, death: int, txid: int, stored: int) -> None:
    """Keep dead delta ``txid`` (``stored`` bytes) for the states before ``death``."""
    key = grave_key(ledger.keys, death, txid)
    ledger.put(key, seal(key, _U64.pack(stored)))


def parse_versions(keys: DbKeys, rows: Rows) -> list[Retired]:
    out = []
    for key, value in rows:
        payload = unseal(keys, key, value)
        if len(payload) != _VERSION.size:
            raise corrupt(keys, key, f"a retired version row of {len(payload)} bytes is malformed")
        until, shard = struct.unpack_from(">QI", key, len(keys.prefix) + 1)
        out.append(Retired(shard, until, *_VERSION.unpack(payload)))
    return out


def parse_graves(keys: DbKeys, rows: Rows) -> list[tuple[int, int, int]]:
    """(death, txid, stored bytes) of G rows."""
    out = []
    for key, value in rows:
        payload = unseal(keys, key, value)
        if len(payload) != 8:
            raise corrupt(keys, key, f"a retained delta row of {len(payload)} bytes is malformed")
        death, txid = struct.unpack_from(">QQ", key, len(keys.prefix) + 1)
        out.append((death, txid, int(_U64.unpack(payload)[0])))
    return out


class Keeper:
    """What one compaction pass keeps for the retention window (one ``get_ranges`` at
    load: the window, the retained deltas and the retired versions; one more for the
    facts that date ``keep_from`` when the window is not 0)."""

    def __init__(self, ledger: Ledger, head: Head) -> None:
        self.ledger = ledger
        self.head = head
        keys = ledger.keys
        window, graves, versions = ledger.get_ranges(
            [
                (retention_key(keys), retention_key(keys) + b"\x00", 1, False),
                (*graves_range(keys), TRIM_ROWS, False),
                (*versions_range(keys), TRIM_ROWS, False),
            ],
            snapshot=True,
            point="read_retained",
        )
        self.window_ms, since = parse_window(keys, *window[0]) if window else (0, 0)
        self._graves = list(zip(parse_graves(keys, graves), graves, strict=True))
        self._graves_cut = len(graves) >= TRIM_ROWS
        self._versions = list(zip(parse_versions(keys, versions), versions, strict=True))
        self.keep = keep_from(ledger, head, self.window_ms, since)
        self.retired = self.buried = self.deltas_trimmed = self.versions_trimmed = 0
        self.retained_bytes = 0  # kept for past states after this pass (a lower bound)
        self._oldest_buried: int | None = None

    @property
    def active(self) -> bool:
        """True when this pass keeps anything for states older than the head."""
        return self.keep < self.head.head_txid

    def replaced(self, shard: int, rows: Rows, old: LtxFile | None) -> None:
        """A fold at the head replaces ``shard`` (``rows``; none: no shard yet): keep the
        old version when a state from ``keep`` on, before the head, needs it."""
        until = self.head.head_txid
        valid_from = old.header.max_txid if old is not None else 0
        if self.active and valid_from < until:
            header = old.header if old is not None else None
            self.retained_bytes += retire(
                self.ledger, shard, until, rows, header, absent_from=self.keep
            )
            self.retired += 1

    def keeps_delta(self) -> bool:
        """A delta that dies at this pass (head ``death``) is kept while a state before
        ``death`` is still retained."""
        return self.active

    def bury(self, txid: int, stored: int) -> None:
        bury(self.ledger, self.head.head_txid, txid, stored)
        self.buried += 1
        self.retained_bytes += stored
        if self._oldest_buried is None:
            self._oldest_buried = txid

    def trim(self, first_live: int) -> int:
        """Delete the retained deltas and retired versions no state from ``keep`` on
        needs; returns the txid below which history facts may go."""
        ledger, keys, keep = self.ledger, self.ledger.keys, self.keep
        oldest_stored = first_live if self._oldest_buried is None else self._oldest_buried
        kept = [stored for (death, _, stored), _ in self._graves if death > keep]
        kept += [v.stored for v, _ in self._versions if v.until > keep]
        self.retained_bytes += sum(kept)
        for (death, txid, stored), row in self._graves:
            if death > keep:
                oldest_stored = min(oldest_stored, txid)
                break
            ledger.drop_counted_range(keys.delta_txid_range(txid), stored)
            ledger.drop_rows([row])
            self.deltas_trimmed += 1
        else:
            if self._graves_cut:  # more rows than one pass reads: the rest is older
                oldest_stored = min(oldest_stored, self._graves[-1][0][1])
        for version, row in self._versions:
            if version.until > keep:
                continue
            if version.stored:
                rng = version_blob_range(keys, version.until, version.shard)
                ledger.drop_counted_range(rng, version.stored)
            ledger.drop_rows([row])
            self.versions_trimmed += 1
        return min(keep, oldest_stored)

    @property
    def changed(self) -> bool:
        return bool(self.retired or self.buried or self.deltas_trimmed or self.versions_trimmed)
