"""The embedded store's snapshot: a transaction's reads, in one WAL read transaction on a
pooled connection, begun by the first read (``EmbeddedStore._begin_read``). WAL gives each
one a point-in-time view that writers never block; its commit is the store's
(``EmbeddedStore._commit``, ``embedded_commit.py``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, cast

import apsw

from sqlkv.errors import StoreError
from sqlkv.store.base import CommitRequest, Snapshot
from sqlkv.store.embedded_file import ERRORS

if TYPE_CHECKING:
    from sqlkv.store.embedded import EmbeddedStore

GET_MANY_LOOP_MAX = 4  # up to this many keys, one cached point query each


class EmbeddedSnapshot(Snapshot):
    """A read transaction on one pooled connection, at ``read_version``, begun by the first
    read (a transaction that reads nothing commits without one)."""

    def __init__(self, store: EmbeddedStore) -> None:
        self._store = store
        self._conn: apsw.Connection | None = None
        self._done = False
        self.read_version = 0
        self.checkpoints_seen = 0  # Checkpoints.completed when it began

    def _c(self) -> apsw.Connection:
        if self._conn is None:
            if self._done:
                raise StoreError("this snapshot is closed; start a new transaction")
            self._conn, self.read_version, self.checkpoints_seen = self._store._begin_read()
        return self._conn

    def get(self, key: bytes) -> bytes | None:
        with ERRORS.translating(self._store._where):
            rows = self._c().execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchall()
        return cast(bytes, rows[0][0]) if rows else None

    def get_many(self, keys: Sequence[bytes]) -> list[bytes | None]:
        if len(keys) <= GET_MANY_LOOP_MAX or not self._store._has_carray:
            return [self.get(k) for k in keys]
        with ERRORS.translating(self._store._where):
            rows = self._c().execute(
                "SELECT key, value FROM kv WHERE key IN carray(?)",
                (apsw.carray(tuple(keys)),),
            )
            found = dict(rows)
        return [found.get(k) for k in keys]

    def get_range(
        self, begin: bytes, end: bytes, limit: int, reverse: bool
    ) -> list[tuple[bytes, bytes]]:
        order = "DESC" if reverse else "ASC"
        with ERRORS.translating(self._store._where):
            rows = self._c().execute(
                "SELECT key, value FROM kv WHERE key >= ? AND key < ? "
                f"ORDER BY key {order} LIMIT ?",
                (begin, end, limit if limit > 0 else -1),
            )
            return cast("list[tuple[bytes, bytes]]", rows.fetchall())  # tuples built in C

    def commit(self, request: CommitRequest) -> None:
        if self._done:
            raise StoreError("this snapshot is closed; start a new transaction")
        self._store._commit(self, request)

    def detach(self) -> apsw.Connection | None:
        """Hand the connection (inside its read transaction; None if nothing was read) to
        the commit, which checks it back in: this snapshot is closed from now on."""
        conn, self._conn = self._conn, None
        self._done = True
        return conn

    def close(self) -> None:
        conn, self._conn = self._conn, None
        self._done = True
        if conn is not None:
            self._store._checkin(conn)
