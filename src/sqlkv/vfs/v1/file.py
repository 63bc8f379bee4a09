"""The v1 VFS file: SQLite's file methods on a ``ChunkedFile``, with SQLite error codes.

Store errors become the SQLite I/O error of the method (the store's exception chained),
``LimitExceeded`` becomes SQLITE_FULL. When the outcome of a store call is unknown (a
crash, an interrupt, a commit whose answer was lost) the database's in-process state is
*killed*: its locks are released as a dead process's would be, and every later I/O call
of every connection that used it fails, so nothing acts on state that may be stale. A
new connection starts afresh from the store (and rolls back a hot journal).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

import apsw

from sqlkv.errors import CommitUnknown, LimitExceeded, SqlkvError
from sqlkv.vfs.v1.codes import sqlite_error
from sqlkv.vfs.v1.keys import CHUNK_SIZE
from sqlkv.vfs.v1.locks import NONE

if TYPE_CHECKING:
    from sqlkv.vfs.v1.vfs import Mount

T = TypeVar("T")


def guarded(mount: Mount, code: int, what: str, fn: Callable[[], T]) -> T:
    """Run a store-touching call of ``mount``'s database, mapping failures to SQLite errors."""
    db = mount.db
    if db.dead:
        raise sqlite_error(
            code,
            f"{what} on v1 database {db.name!r}: an earlier store call ended with an unknown "
            "outcome, so this connection's state may be stale; close it and connect again",
        )
    try:
        return fn()
    except apsw.Error:
        raise
    except CommitUnknown as exc:
        db.kill()
        raise sqlite_error(code, f"{what} on v1 database {db.name!r}: {exc}") from exc
    except LimitExceeded as exc:
        raise sqlite_error(apsw.SQLITE_FULL, f"{what} on v1 database {db.name!r}: {exc}") from exc
    except SqlkvError as exc:
        raise sqlite_error(code, f"{what} on v1 database {db.name!r}: {exc}") from exc
    except BaseException:
        db.kill()
        raise


class V1File:
    """One open SQLite file (``role`` ``db``, ``journal`` or ``wal``) of one connection."""

    def __init__(self, mount: Mount, role: str) -> None:
        self.mount = mount
        self.role = role
        self.file = mount.db.file(role)
        self._closed = False

    def xRead(self, amount: int, offset: int) -> bytes:
        return guarded(
            self.mount,
            apsw.SQLITE_IOERR_READ,
            "read",
            lambda: self.file.read(amount, offset, self.mount.stats),
        )

    def xWrite(self, data: bytes, offset: int) -> None:
        guarded(
            self.mount,
            apsw.SQLITE_IOERR_WRITE,
            "write",
            lambda: self.file.write(bytes(data), offset, self.mount.stats),
        )

    def xTruncate(self, newsize: int) -> None:
        guarded(
            self.mount,
            apsw.SQLITE_IOERR_TRUNCATE,
            "truncate",
            lambda: self.file.truncate(newsize, self.mount.stats),
        )

    def xSync(self, flags: int) -> None:
        """Nothing to do: every write is already a committed store transaction."""
        guarded(self.mount, apsw.SQLITE_IOERR_FSYNC, "sync", lambda: None)

    def xFileSize(self) -> int:
        return guarded(
            self.mount,
            apsw.SQLITE_IOERR_FSTAT,
            "file size",
            lambda: self.file.size(self.mount.stats),
        )

    def xLock(self, level: int) -> None:
        guarded(
            self.mount,
            apsw.SQLITE_IOERR_LOCK,
            "lock",
            lambda: self.mount.db.locks.lock(self, level),
        )

    def xUnlock(self, level: int) -> None:
        if not self.mount.db.dead:
            self.mount.db.locks.unlock(self, level)

    def xCheckReservedLock(self) -> bool:
        return guarded(
            self.mount,
            apsw.SQLITE_IOERR_CHECKRESERVEDLOCK,
            "check reserved lock",
            self.mount.db.locks.reserved,
        )

    def xFileControl(self, op: int, ptr: int) -> bool:
        return False

    def xSectorSize(self) -> int:
        return CHUNK_SIZE

    def xDeviceCharacteristics(self) -> int:
        return int(apsw.SQLITE_IOCAP_POWERSAFE_OVERWRITE)

    def xClose(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.mount.db.locks.unlock(self, NONE)
        if self.role == "db":
            self.mount.close()
