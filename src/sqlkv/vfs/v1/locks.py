"""SQLite's five lock levels, kept in this process for one v1 database.

v1 lets one process own a database at a time, so locks only need to order the
connections inside that process, the way the unix VFS orders them with POSIX locks:
SHARED readers, one RESERVED writer, PENDING to keep new readers out while the writer
waits, EXCLUSIVE to write the database file. ``reserved()`` is what makes hot-journal
detection work: a journal with nobody holding RESERVED or more is a crashed writer's.
"""

from __future__ import annotations

import threading

import apsw

from sqlkv.vfs.v1.codes import sqlite_error

NONE, SHARED, RESERVED, PENDING, EXCLUSIVE = (
    apsw.SQLITE_LOCK_NONE,
    apsw.SQLITE_LOCK_SHARED,
    apsw.SQLITE_LOCK_RESERVED,
    apsw.SQLITE_LOCK_PENDING,
    apsw.SQLITE_LOCK_EXCLUSIVE,
)


class LockTable:
    """The lock level of every open handle of one database file."""

    def __init__(self) -> None:
        self._levels: dict[int, int] = {}  # id(handle) -> level above NONE
        self._mutex = threading.Lock()

    def level(self, owner: object) -> int:
        with self._mutex:
            return self._levels.get(id(owner), NONE)

    def lock(self, owner: object, level: int) -> None:
        """Raise ``owner`` to ``level`` or raise ``apsw.BusyError`` (PENDING may stay held)."""
        with self._mutex:
            me = id(owner)
            current = self._levels.get(me, NONE)
            if level <= current:
                return
            others = [lvl for key, lvl in self._levels.items() if key != me]
            if level == SHARED:
                if any(lvl >= PENDING for lvl in others):
                    raise _busy("a writer is committing")
                self._levels[me] = SHARED
                return
            if any(lvl >= RESERVED for lvl in others):
                raise _busy("another connection holds the write lock")
            if level == RESERVED:
                self._levels[me] = RESERVED
                return
            self._levels[me] = PENDING
            if level == EXCLUSIVE:
                if any(lvl >= SHARED for lvl in others):
                    raise _busy("readers are still active")
                self._levels[me] = EXCLUSIVE

    def unlock(self, owner: object, level: int) -> None:
        """Lower ``owner`` to ``level`` (SHARED or NONE)."""
        with self._mutex:
            me = id(owner)
            if level <= NONE:
                self._levels.pop(me, None)
            elif self._levels.get(me, NONE) > level:
                self._levels[me] = level

    def reserved(self) -> bool:
        """Whether any handle holds RESERVED or more."""
        with self._mutex:
            return any(lvl >= RESERVED for lvl in self._levels.values())


def _busy(why: str) -> apsw.Error:
    return sqlite_error(apsw.SQLITE_BUSY, f"database is locked: {why}")
