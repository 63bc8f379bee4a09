"""Reading a plain SQLite file page by page, for ``sqlkv import``.

``SourceDb.open(path)`` checks that the file is a SQLite database and gives a consistent
view of its pages in bounded memory:

- a rollback-journal database with 4096-byte pages is read straight from the file, under a
  read transaction of a read-only SQLite connection (its SHARED lock keeps writers out, and
  opening it rolls back a hot journal);
- a database with another page size, or in WAL mode (whose newest pages may be in the
  ``-wal`` file, and whose file a checkpoint may rewrite under a reader), is first copied
  with ``VACUUM INTO`` a temporary file with ``page_size=4096`` (a consistent snapshot,
  with the same content, schema, ``user_version`` and ``application_id``), and that copy is
  read.

POSIX locks belong to the process, and closing *any* descriptor of a file drops them all;
so the raw descriptor is opened first and closed last, after SQLite let its lock go.
"""

from __future__ import annotations

import os
import shutil
import struct
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType

import apsw

from sqlkv.engine.config import PAGE_SIZE
from sqlkv.errors import CommandFailed

MAGIC = b"SQLite format 3\x00"
LOCK_PGNO = (1 << 30) // PAGE_SIZE + 1
"""SQLite's lock-byte page at 4 KiB pages: never written by SQLite, never stored by sqlkv."""


def header_page_size(header: bytes) -> int:
    (raw,) = struct.unpack_from(">H", header, 16)
    return 65536 if raw == 1 else int(raw)


class SourceDb:
    """A SQLite file opened for reading its pages (use ``SourceDb.open``)."""

    def __init__(self, path: Path, fd: int, conn: apsw.Connection, tmp_dir: str | None) -> None:
        self.path = path
        self._fd = fd
        self._conn = conn
        self._tmp_dir = tmp_dir
        self.converted_from: int | None = None  # the original page size, when converted
        self.wal = False
        self.page_count = 0

    def _measured(self) -> SourceDb:
        """Read the page count (in the read transaction); the file must hold every page.
        Closes everything on failure."""
        try:
            count = _query(self._conn, self.path, "PRAGMA page_count")
            self.page_count = count if isinstance(count, int) else 0
            size = os.fstat(self._fd).st_size
            if size < self.page_count * PAGE_SIZE:
                raise CommandFailed(
                    f"{self.path}: the file is {size} bytes, shorter than its "
                    f"{self.page_count} pages; it is damaged"
                )
        except BaseException:
            self.close()
            raise
        return self

    @classmethod
    def open(
        cls,
        path: Path,
        *,
        tmp_dir: Path | None = None,
        check: bool = False,
        note: Callable[[str], None] = print,
    ) -> SourceDb:
        """Open ``path``; convert it to 4096-byte pages in ``tmp_dir`` if it needs it.

        ``check`` runs ``PRAGMA integrity_check`` on the source first.
        """
        fd = _open_file(path)
        conn: apsw.Connection | None = None
        try:
            header = os.pread(fd, 100, 0)
            if not header:
                raise CommandFailed(f"{path}: the file is empty; there is nothing to import")
            if not header.startswith(MAGIC):
                raise CommandFailed(
                    f"{path}: not a SQLite database (the file does not start with "
                    "'SQLite format 3')"
                )
            conn = _connect(path)
            if check:
                _integrity_check(conn, path)
            page_size = header_page_size(header)
            wal = _query(conn, path, "PRAGMA journal_mode") == "wal"
            if page_size == PAGE_SIZE and not wal:
                _begin_read(conn, path)
        except BaseException:
            if conn is not None:
                conn.close()
            os.close(fd)
            raise
        assert conn is not None
        if page_size == PAGE_SIZE and not wal:
            return cls(path, fd, conn, None)._measured()
        # Convert: a consistent copy with 4096-byte pages, in rollback-journal mode.
        try:
            why = f"its page size is {page_size}" if page_size != PAGE_SIZE else "it is in WAL mode"
            note(f"{path}: {why}; copying it to 4096-byte pages with VACUUM INTO a temporary file")
            tmp = _make_tmp_dir(tmp_dir)
            copy = Path(tmp) / "converted.db"
            try:
                conn.execute("PRAGMA page_size=4096")
                conn.execute("VACUUM INTO ?", (str(copy),))
            except apsw.Error as exc:
                shutil.rmtree(tmp, ignore_errors=True)
                raise CommandFailed(
                    f"{path}: cannot copy it to 4096-byte pages in {tmp}: {exc}; free some "
                    "space there or choose another place with --tmp-dir"
                ) from None
        finally:
            conn.close()
            os.close(fd)
        try:
            cfd = _open_file(copy)
            try:
                cconn = _connect(copy)
            except BaseException:
                os.close(cfd)
                raise
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        source = cls(path, cfd, cconn, tmp)
        try:
            _begin_read(cconn, copy)
        except BaseException:
            source.close()
            raise
        source._measured()
        source.converted_from = page_size
        source.wal = wal
        return source

    def pages(self, first: int, last: int, batch: int) -> Iterator[list[tuple[int, bytes]]]:
        """Pages ``first..last`` (inclusive, without the lock-byte page) in lists of at most
        ``batch``, read ``batch`` pages at a time. Page 1 has its WAL flags cleared (the
        sqlkv client runs in rollback-journal mode)."""
        pgno = first
        while pgno <= last:
            count = min(batch, last - pgno + 1)
            data = os.pread(self._fd, count * PAGE_SIZE, (pgno - 1) * PAGE_SIZE)
            if len(data) != count * PAGE_SIZE:
                raise CommandFailed(f"{self.path}: the file shrank while it was being read")
            out: list[tuple[int, bytes]] = []
            for i in range(count):
                p = pgno + i
                if p == LOCK_PGNO:
                    continue
                page = data[i * PAGE_SIZE : (i + 1) * PAGE_SIZE]
                if p == 1 and page[18:20] != b"\x01\x01":
                    page = page[:18] + b"\x01\x01" + page[20:]
                out.append((p, page))
            if out:
                yield out
            pgno += count

    def close(self) -> None:
        """End the read transaction, close SQLite, then the raw descriptor, then the copy."""
        try:
            try:
                if self._conn.in_transaction:
                    self._conn.execute("COMMIT")
            finally:
                self._conn.close()
        finally:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1
            if self._tmp_dir:
                shutil.rmtree(self._tmp_dir, ignore_errors=True)
                self._tmp_dir = None

    def __enter__(self) -> SourceDb:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _open_file(path: Path) -> int:
    try:
        if path.is_dir():
            raise CommandFailed(f"{path}: is a directory, not a SQLite database file")
        return os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        raise CommandFailed(f"{path}: no such file") from None
    except PermissionError:
        raise CommandFailed(f"{path}: permission denied; this user cannot read it") from None
    except OSError as exc:
        raise CommandFailed(f"{path}: cannot open it: {exc.strerror}") from None


def _make_tmp_dir(where: Path | None) -> str:
    try:
        return tempfile.mkdtemp(prefix="sqlkv-import-", dir=where)
    except OSError as exc:
        place = where if where is not None else tempfile.gettempdir()
        raise CommandFailed(
            f"cannot make a temporary directory in {place}: {exc.strerror}; "
            "choose another place with --tmp-dir"
        ) from None


def _connect(path: Path) -> apsw.Connection:
    try:
        return apsw.Connection(str(path), flags=apsw.SQLITE_OPEN_READONLY)
    except apsw.Error as exc:
        raise CommandFailed(f"{path}: SQLite cannot open it: {exc}") from None


def _query(conn: apsw.Connection, path: Path, sql: str) -> object:
    try:
        row = conn.execute(sql).fetchone()
    except apsw.Error as exc:
        raise CommandFailed(f"{path}: SQLite cannot read it: {exc}") from None
    return row[0] if row else None


def _begin_read(conn: apsw.Connection, path: Path) -> None:
    """Start a read transaction and read the schema: the SHARED lock is held from here."""
    try:
        conn.execute("BEGIN")
        conn.execute("SELECT count(*) FROM sqlite_schema").fetchall()
    except apsw.Error as exc:
        raise CommandFailed(f"{path}: SQLite cannot read it: {exc}") from None


def _integrity_check(conn: apsw.Connection, path: Path) -> None:
    try:
        rows = conn.execute("PRAGMA integrity_check").fetchall()
    except apsw.Error as exc:
        raise CommandFailed(f"{path}: integrity check failed: {exc}") from None
    if rows != [("ok",)]:
        first = rows[0][0] if rows else "no answer"
        raise CommandFailed(
            f"{path}: integrity check failed ({len(rows)} problem(s), first: {first}); "
            "repair the file (for example with sqlite3 '.recover') before importing it"
        )
