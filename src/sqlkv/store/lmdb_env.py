"""The LMDB store's environments: one per directory per process, shared by every store
object on that directory (LMDB allows no more), with the gate that lets it remap; and the
typed accessors over py-lmdb that the LMDB modules read through.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import cast

import lmdb

from sqlkv.errors import StoreError, StoreUnavailable


class SharedEnv:
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


_envs: dict[Path, SharedEnv] = {}
_envs_lock = threading.Lock()


def acquire_env(path: Path, open_env: Callable[[], SharedEnv]) -> SharedEnv:
    """The environment of ``path``, opened with ``open_env`` unless this process has it."""
    with _envs_lock:
        shared = _envs.get(path)
        if shared is None:
            shared = open_env()
            _envs[path] = shared
        shared.refs += 1
    return shared


def release_env(shared: SharedEnv) -> None:
    """Drop one reference to ``shared``; the last one closes the environment."""
    with _envs_lock:
        shared.refs -= 1
        if shared.refs == 0:
            del _envs[shared.path]
            shared.env.close()


# --------------------------------------------------------------------------- typed py-lmdb


def get(txn: lmdb.Transaction, key: bytes, db: lmdb._Database) -> bytes | None:
    """``txn.get``, typed: without ``buffers=True`` py-lmdb returns ``bytes``."""
    return cast("bytes | None", txn.get(key, db=db))


def must_get(txn: lmdb.Transaction, key: bytes, db: lmdb._Database) -> bytes:
    value = get(txn, key, db)
    if value is None:
        raise StoreError(f"LMDB store: internal record {key!r} is missing; the store is damaged")
    return value


def cursor_key(cur: lmdb.Cursor) -> bytes:
    return cast(bytes, cur.key())


def items(it: Iterator[tuple[bytes, bytes]] | object) -> Iterator[tuple[bytes, bytes]]:
    return cast(Iterator[tuple[bytes, bytes]], it)
