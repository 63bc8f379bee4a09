"""``Blob`` (``Connection.blobopen``) and ``backup``: the stdlib ``sqlite3`` versions over
apsw's blob and backup objects.

``backup(target)`` copies the database page by page into ``target``: another
``sqlkv.dbapi2.Connection`` (a sqlkv database, in one transaction of the target), the path
of a plain SQLite file (``str`` or ``PathLike``: created or overwritten, readable by any
SQLite), or a stdlib ``sqlite3.Connection`` (copied through a temporary file, because two
SQLite libraries cannot share a backup).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import tempfile
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal, SupportsIndex

import apsw

from sqlkv.dbapi2.exceptions import ProgrammingError, translate

if TYPE_CHECKING:
    from sqlkv.dbapi2.connection import Connection

Progress = Callable[[int, int, int], object]


class Blob:
    """An open BLOB (``Connection.blobopen``): file-like and indexable, as ``sqlite3.Blob``."""

    def __init__(self, connection: Connection, blob: apsw.Blob) -> None:
        self._connection = connection
        self._blob: apsw.Blob | None = blob

    def _check(self) -> apsw.Blob:
        self._connection._check()
        if self._blob is None:
            raise ProgrammingError("Cannot operate on a closed blob.")
        return self._blob

    def close(self) -> None:
        self._connection._check()
        blob, self._blob = self._blob, None
        if blob is not None:
            # the stdlib ignores what sqlite3_blob_close reports (a failed earlier write)
            with contextlib.suppress(apsw.Error):
                blob.close()

    def read(self, length: int = -1, /) -> bytes:
        blob = self._check()
        remaining = blob.length() - blob.tell()
        if length < 0 or length > remaining:
            length = remaining
        try:
            return bytes(blob.read(length))
        except apsw.Error as exc:
            raise translate(exc) from exc

    def write(self, data: Any, /) -> None:
        blob = self._check()
        data = bytes(memoryview(data))
        if len(data) > blob.length() - blob.tell():
            raise ValueError("data longer than blob length")
        try:
            blob.write(data)
        except apsw.Error as exc:
            raise translate(exc) from exc

    def tell(self) -> int:
        return int(self._check().tell())

    def seek(self, offset: int, origin: int = os.SEEK_SET, /) -> None:
        blob = self._check()
        if origin == os.SEEK_CUR:
            offset += blob.tell()
        elif origin == os.SEEK_END:
            offset += blob.length()
        elif origin != os.SEEK_SET:
            raise ValueError("'origin' should be os.SEEK_SET, os.SEEK_CUR, or os.SEEK_END")
        if not 0 <= offset <= blob.length():
            raise ValueError("offset out of blob range")
        blob.seek(offset)

    def __len__(self) -> int:
        return int(self._check().length())

    def _whole(self) -> bytes:
        blob = self._check()
        here = blob.tell()
        blob.seek(0)
        data = bytes(blob.read(blob.length()))
        blob.seek(here)
        return data

    def _read_at(self, offset: int, length: int) -> bytes:
        blob = self._check()
        here = blob.tell()
        blob.seek(offset)
        try:
            return bytes(blob.read(length))
        finally:
            blob.seek(here)

    def __getitem__(self, key: SupportsIndex | slice) -> Any:
        size = len(self)
        if isinstance(key, slice):
            start, stop, step = key.indices(size)
            if step == 1:  # read only the range
                return self._read_at(start, stop - start) if stop > start else b""
            return self._whole()[key]
        index = key.__index__()
        if not -size <= index < size:
            raise IndexError("Blob index out of range")
        return self._read_at(index % size, 1)[0]

    def __setitem__(self, key: SupportsIndex | slice, value: Any) -> None:
        blob = self._check()
        data = bytearray(self._whole())
        if isinstance(key, slice):
            new = bytes(memoryview(value))
            if len(data[key]) != len(new):
                raise IndexError("Blob slice assignment is wrong size")
            data[key] = new
        else:
            index = key.__index__()
            if not -len(data) <= index < len(data):
                raise IndexError("Blob index out of range")
            if not isinstance(value, int) or not 0 <= value <= 255:
                raise ValueError("byte must be in range(0, 256)")
            data[index] = value
        here = blob.tell()
        blob.seek(0)
        blob.write(bytes(data))
        blob.seek(here)

    def __enter__(self) -> Blob:
        self._check()
        return self

    def __exit__(self, *exc: object) -> Literal[False]:
        self.close()
        return False


def backup(
    source: apsw.Connection,
    target: Any,
    *,
    pages: int,
    progress: Progress | None,
    name: str,
    sleep: float,
) -> None:
    from sqlkv.dbapi2.connection import Connection

    if isinstance(target, Connection):
        _copy(target._check(), source, pages, progress, name, sleep)
    elif isinstance(target, str | os.PathLike):
        path = os.fspath(target)
        dest = apsw.Connection(path)
        try:
            _copy(dest, source, pages, progress, name, sleep)
        finally:
            dest.close()
    elif isinstance(target, sqlite3.Connection):
        with tempfile.TemporaryDirectory(prefix="sqlkv-backup-") as tmp:
            path = os.path.join(tmp, "copy.db")
            dest = apsw.Connection(path)
            try:
                _copy(dest, source, pages, progress, name, sleep)
            finally:
                dest.close()
            plain = sqlite3.connect(path)
            try:
                plain.backup(target)
            finally:
                plain.close()
    else:
        raise TypeError(
            "backup() target must be a sqlkv.dbapi2.Connection, a sqlite3.Connection or "
            f"the path of a SQLite file, not {type(target).__name__}"
        )


def _copy(
    dest: apsw.Connection,
    source: apsw.Connection,
    pages: int,
    progress: Progress | None,
    name: str,
    sleep: float,
) -> None:
    if dest is source:
        raise ValueError("target cannot be the same connection instance")
    step = pages if pages > 0 else -1
    try:
        with dest.backup("main", source, name) as job:
            while not job.done:
                try:
                    done = job.step(step)
                except (apsw.BusyError, apsw.LockedError):
                    time.sleep(sleep)
                    continue
                if progress is not None:
                    status = apsw.SQLITE_DONE if done else apsw.SQLITE_OK
                    progress(status, job.remaining, job.page_count)
    except apsw.Error as exc:
        raise translate(exc) from exc
