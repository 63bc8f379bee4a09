"""The apsw VFS of v2 connections: a connection's main database file is a ``DbFile``; every
other file SQLite opens (a journal before ``journal_mode=MEMORY`` applies, temporary databases,
statement journals, VACUUM's scratch database) lives in memory and dies with its handle.

SQLite opens an ATTACHed database file with the same main-database flag as the main one; it
is refused (``apsw.CantOpenError``), or two pagers would share one ``DbFile`` and corrupt the
database. ``ATTACH ''`` (a temporary database) and ``ATTACH ':memory:'`` still work.

One VFS serves every connection of the process (``shared_vfs``, registered once as
``sqlkv-v2``): each connection's main file has a unique name (``VfsFile``) that maps to its
``DbFile`` and can be opened once. (A VFS per connection made every open and close walk
SQLite's linked list of registered VFSes: open latency grew with the open connections.)
"""

from __future__ import annotations

import itertools
import threading
from typing import Any

import apsw

from sqlkv.vfs.sqlite_errors import sqlite_error
from sqlkv.vfs.v2.file import DbFile

_names = itertools.count(1)
VFS_NAME = "sqlkv-v2"


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
    """The process's one v2 VFS (``VFS_NAME``): serves each connection's main database file
    (``attach`` gives it a unique name) from its ``DbFile``; everything else from memory."""

    def __init__(self) -> None:
        self._files: dict[str, DbFile | None] = {}  # name -> its file (None: opened)
        self._lock = threading.Lock()  # xOpen of different connections runs on their threads
        super().__init__(VFS_NAME, base="")

    def xOpen(self, name: Any, flags: list[int]) -> Any:
        if flags[0] & apsw.SQLITE_OPEN_MAIN_DB:
            filename = name.filename() if isinstance(name, apsw.URIFilename) else name
            with self._lock:
                file = self._files.get(filename)
                if file is not None:
                    self._files[filename] = None  # a main database file is opened once
            if file is None:
                raise sqlite_error(
                    apsw.SQLITE_CANTOPEN,
                    f"cannot open {filename!r}: a sqlkv connection serves only its own "
                    "database, so ATTACH of a file (and VACUUM INTO) is not supported; "
                    "open that database with its own connection",
                )
            flags[1] = flags[0]
            return file
        flags[1] = flags[0]
        return MemoryFile()

    def xAccess(self, pathname: str, flags: int) -> bool:
        # there is never a hot journal, WAL or other side file to find
        return False

    def xDelete(self, filename: str, syncdir: bool) -> None:
        pass

    def xFullPathname(self, name: str) -> str:
        return name

    def add(self, filename: str, db_file: DbFile) -> None:
        with self._lock:
            self._files[filename] = db_file

    def remove(self, filename: str) -> None:
        with self._lock:
            self._files.pop(filename, None)


_shared: SqlkvVfs | None = None
_shared_lock = threading.Lock()


def shared_vfs() -> SqlkvVfs:
    """The one ``SqlkvVfs`` of the process, registered on first use."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = SqlkvVfs()
        return _shared


class VfsFile:
    """One connection's main database file in the shared VFS: the name SQLite opens it by
    (``sqlkv-main-N.db``) and its ``DbFile``. ``unregister`` at close."""

    def __init__(self, db_file: DbFile) -> None:
        self.db_file = db_file
        self.vfs_name = VFS_NAME
        self.filename = f"sqlkv-main-{next(_names)}.db"
        self._vfs = shared_vfs()
        self._vfs.add(self.filename, db_file)

    def unregister(self) -> None:
        self._vfs.remove(self.filename)
