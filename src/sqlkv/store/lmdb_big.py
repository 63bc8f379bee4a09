"""Keys LMDB cannot hold, in the LMDB store's ``big`` sub-database.

LMDB takes keys of 1 to ``max_key_size`` (511) bytes; the contract allows the empty key
and keys of up to 10 kB. Those live in *buckets*: the bucket key is ``b"." +
key[:510]``, the bucket value every (key, value) with that prefix, sorted
(``encode_bucket``). Truncation keeps order (``k1 < k2`` implies ``bucket(k1) <=
bucket(k2)``), so walking buckets in order and each bucket in order yields keys in order;
range reads merge that walk with ``kv``. Also here: ``seek_ge``, positioning a ``kv``
cursor at a key that may itself be too long for LMDB.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable

import lmdb

from sqlkv.store.lmdb_env import SharedEnv, cursor_key, get

_LEN = struct.Struct(">I")

Pairs = list[tuple[bytes, bytes]]


def seek_ge(cur: lmdb.Cursor, key: bytes, max_key: int) -> bool:
    """Position ``cur`` (on ``kv``, whose keys are 1..max_key bytes) at the first key >= key."""
    if not key:
        return bool(cur.first())
    if len(key) <= max_key:
        return bool(cur.set_range(key))
    # No kv key equals `key`; one equal to its prefix sorts before it.
    prefix = key[:max_key]
    if not cur.set_range(prefix):
        return False
    return bool(cur.next()) if cursor_key(cur) == prefix else True


def bucket_keys(txn: lmdb.Transaction, sh: SharedEnv, begin: bytes, end: bytes) -> list[bytes]:
    """Keys of the stored buckets that may hold keys in ``[begin, end)``, in order."""
    lo, hi = (bucket_key(k, sh.max_key) for k in (begin, end))
    cur = txn.cursor(db=sh.big)
    found = cur.set_range(lo)
    out = []
    while found and cursor_key(cur) <= hi:
        out.append(cursor_key(cur))
        found = cur.next()
    return out


def bucket_key(key: bytes, max_key: int) -> bytes:
    return b"." + key[: max_key - 1]


def encode_bucket(pairs: Iterable[tuple[bytes, bytes]]) -> bytes:
    parts = []
    for k, v in pairs:
        parts += [_LEN.pack(len(k)), k, _LEN.pack(len(v)), v]
    return b"".join(parts)


def decode_bucket(data: bytes) -> Pairs:
    out: Pairs = []
    pos = 0
    while pos < len(data):
        (n,) = _LEN.unpack_from(data, pos)
        k = data[pos + 4 : pos + 4 + n]
        pos += 4 + n
        (n,) = _LEN.unpack_from(data, pos)
        out.append((k, data[pos + 4 : pos + 4 + n]))
        pos += 4 + n
    return out


class Buckets:
    """Changes to the ``big`` sub-database within one write transaction."""

    def __init__(self, sh: SharedEnv, txn: lmdb.Transaction) -> None:
        self._sh = sh
        self._txn = txn
        self._dirty: dict[bytes, dict[bytes, bytes]] = {}

    def _load(self, bkey: bytes) -> dict[bytes, bytes]:
        if bkey not in self._dirty:
            data = get(self._txn, bkey, self._sh.big)
            self._dirty[bkey] = dict(decode_bucket(data)) if data is not None else {}
        return self._dirty[bkey]

    def set(self, key: bytes, value: bytes | None) -> None:
        bucket = self._load(bucket_key(key, self._sh.max_key))
        if value is None:
            bucket.pop(key, None)
        else:
            bucket[key] = value

    def clear_range(self, begin: bytes, end: bytes) -> None:
        lo, hi = (bucket_key(k, self._sh.max_key) for k in (begin, end))
        stored = bucket_keys(self._txn, self._sh, begin, end)
        for bkey in stored + [b for b in self._dirty if lo <= b <= hi]:
            bucket = self._load(bkey)
            for k in [k for k in bucket if begin <= k < end]:
                del bucket[k]

    def flush(self) -> None:
        for bkey, bucket in self._dirty.items():
            if bucket:
                self._txn.put(bkey, encode_bucket(sorted(bucket.items())), db=self._sh.big)
            else:
                self._txn.delete(bkey, db=self._sh.big)
