"""The apsw VFS of one v2 connection: the main database file is a ``DbFile``; every other
file SQLite opens (a journal before ``journal_mode=MEMORY`` applies, temporary databases,
statement journals, VACUUM's scratch database) lives in memory and dies with its handle.

SQLite opens an ATTACHed database file with the same main-database flag as the main one; it
is refused (``apsw.CantOpenError``), or two pagers would share one ``DbFile`` and corrupt the
database. ``ATTACH ''`` (a temporary database) and ``ATTACH ':memory:'`` still work.

Each connection registers its own VFS under a unique name and unregisters it at close, so
no state is shared between connections and nothing is global but the name counter.
"""

from __future__ import annotations

import itertools
from typing import Any

import apsw

from sqlkv.vfs.sqlite_errors import sqlite_error
from sqlkv.vfs.v2.file import DbFile

_names = itertools.count(1)
MAIN_DB_FILENAME = "sqlkv-main.db"  # what SQLite calls the database; the real name is ours


class MemoryFile:
    """A file held in a bytearray (journals, temp files). Reads past the end are zeros."""

    def __init__(self) -> None:
        self.data = bytearray()

    def xRead(self, amount: int, offset: int) -> bytes:
        chunk = bytes(self.data[offset : offset + amount])
        if len(chunk) < amount:
            chunk += bytes(amount - len(chunk))
        return chunk

    def xWrite(self, data: Any, offset: int) -> None:
        end = offset + len(data)
        if len(self.data) < end:
            self.data.extend(bytes(end - len(self.data)))
        self.data[offset:end] = data

    def xTruncate(self, newsize: int) -> None:
        del self.data[newsize:]

    def xSync(self, flags: int) -> None:
        pass

    def xFileSize(self) -> int:
        return len(self.data)

    def xLock(self, level: int) -> None:
        pass

    def xUnlock(self, level: int) -> None:
        pass

    def xCheckReservedLock(self) -> bool:
        return False

    def xFileControl(self, op: int, ptr: int) -> bool:
        return False

    def xSectorSize(self) -> int:
        return 4096

    def xDeviceCharacteristics(self) -> int:
        return 0

    def xClose(self) -> None:
        self.data = bytearray()


class SqlkvVfs(apsw.VFS):
    """Serves ``MAIN_DB_FILENAME`` from ``db_file``; everything else from memory."""

    def __init__(self, db_file: DbFile) -> None:
        self.vfs_name = f"sqlkv-v2-{next(_names)}"
        self.db_file = db_file
        self._main_open = False
        super().__init__(self.vfs_name, base="")

    def xOpen(self, name: Any, flags: list[int]) -> Any:
        if flags[0] & apsw.SQLITE_OPEN_MAIN_DB:
            filename = name.filename() if isinstance(name, apsw.URIFilename) else name
            if filename != MAIN_DB_FILENAME or self._main_open:
                raise sqlite_error(
                    apsw.SQLITE_CANTOPEN,
                    f"cannot open {filename!r}: a sqlkv connection serves only its own "
                    "database, so ATTACH of a file (and VACUUM INTO) is not supported; "
                    "open that database with its own connection",
                )
            self._main_open = True
            flags[1] = flags[0]
            return self.db_file
        flags[1] = flags[0]
        return MemoryFile()

    def xAccess(self, pathname: str, flags: int) -> bool:
        # there is never a hot journal, WAL or other side file to find
        return False

    def xDelete(self, filename: str, syncdir: bool) -> None:
        pass

    def xFullPathname(self, name: str) -> str:
        return name
