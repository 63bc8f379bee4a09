"""The LMDB store: the embedded candidate that lost on measurement (``bench/bench_store.py``).

An LMDB environment (``DIR/data.mdb`` + ``DIR/lock.mdb``) with four sub-databases:

- ``kv``: keys of 1 to ``max_key_size`` (511) bytes, stored as they are, value byte for byte.
- ``big``: keys LMDB cannot hold (the empty key, and keys longer than 511 bytes; the
  contract allows 10 kB). They live in *buckets*: the bucket key is ``b"." +
  key[:510]``, the bucket value every (key, value) with that prefix, sorted
  (``_encode_bucket``). Truncation keeps order (``k1 < k2`` implies
  ``bucket(k1) <= bucket(k2)``), so walking buckets in order and each bucket in order
  yields keys in order; range reads merge that walk with ``kv``.
- ``log``: the conflict log, ``version`` (u64 big-endian) -> wall-clock time (f64) and the
  commit's write ranges (``encode_ranges``), pruned after ``conflict_window_s``.
- ``meta``: ``format``; ``state`` = (version, floor) as two u64. Invariant: ``floor <=
  version``; log rows with ``version <= floor`` are gone.

Conflicts are checked exactly as in the embedded store (``embedded.py``): a snapshot is an
LMDB read transaction and reads ``version`` in it; a commit, in LMDB's single write
transaction, refuses with ``ConflictError`` when a log row after its read version meets
its read ranges, and with ``TransactionTooOld`` when its read version is below ``floor``.

LMDB allows one environment per directory per process, so store objects on the same
directory share one (``_SharedEnv``); the first opener's ``fsync``/``map_size`` apply.

The map is reserved as address space, not disk (1 TiB by default; the file grows with
the data). When it is full anyway, the commit grows it (doubling) and retries. LMDB can
only remap with no transaction open in the process, so growth (and adopting a size grown
by another process) waits for this process's open snapshots to finish, up to
``resize_wait_s``, and blocks new ones meanwhile.

Durability: ``fsync=False`` (default) opens with ``MDB_NOSYNC``: pages are written with
``pwrite`` at commit, so a killed process loses nothing, but an OS crash or power loss may
lose the last commits (and, on filesystems that reorder writes, the file). ``fsync=True``
syncs every commit.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import struct
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from operator import itemgetter
from pathlib import Path
from typing import cast

import lmdb

from sqlkv.errors import (
    ConfigError,
    ConflictError,
    SqlkvError,
    StoreError,
    StoreUnavailable,
    TransactionTooOld,
)
from sqlkv.store.base import (
    CommitRequest,
    KeyRange,
    Limits,
    RetryPolicy,
    Snapshot,
    Store,
    ranges_intersect,
)
from sqlkv.store.embedded import (
    DEFAULT_CONFLICT_WINDOW_S,
    PRUNE_EVERY_S,
    decode_ranges,
    encode_ranges,
    make_store_directory,
)

FORMAT = 1
DEFAULT_MAP_SIZE = 1 << 40  # address space only; the file grows with the data
_U64 = struct.Struct(">Q")
_STATE = struct.Struct(">QQ")  # version, floor
_TS = struct.Struct(">d")
_LEN = struct.Struct(">I")

Pairs = list[tuple[bytes, bytes]]

# --------------------------------------------------------------------------- errors

# lmdb error class -> (our class, what to tell the user). The first matching row wins.
_ERRORS: list[tuple[type[lmdb.Error], type[SqlkvError], str]] = [
    (lmdb.MapFullError, StoreError, "the LMDB map is full and could not grow; raise map_size"),
    (lmdb.MapResizedError, StoreUnavailable, "another process grew the map; retry"),
    (lmdb.ReadersFullError, StoreUnavailable, "too many open transactions; raise max_readers"),
    (lmdb.TlsFullError, StoreUnavailable, "too many open transactions in this thread"),
    (lmdb.LockError, StoreUnavailable, "the LMDB lock is unavailable; retry"),
    (lmdb.ReadonlyError, ConfigError, "the store is read-only; check permissions"),
    (lmdb.VersionMismatchError, ConfigError, "the store was written by another LMDB version"),
    (lmdb.IncompatibleError, ConfigError, "the store's files are not an LMDB environment"),
    (lmdb.InvalidError, ConfigError, "the store's files are not an LMDB environment"),
    (lmdb.CorruptedError, StoreError, "the store is corrupt; restore it from a backup"),
    (lmdb.PageNotFoundError, StoreError, "the store is corrupt; restore it from a backup"),
    (lmdb.PanicError, StoreError, "LMDB hit a fatal error; reopen the store"),
    (lmdb.DiskError, StoreError, "an I/O error reading or writing the store"),
    (lmdb.BadValsizeError, StoreError, "LMDB refused a key size (a bug in this driver)"),
]


def _translate(exc: lmdb.Error, path: Path) -> SqlkvError:
    for cls, ours, advice in _ERRORS:
        if isinstance(exc, cls):
            return ours(f"LMDB store {str(path)!r}: {advice} ({exc})")
    return StoreError(f"LMDB store {str(path)!r}: LMDB error: {exc}")


@contextlib.contextmanager
def _lmdb_errors(path: Path) -> Iterator[None]:
    try:
        yield
    except lmdb.Error as exc:
        raise _translate(exc, path) from exc


# --------------------------------------------------------------------------- one env per dir


class _SharedEnv:
    """The process's one LMDB environment for a directory, and the gate that lets it remap.

    ``active`` counts open transactions of this process; a remap waits for it to reach 0
    and holds new transactions back meanwhile (``resizing``).
    """

    def __init__(self, path: Path, env: lmdb.Environment) -> None:
        self.path = path
        self.env = env
        self.kv = env.open_db(b"kv")
        self.big = env.open_db(b"big")
        self.log = env.open_db(b"log")
        self.meta = env.open_db(b"meta")
        self.max_key = env.max_key_size()
        self.write_lock = threading.Lock()
        self.refs = 0
        self._cond = threading.Condition()
        self._active = 0
        self._resizing = False

    def begin(self, *, write: bool) -> lmdb.Transaction:
        """A transaction, counted in ``active`` until ``end`` (adopts a grown map)."""
        for _ in range(3):
            with self._cond:
                self._cond.wait_for(lambda: not self._resizing)
                self._active += 1
            try:
                return self.env.begin(write=write)
            except lmdb.MapResizedError:
                self.end_count()
                self.remap(0, wait_s=10.0)
            except BaseException:
                self.end_count()
                raise
        raise StoreUnavailable(
            f"LMDB store {str(self.path)!r}: the map kept growing under us; retry"
        )

    def end(self, txn: lmdb.Transaction) -> None:
        """Abort ``txn`` (a no-op once committed) and stop counting it."""
        try:
            txn.abort()
        finally:
            self.end_count()

    def end_count(self) -> None:
        with self._cond:
            self._active -= 1
            if self._active == 0:
                self._cond.notify_all()

    def remap(self, new_size: int, *, wait_s: float) -> None:
        """``set_mapsize(new_size)`` (0 adopts another process's size) once nothing is open."""
        with self._cond:
            if self._resizing:  # another thread is at it; its result serves us too
                self._cond.wait_for(lambda: not self._resizing)
                return
            self._resizing = True
            try:
                if not self._cond.wait_for(lambda: self._active == 0, timeout=wait_s):
                    raise StoreUnavailable(
                        f"LMDB store {str(self.path)!r}: the map must grow but transactions "
                        f"stayed open for {wait_s:g} s; finish them and retry"
                    )
                self.env.set_mapsize(new_size)
            finally:
                self._resizing = False
                self._cond.notify_all()


_envs: dict[Path, _SharedEnv] = {}
_envs_lock = threading.Lock()


# --------------------------------------------------------------------------- store


class LmdbStore(Store):
    """A store in an LMDB environment inside ``path`` (created if missing)."""

    def __init__(
        self,
        path: Path | str,
        *,
        limits: Limits | None = None,
        retry: RetryPolicy | None = None,
        fsync: bool = False,
        map_size: int = DEFAULT_MAP_SIZE,
        max_readers: int = 1024,
        conflict_window_s: float = DEFAULT_CONFLICT_WINDOW_S,
        resize_wait_s: float = 10.0,
    ) -> None:
        super().__init__(limits=limits, retry=retry)
        if conflict_window_s <= 0:
            raise ConfigError(f"conflict_window_s must be > 0, got {conflict_window_s!r}")
        self.path = make_store_directory(Path(path), "LMDB store")
        self.url = "lmdb://" + self.path.as_posix()
        self.conflict_window_s = conflict_window_s
        self.resize_wait_s = resize_wait_s
        self._next_prune = 0.0
        self._closed = False
        with _envs_lock:
            shared = _envs.get(self.path)
            if shared is None:
                shared = self._open_env(fsync, map_size, max_readers)
                _envs[self.path] = shared
            shared.refs += 1
        self._shared = shared

    def _open_env(self, fsync: bool, map_size: int, max_readers: int) -> _SharedEnv:
        with _lmdb_errors(self.path):
            env = lmdb.open(
                str(self.path),
                map_size=map_size,
                subdir=True,
                max_dbs=4,
                max_readers=max_readers,
                sync=fsync,
                metasync=fsync,
            )
            try:
                env.reader_check()  # free reader slots of processes that died
                shared = _SharedEnv(self.path, env)
                with env.begin(write=True) as txn:
                    fmt = _get(txn, b"format", shared.meta)
                    if fmt is None:
                        txn.put(b"format", _U64.pack(FORMAT), db=shared.meta)
                        txn.put(b"state", _STATE.pack(0, 0), db=shared.meta)
                    elif _U64.unpack(fmt)[0] != FORMAT:
                        raise StoreError(
                            f"LMDB store {str(self.path)!r} has format {_U64.unpack(fmt)[0]}; "
                            f"this sqlkv reads format {FORMAT}: upgrade sqlkv"
                        )
            except BaseException:
                env.close()
                raise
        return shared

    # ------------------------------------------------------------------ contract

    def _open_snapshot(self) -> Snapshot:
        if self._closed:
            raise StoreError(f"LMDB store {str(self.path)!r} is closed; open it again")
        sh = self._shared
        with _lmdb_errors(self.path):
            txn = sh.begin(write=False)
            try:
                version, _ = _STATE.unpack(_must_get(txn, b"state", sh.meta))
            except BaseException:
                sh.end(txn)
                raise
        return _LmdbSnapshot(self, txn, version)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with _envs_lock:
            self._shared.refs -= 1
            if self._shared.refs == 0:
                del _envs[self.path]
                self._shared.env.close()

    # ------------------------------------------------------------------ commit

    def _commit(self, read_version: int, req: CommitRequest) -> None:
        sh = self._shared
        log_value = encode_ranges(req.write_ranges)
        with sh.write_lock, _lmdb_errors(self.path):
            if self._closed:
                raise StoreError(f"LMDB store {str(self.path)!r} is closed; open it again")
            # A process killed inside a read transaction leaves its reader slot behind,
            # and LMDB keeps every page that reader could see: the file would grow.
            sh.env.reader_check()  # frees such slots; cheap (measured 0.05 us)
            while True:
                txn = sh.begin(write=True)
                try:
                    self._apply(txn, read_version, req, log_value)
                    txn.commit()
                    return
                except lmdb.MapFullError:
                    pass  # grow below, then run the whole commit again
                finally:
                    sh.end(txn)  # abort: a no-op after commit
                size = sh.env.info()["map_size"]
                sh.remap(size * 2, wait_s=self.resize_wait_s)

    def _apply(
        self, txn: lmdb.Transaction, read_version: int, req: CommitRequest, log_value: bytes
    ) -> None:
        sh = self._shared
        version, floor = _STATE.unpack(_must_get(txn, b"state", sh.meta))
        if req.read_ranges and version > read_version:
            self._check_conflicts(txn, read_version, floor, req.read_ranges)
        buckets = _Buckets(sh, txn)
        kv = txn.cursor(db=sh.kv)
        for begin, end in req.clear_ranges:
            if _seek_ge(kv, begin, sh.max_key):
                while _key(kv) and _key(kv) < end:
                    kv.delete()
            buckets.clear_range(begin, end)
        for key, value in req.writes:
            if not 0 < len(key) <= sh.max_key:
                buckets.set(key, value)
            elif value is None:
                txn.delete(key, db=sh.kv)
            else:
                txn.put(key, value, db=sh.kv)
        buckets.flush()
        now = time.time()
        version += 1
        txn.put(_U64.pack(version), _TS.pack(now) + log_value, db=sh.log)
        if now >= self._next_prune:
            floor = self._prune(txn, now, floor)
        txn.put(b"state", _STATE.pack(version, floor), db=sh.meta)

    def _check_conflicts(
        self, txn: lmdb.Transaction, read_version: int, floor: int, read_ranges: list[KeyRange]
    ) -> None:
        if read_version < floor:
            raise TransactionTooOld(
                f"this transaction began at version {read_version}, before the conflict "
                f"history kept ({self.conflict_window_s:g} s, from version {floor}); "
                "it will be retried"
            )
        cur = txn.cursor(db=self._shared.log)
        if not cur.set_range(_U64.pack(read_version + 1)):
            return
        for _, value in _items(cur.iternext()):
            if ranges_intersect(read_ranges, decode_ranges(value[_TS.size :])):
                raise ConflictError(
                    "another transaction changed keys this one read; it will be retried"
                )

    def _prune(self, txn: lmdb.Transaction, now: float, floor: int) -> int:
        """Drop log rows older than the window; the new ``floor``."""
        self._next_prune = now + min(PRUNE_EVERY_S, self.conflict_window_s / 4)
        cutoff = now - self.conflict_window_s
        cur = txn.cursor(db=self._shared.log)
        cur.first()
        while _key(cur):
            (ts,) = _TS.unpack_from(cast(bytes, cur.value()))
            if ts >= cutoff:
                break
            floor = max(floor, _U64.unpack(_key(cur))[0])
            cur.delete()
        return floor


# --------------------------------------------------------------------------- keys LMDB can't hold


def _seek_ge(cur: lmdb.Cursor, key: bytes, max_key: int) -> bool:
    """Position ``cur`` (on ``kv``, whose keys are 1..max_key bytes) at the first key >= key."""
    if not key:
        return bool(cur.first())
    if len(key) <= max_key:
        return bool(cur.set_range(key))
    # No kv key equals `key`; one equal to its prefix sorts before it.
    prefix = key[:max_key]
    if not cur.set_range(prefix):
        return False
    return bool(cur.next()) if _key(cur) == prefix else True


def _get(txn: lmdb.Transaction, key: bytes, db: lmdb._Database) -> bytes | None:
    """``txn.get``, typed: without ``buffers=True`` py-lmdb returns ``bytes``."""
    return cast("bytes | None", txn.get(key, db=db))


def _must_get(txn: lmdb.Transaction, key: bytes, db: lmdb._Database) -> bytes:
    value = _get(txn, key, db)
    if value is None:
        raise StoreError(f"LMDB store: internal record {key!r} is missing; the store is damaged")
    return value


def _key(cur: lmdb.Cursor) -> bytes:
    return cast(bytes, cur.key())


def _items(it: Iterator[tuple[bytes, bytes]] | object) -> Iterator[tuple[bytes, bytes]]:
    return cast(Iterator[tuple[bytes, bytes]], it)


def _bucket_keys(txn: lmdb.Transaction, sh: _SharedEnv, begin: bytes, end: bytes) -> list[bytes]:
    """Keys of the stored buckets that may hold keys in ``[begin, end)``, in order."""
    lo, hi = (_bucket_key(k, sh.max_key) for k in (begin, end))
    cur = txn.cursor(db=sh.big)
    found = cur.set_range(lo)
    out = []
    while found and _key(cur) <= hi:
        out.append(_key(cur))
        found = cur.next()
    return out


def _bucket_key(key: bytes, max_key: int) -> bytes:
    return b"." + key[: max_key - 1]


def _encode_bucket(pairs: Iterable[tuple[bytes, bytes]]) -> bytes:
    parts = []
    for k, v in pairs:
        parts += [_LEN.pack(len(k)), k, _LEN.pack(len(v)), v]
    return b"".join(parts)


def _decode_bucket(data: bytes) -> Pairs:
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


class _Buckets:
    """Changes to the ``big`` sub-database within one write transaction."""

    def __init__(self, sh: _SharedEnv, txn: lmdb.Transaction) -> None:
        self._sh = sh
        self._txn = txn
        self._dirty: dict[bytes, dict[bytes, bytes]] = {}

    def _load(self, bkey: bytes) -> dict[bytes, bytes]:
        if bkey not in self._dirty:
            data = _get(self._txn, bkey, self._sh.big)
            self._dirty[bkey] = dict(_decode_bucket(data)) if data is not None else {}
        return self._dirty[bkey]

    def set(self, key: bytes, value: bytes | None) -> None:
        bucket = self._load(_bucket_key(key, self._sh.max_key))
        if value is None:
            bucket.pop(key, None)
        else:
            bucket[key] = value

    def clear_range(self, begin: bytes, end: bytes) -> None:
        lo, hi = (_bucket_key(k, self._sh.max_key) for k in (begin, end))
        stored = _bucket_keys(self._txn, self._sh, begin, end)
        for bkey in stored + [b for b in self._dirty if lo <= b <= hi]:
            bucket = self._load(bkey)
            for k in [k for k in bucket if begin <= k < end]:
                del bucket[k]

    def flush(self) -> None:
        for bkey, bucket in self._dirty.items():
            if bucket:
                self._txn.put(bkey, _encode_bucket(sorted(bucket.items())), db=self._sh.big)
            else:
                self._txn.delete(bkey, db=self._sh.big)


# --------------------------------------------------------------------------- snapshot


class _LmdbSnapshot(Snapshot):
    """An LMDB read transaction at ``read_version``."""

    def __init__(self, store: LmdbStore, txn: lmdb.Transaction, read_version: int) -> None:
        self._store = store
        self._sh = store._shared
        self._txn: lmdb.Transaction | None = txn
        self.read_version = read_version

    def _t(self) -> lmdb.Transaction:
        if self._txn is None:
            raise StoreError("this snapshot is closed; start a new transaction")
        return self._txn

    def get(self, key: bytes) -> bytes | None:
        with _lmdb_errors(self._store.path):
            return self._get(self._t(), key)

    def get_many(self, keys: Sequence[bytes]) -> list[bytes | None]:
        with _lmdb_errors(self._store.path):
            txn = self._t()
            return [self._get(txn, k) for k in keys]

    def _get(self, txn: lmdb.Transaction, key: bytes) -> bytes | None:
        if 0 < len(key) <= self._sh.max_key:
            return _get(txn, key, self._sh.kv)
        data = _get(txn, _bucket_key(key, self._sh.max_key), self._sh.big)
        return dict(_decode_bucket(data)).get(key) if data is not None else None

    def get_range(self, begin: bytes, end: bytes, limit: int, reverse: bool) -> Pairs:
        with _lmdb_errors(self._store.path):
            txn = self._t()
            streams = [self._kv_range(txn, begin, end, reverse)]
            if txn.stat(self._sh.big)["entries"]:
                streams.append(self._big_range(txn, begin, end, reverse))
            merged: Iterator[tuple[bytes, bytes]] = (
                heapq.merge(*streams, key=itemgetter(0), reverse=reverse)
                if len(streams) > 1
                else streams[0]
            )
            return list(itertools.islice(merged, limit or None))

    def _kv_range(
        self, txn: lmdb.Transaction, begin: bytes, end: bytes, reverse: bool
    ) -> Iterator[tuple[bytes, bytes]]:
        cur = txn.cursor(db=self._sh.kv)
        if not reverse:
            if _seek_ge(cur, begin, self._sh.max_key):
                for k, v in _items(cur.iternext()):
                    if k >= end:
                        return
                    yield k, v
            return
        found = cur.prev() if _seek_ge(cur, end, self._sh.max_key) else cur.last()
        if found:
            for k, v in _items(cur.iterprev()):
                if k < begin:
                    return
                yield k, v

    def _big_range(
        self, txn: lmdb.Transaction, begin: bytes, end: bytes, reverse: bool
    ) -> Iterator[tuple[bytes, bytes]]:
        bkeys = _bucket_keys(txn, self._sh, begin, end)
        for bkey in reversed(bkeys) if reverse else bkeys:
            pairs = _decode_bucket(_must_get(txn, bkey, self._sh.big))
            yield from (
                kv for kv in (reversed(pairs) if reverse else pairs) if begin <= kv[0] < end
            )

    def commit(self, request: CommitRequest) -> None:
        read_version = self.read_version
        self.close()  # free the read transaction first: a map resize needs none open
        self._store._commit(read_version, request)

    def close(self) -> None:
        txn, self._txn = self._txn, None
        if txn is not None:
            self._sh.end(txn)
