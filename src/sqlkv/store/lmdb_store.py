"""The LMDB store: the embedded candidate that lost on measurement (``bench/bench_store.py``).

An LMDB environment (``DIR/data.mdb`` + ``DIR/lock.mdb``) with four sub-databases:

- ``kv``: keys of 1 to ``max_key_size`` (511) bytes, stored as they are, value byte for byte.
- ``big``: keys LMDB cannot hold (the empty key, and keys longer than 511 bytes; the
  contract allows 10 kB), in buckets by prefix (``lmdb_big.py``).
- ``log``: the conflict log (``conflict_log.py``), ``version`` (u64 big-endian) ->
  wall-clock time (f64) and the commit's write ranges (``encode_ranges``), pruned after
  ``conflict_window_s``.
- ``meta``: ``format``; ``state`` = (version, floor) as two u64. Invariant: ``floor <=
  version``; log rows with ``version <= floor`` are gone.

This module is the driver: the store, its snapshots and its commit. The environment shared
per directory is in ``lmdb_env.py``, the buckets of long keys in ``lmdb_big.py``.

Conflicts are checked exactly as in the embedded store (``embedded.py``): a snapshot is an
LMDB read transaction and reads ``version`` in it; a commit, in LMDB's single write
transaction, refuses with ``ConflictError`` when a log row after its read version meets
its read ranges, and with ``TransactionTooOld`` when its read version is below ``floor``.

LMDB allows one environment per directory per process, so store objects on the same
directory share one (``SharedEnv``); the first opener's ``fsync``/``map_size`` apply.

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

import heapq
import itertools
import struct
import time
from collections.abc import Iterator, Sequence
from operator import itemgetter
from pathlib import Path
from typing import cast

import lmdb

from sqlkv.errors import ConfigError, GuardFailed, StoreError, StoreUnavailable
from sqlkv.store.base import CommitRequest, Limits, RetryPolicy, Snapshot, Store
from sqlkv.store.conflict_log import (
    DEFAULT_CONFLICT_WINDOW_S,
    check_conflicts,
    encode_ranges,
    prune_interval,
)
from sqlkv.store.directory import make_store_directory
from sqlkv.store.lmdb_big import Buckets, Pairs, bucket_key, bucket_keys, decode_bucket, seek_ge
from sqlkv.store.lmdb_env import (
    SharedEnv,
    acquire_env,
    cursor_key,
    get,
    items,
    must_get,
    release_env,
)
from sqlkv.store.translate import ErrorTable

FORMAT = 1
DEFAULT_MAP_SIZE = 1 << 40  # address space only; the file grows with the data
_U64 = struct.Struct(">Q")
_STATE = struct.Struct(">QQ")  # version, floor
_TS = struct.Struct(">d")

# lmdb error class -> (our class, what to tell the user). The first matching row wins.
_ERRORS = ErrorTable(
    lmdb.Error,
    [
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
    ],
    unknown="LMDB error",
)


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
        self._where = f"LMDB store {str(self.path)!r}"
        self._next_prune = 0.0
        self._closed = False
        self._shared = acquire_env(self.path, lambda: self._open_env(fsync, map_size, max_readers))

    def _open_env(self, fsync: bool, map_size: int, max_readers: int) -> SharedEnv:
        with _ERRORS.translating(self._where):
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
                shared = SharedEnv(self.path, env)
                with env.begin(write=True) as txn:
                    fmt = get(txn, b"format", shared.meta)
                    if fmt is None:
                        txn.put(b"format", _U64.pack(FORMAT), db=shared.meta)
                        txn.put(b"state", _STATE.pack(0, 0), db=shared.meta)
                    elif _U64.unpack(fmt)[0] != FORMAT:
                        raise StoreError(
                            f"{self._where} has format {_U64.unpack(fmt)[0]}; "
                            f"this sqlkv reads format {FORMAT}: upgrade sqlkv"
                        )
            except BaseException:
                env.close()
                raise
        return shared

    # ------------------------------------------------------------------ contract

    def _open_snapshot(self) -> Snapshot:
        if self._closed:
            raise StoreError(f"{self._where} is closed; open it again")
        sh = self._shared
        with _ERRORS.translating(self._where):
            txn = sh.begin(write=False)
            try:
                version, _ = _STATE.unpack(must_get(txn, b"state", sh.meta))
            except BaseException:
                sh.end(txn)
                raise
        return _LmdbSnapshot(self, txn, version)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        release_env(self._shared)

    # ------------------------------------------------------------------ commit

    def _commit(self, read_version: int, req: CommitRequest) -> None:
        sh = self._shared
        log_value = encode_ranges(req.write_ranges)
        with sh.write_lock, _ERRORS.translating(self._where):
            if self._closed:
                raise StoreError(f"{self._where} is closed; open it again")
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
        version, floor = _STATE.unpack(must_get(txn, b"state", sh.meta))
        for key, expected in req.guards:  # in the write transaction: nothing applied yet
            current = _LmdbSnapshot.read_key(sh, txn, key)
            if current != expected:
                raise GuardFailed(key, current)
        if req.read_ranges and version > read_version:
            check_conflicts(
                read_version,
                floor,
                req.read_ranges,
                self._logged_after(txn, read_version),
                window_s=self.conflict_window_s,
            )
        buckets = Buckets(sh, txn)
        kv = txn.cursor(db=sh.kv)
        for begin, end in req.clear_ranges:
            if seek_ge(kv, begin, sh.max_key):
                while cursor_key(kv) and cursor_key(kv) < end:
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

    def _logged_after(self, txn: lmdb.Transaction, read_version: int) -> Iterator[bytes]:
        """The logged write ranges of the commits after ``read_version``, in order."""
        cur = txn.cursor(db=self._shared.log)
        if not cur.set_range(_U64.pack(read_version + 1)):
            return
        for _, value in items(cur.iternext()):
            yield value[_TS.size :]

    def _prune(self, txn: lmdb.Transaction, now: float, floor: int) -> int:
        """Drop log rows older than the window; the new ``floor``."""
        self._next_prune = now + prune_interval(self.conflict_window_s)
        cutoff = now - self.conflict_window_s
        cur = txn.cursor(db=self._shared.log)
        cur.first()
        while cursor_key(cur):
            (ts,) = _TS.unpack_from(cast(bytes, cur.value()))
            if ts >= cutoff:
                break
            floor = max(floor, _U64.unpack(cursor_key(cur))[0])
            cur.delete()
        return floor


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
        with _ERRORS.translating(self._store._where):
            return self._get(self._t(), key)

    def get_many(self, keys: Sequence[bytes]) -> list[bytes | None]:
        with _ERRORS.translating(self._store._where):
            txn = self._t()
            return [self._get(txn, k) for k in keys]

    def _get(self, txn: lmdb.Transaction, key: bytes) -> bytes | None:
        return self.read_key(self._sh, txn, key)

    @staticmethod
    def read_key(sh: SharedEnv, txn: lmdb.Transaction, key: bytes) -> bytes | None:
        """The value of ``key`` in ``txn`` (a read or the write transaction)."""
        if 0 < len(key) <= sh.max_key:
            return get(txn, key, sh.kv)
        data = get(txn, bucket_key(key, sh.max_key), sh.big)
        return dict(decode_bucket(data)).get(key) if data is not None else None

    def get_range(self, begin: bytes, end: bytes, limit: int, reverse: bool) -> Pairs:
        with _ERRORS.translating(self._store._where):
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
            if seek_ge(cur, begin, self._sh.max_key):
                for k, v in items(cur.iternext()):
                    if k >= end:
                        return
                    yield k, v
            return
        found = cur.prev() if seek_ge(cur, end, self._sh.max_key) else cur.last()
        if found:
            for k, v in items(cur.iterprev()):
                if k < begin:
                    return
                yield k, v

    def _big_range(
        self, txn: lmdb.Transaction, begin: bytes, end: bytes, reverse: bool
    ) -> Iterator[tuple[bytes, bytes]]:
        bkeys = bucket_keys(txn, self._sh, begin, end)
        for bkey in reversed(bkeys) if reverse else bkeys:
            pairs = decode_bucket(must_get(txn, bkey, self._sh.big))
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
