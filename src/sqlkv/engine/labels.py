"""Labels (restore points), resolving a txid / time / label to a committed txid, and the
list of retained commits (docs/history.md §6).

A label is one sealed row ``L {name}`` = ``txid:u64``: it names a committed txid. It does
not extend retention: a labelled state older than the window answers ``SnapshotTooOld``
like any other (set the window to cover the restore points that must stay readable).
Relabelling a name moves it.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from datetime import datetime

from sqlkv.engine.facts import Facts, parse_facts
from sqlkv.engine.head import CREATION_TXID, Head
from sqlkv.engine.keys import DbKeys
from sqlkv.engine.ledger import Ledger, Rows, StoreReader
from sqlkv.engine.seal import corrupt, seal, unseal
from sqlkv.errors import DatabaseNotFound, InvalidRequest, SnapshotTooOld, UnknownLabel

MAX_LABEL_BYTES = 256
_U64 = struct.Struct(">Q")


@dataclass(frozen=True)
class HistoryEntry:
    """One retained commit, newest first in ``history``."""

    txid: int
    committed_ms: int
    db_size_pages: int
    labels: tuple[str, ...] = ()


def label_key(keys: DbKeys, name: str) -> bytes:
    return keys.prefix + b"L" + name.encode("utf-8")


def labels_range(keys: DbKeys) -> tuple[bytes, bytes]:
    return keys.prefix + b"L", keys.prefix + b"M"


def check_label(name: object) -> str:
    if not isinstance(name, str) or not name or len(name.encode("utf-8")) > MAX_LABEL_BYTES:
        raise InvalidRequest(
            f"label {name!r} is invalid: a label is a non-empty string of at most "
            f"{MAX_LABEL_BYTES} UTF-8 bytes"
        )
    if name.strip() != name or name.isdigit():
        raise InvalidRequest(
            f"label {name!r} is invalid: no surrounding spaces, and not all digits "
            "(it would read as a txid)"
        )
    return name


def parse_labels(keys: DbKeys, rows: Rows) -> dict[str, int]:
    out = {}
    at = len(keys.prefix) + 1
    for key, value in rows:
        payload = unseal(keys, key, value)
        if len(payload) != 8:
            raise corrupt(keys, key, f"a label row of {len(payload)} bytes is malformed")
        out[key[at:].decode("utf-8", "replace")] = int(_U64.unpack(payload)[0])
    return out


def _head(tr: StoreReader, keys: DbKeys) -> Head:
    raw = tr.get(keys.meta, snapshot=True, point="read_meta")
    if raw is None:
        raise DatabaseNotFound(keys.name)
    return Head.decode(raw, keys.name)


def _read(tr: StoreReader, keys: DbKeys) -> tuple[dict[int, Facts], dict[str, int]]:
    facts, labels = tr.get_ranges(
        [(*keys.history_range(), 0, False), (*labels_range(keys), 0, False)],
        snapshot=True,
        point="read_history",
    )
    return parse_facts(keys, facts), parse_labels(keys, labels)


def _committed(keys: DbKeys, head: Head, facts: dict[int, Facts], txid: int) -> int:
    if txid == head.head_txid or txid in facts:
        return txid
    if txid == CREATION_TXID and any(f.prev_txid == CREATION_TXID for f in facts.values()):
        return txid
    if isinstance(txid, int) and 1 <= txid < head.head_txid and (not facts or txid < min(facts)):
        raise SnapshotTooOld(
            f"txid {txid} of database {keys.name!r} is older than the history it retains "
            f"(oldest: {min(facts) if facts else head.head_txid}); lengthen the retention "
            "window to keep older states"
        )
    raise InvalidRequest(
        f"txid {txid!r} is not a committed txid of database {keys.name!r} "
        f"(head txid {head.head_txid})"
    )


def resolve(tr: StoreReader, keys: DbKeys, at: int | datetime | str) -> int:
    """The committed txid ``at`` names: a txid, a timezone-aware time (the newest commit at
    or before it) or a label."""
    head = _head(tr, keys)
    facts, labels = _read(tr, keys)
    if isinstance(at, bool):
        raise InvalidRequest(f"{at!r} is not a txid, a time or a label")
    if isinstance(at, int):
        return _committed(keys, head, facts, at)
    if isinstance(at, str):
        if at not in labels:
            known = ", ".join(sorted(labels)[:10]) or "none"
            raise UnknownLabel(
                f"database {keys.name!r} has no label {at!r} (labels: {known}); "
                "create one with label()"
            )
        return labels[at]
    if isinstance(at, datetime):
        if at.tzinfo is None or at.utcoffset() is None:
            raise InvalidRequest(
                f"time {at.isoformat()} has no timezone; give an aware datetime "
                "(for example datetime.now(timezone.utc))"
            )
        ms = int(at.timestamp() * 1000)
        if ms < head.created_ms:
            raise InvalidRequest(
                f"time {at.isoformat()} is before database {keys.name!r} was created"
            )
        older = [t for t, f in facts.items() if f.committed_ms <= ms]
        if older:
            return max(older)
        if facts and min(facts.values(), key=lambda f: f.txid).prev_txid == CREATION_TXID:
            return CREATION_TXID  # before the first commit: the empty database
        if not facts:
            return head.head_txid  # nothing committed since the history began
        raise SnapshotTooOld(
            f"time {at.isoformat()} is older than the history database {keys.name!r} retains "
            f"(its oldest commit kept is txid {min(facts)}); lengthen the retention window"
        )
    raise InvalidRequest(f"{at!r} is not a txid, a time or a label")


def history(tr: StoreReader, keys: DbKeys, limit: int | None) -> list[HistoryEntry]:
    """Retained commits, newest first (at most ``limit``)."""
    _head(tr, keys)
    facts, labels = _read(tr, keys)
    by_txid: dict[int, list[str]] = {}
    for name, txid in sorted(labels.items()):
        by_txid.setdefault(txid, []).append(name)
    out = [
        HistoryEntry(t, f.committed_ms, f.db_size_pages, tuple(by_txid.get(t, ())))
        for t, f in sorted(facts.items(), reverse=True)
    ]
    return out if limit is None else out[:limit]


def set_label(ledger: Ledger, name: str, txid: int | None) -> int:
    """Name ``txid`` (default: the head) ``name``; returns the txid."""
    keys = ledger.keys
    head = ledger.read_head()
    if txid is None:
        txid = head.head_txid
    else:
        facts = parse_facts(
            keys,
            ledger.get_range(
                *keys.history_range(txid, txid + 1), snapshot=True, point="read_history"
            ),
        )
        if txid != head.head_txid and txid not in facts:
            raise InvalidRequest(
                f"txid {txid} is not a retained committed txid of database {ledger.db!r} "
                f"(head txid {head.head_txid}); label a txid listed by history()"
            )
    key = label_key(keys, name)
    value = seal(key, _U64.pack(txid))
    old = ledger.get(key, snapshot=True, point="read_label")
    if old is None:
        ledger.put(key, value)
    else:
        parse_labels(keys, [(key, old)])  # checked before it is replaced
        ledger.replace(key, value, len(old))
    ledger.write_head(head)
    return txid
