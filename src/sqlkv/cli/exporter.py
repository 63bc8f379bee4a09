"""Writing a sqlkv database out as a plain SQLite file, for ``sqlkv export``.

The pages are read with ``get_pages`` in batches (1 MiB by default) **without taking the
database over**, so a live owner keeps working. Each answer carries the head it was read
at; if the database changes under the export (a commit, or a takeover), the export starts
again from page 1, a bounded number of times. The file is written to a temporary name
beside the target, synced, checked, and renamed over it: a crash leaves the old file (or
none), never half of one.

v1 databases are exported with SQLite's backup API from a v1 connection to the file.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import apsw

from sqlkv.cli.source import LOCK_PGNO
from sqlkv.engine.api import EngineApi
from sqlkv.engine.config import PAGE_SIZE
from sqlkv.engine.head import Head
from sqlkv.errors import CommandFailed, FenceMismatch

SIDE_FILES = ("-journal", "-wal", "-shm")
MAX_RESTARTS = 5


def check_target(target: Path, force: bool) -> None:
    """Refuse to overwrite ``target`` (or to leave a stale journal beside it) unless ``force``."""
    if target.is_dir():
        raise CommandFailed(f"{target}: is a directory; give the path of the file to write")
    if not target.parent.is_dir():
        raise CommandFailed(f"{target.parent}: no such directory to write {target.name} in")
    if force:
        return
    if target.exists():
        raise CommandFailed(f"{target}: the file exists; pass --force to overwrite it")
    for suffix in SIDE_FILES:
        side = Path(f"{target}{suffix}")
        if side.exists():
            raise CommandFailed(
                f"{side} exists (left by an earlier database): SQLite would apply it to the "
                "exported file; remove it, or pass --force to remove it"
            )


@contextlib.contextmanager
def atomic_target(target: Path) -> Iterator[Path]:
    """A temporary file beside ``target``, renamed over it if the block succeeds (after
    removing the target's stale journal files); removed otherwise."""
    fd, name = tempfile.mkstemp(
        prefix=f".{target.name}.", suffix=".sqlkv-export", dir=target.parent
    )
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        for suffix in SIDE_FILES:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(f"{target}{suffix}")
        os.replace(tmp, target)
        dir_fd = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def export_v2(
    engine: EngineApi,
    name: str,
    out: Path,
    *,
    batch_pages: int = 256,
    start: Callable[[Head], None] = lambda head: None,
    advance: Callable[[int], None] = lambda n: None,
) -> Head:
    """Write every page of ``name`` to ``out`` from one head; returns that head.

    ``start(head)`` is called at each (re)start, ``advance(nbytes)`` after each batch.
    """
    for _ in range(MAX_RESTARTS):
        head = engine.head(name)
        start(head)
        try:
            if _copy_pages(engine, name, head, out, batch_pages, advance):
                return head
        except FenceMismatch:
            continue  # taken over meanwhile: start again from the new head
    raise CommandFailed(
        f"database {name!r} changed {MAX_RESTARTS} times during the export; stop its writers "
        "or try again when it is quieter"
    )


def _copy_pages(
    engine: EngineApi,
    name: str,
    head: Head,
    out: Path,
    batch_pages: int,
    advance: Callable[[int], None],
) -> bool:
    """Copy the pages of ``head``; False when the database moved on meanwhile."""
    total = head.db_size_pages
    with open(out, "wb") as f:
        for first in range(1, total + 1, batch_pages):
            wanted = [p for p in range(first, min(total, first + batch_pages - 1) + 1)]
            fetch = [p for p in wanted if p != LOCK_PGNO]
            answer = engine.get_pages(name, head.generation, fetch)
            if answer.head.head_txid != head.head_txid or answer.head.db_size_pages != total:
                return False
            for pgno in wanted:
                data = answer.pages.get(pgno) if pgno != LOCK_PGNO else None
                if data is None:
                    if pgno != LOCK_PGNO:
                        raise CommandFailed(
                            f"database {name!r}: the engine has no page {pgno} below the "
                            f"database size of {total} pages; the stored database is damaged"
                        )
                    data = bytes(PAGE_SIZE)
                f.write(data)
            advance(len(wanted) * PAGE_SIZE)
        f.flush()
        os.fsync(f.fileno())
    return True


def export_v1(conn: apsw.Connection, out: Path, advance: Callable[[int, int], None]) -> int:
    """Back ``conn`` (a v1 connection) up into ``out``; returns the page count.
    ``advance(done_pages, total_pages)`` reports progress."""
    dest = apsw.Connection(str(out))
    try:
        with dest.backup("main", conn, "main") as backup:
            while not backup.done:
                backup.step(256)
                advance(backup.page_count - backup.remaining, backup.page_count)
        dest.execute("PRAGMA journal_mode=DELETE")
        row = dest.execute("PRAGMA page_count").fetchone()
        return int(row[0]) if row else 0
    finally:
        dest.close()


def check_file(path: Path, full: bool) -> str:
    """Open ``path`` with SQLite and read its schema (``full``: ``PRAGMA integrity_check``);
    returns "ok" or raises ``CommandFailed``."""
    try:
        conn = apsw.Connection(str(path), flags=apsw.SQLITE_OPEN_READONLY)
        try:
            conn.execute("SELECT count(*) FROM sqlite_schema").fetchall()
            if full:
                rows = conn.execute("PRAGMA integrity_check").fetchall()
                if rows != [("ok",)]:
                    raise CommandFailed(
                        f"the exported file fails PRAGMA integrity_check "
                        f"(first problem: {rows[0][0] if rows else 'no answer'}); it was not "
                        "written"
                    )
        finally:
            conn.close()
    except apsw.Error as exc:
        raise CommandFailed(
            f"the exported file does not open as a SQLite database: {exc}"
        ) from None
    return "ok"
