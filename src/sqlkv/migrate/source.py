"""The v1 source of a migration: opening it with a read transaction held, reading its pages
straight from the store in batches, digesting them, and deleting its files at the end.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator
from dataclasses import replace

import apsw

from sqlkv.engine.config import PAGE_SIZE
from sqlkv.errors import ConfigError, MigrationError
from sqlkv.ltx import lock_pgno
from sqlkv.migrate.state import MigrationRecord, Progress, now_ms
from sqlkv.store import Store, Transaction
from sqlkv.vfs.v1 import connect_v1
from sqlkv.vfs.v1.keys import CHUNK_SIZE, ROLES, FileKeys, migration_state_key

LOCK_PAGE = lock_pgno(PAGE_SIZE)
ZERO_PAGE = bytes(PAGE_SIZE)


@contextlib.contextmanager
def open_source(name: str, store: Store) -> Iterator[int]:
    """Open v1 ``name`` with a read transaction held; yields its size in pages.

    The first read rolls a hot journal back. Refuses (ConfigError) another page size.
    """
    conn = connect_v1(name, store, cache_pages=16)
    clean = False
    try:
        conn.execute("BEGIN")
        conn.execute("SELECT count(*) FROM sqlite_master").fetchall()
        page_size = _pragma_int(conn, "page_size")
        pages = _pragma_int(conn, "page_count")
        if page_size != PAGE_SIZE:
            raise ConfigError(
                f"v1 database {name!r} has {page_size}-byte pages; v2 stores {PAGE_SIZE}-byte "
                f"pages only. Run 'PRAGMA page_size={PAGE_SIZE}; VACUUM' on it with v1 first"
            )
        yield pages
        conn.execute("ROLLBACK")
        clean = True
    finally:
        if clean:
            conn.close()
        else:  # the store or SQLite failed: whatever close reports is not the error to show
            with contextlib.suppress(apsw.Error):
                conn.close()


def _pragma_int(conn: apsw.Connection, pragma: str) -> int:
    row = conn.execute(f"PRAGMA {pragma}").fetchone()
    if row is None or not isinstance(row[0], int):
        raise MigrationError(f"PRAGMA {pragma} answered {row!r}, not a number")
    return row[0]


def source_batches(
    store: Store, name: str, pages: int, batch_pages: int
) -> Iterator[list[tuple[int, bytes]]]:
    """The v1 database's pages 1..``pages`` in order, ``batch_pages`` per store read."""
    keys = FileKeys(name, "db")
    for first in range(1, pages + 1, batch_pages):
        chunk_keys = [keys.chunk(p - 1) for p in range(first, min(first + batch_pages, pages + 1))]

        def read(tr: Transaction, chunk_keys: list[bytes] = chunk_keys) -> list[bytes | None]:
            return tr.get_many(chunk_keys, snapshot=True, point="read_chunks")

        values = store.transact(read, name="migrate.read_source")
        pgnos = range(first, first + len(values))
        batch = []
        for pgno, value in zip(pgnos, values, strict=True):
            if value is None or len(value) < CHUNK_SIZE:
                raise MigrationError(
                    f"v1 database {name!r} is damaged: page {pgno} is "
                    f"{'missing' if value is None else f'{len(value)} bytes'} in the store "
                    "(see sqlkv.vfs.v1.check); nothing can be migrated from it"
                )
            batch.append((pgno, value[:PAGE_SIZE]))
        yield batch


class Digests:
    """A 16-byte SHA-256 prefix per page and the SHA-256 of all pages, lock page excluded."""

    def __init__(self) -> None:
        self.pages = bytearray()
        self.total = hashlib.sha256()

    def add(self, pgno: int, page: bytes) -> None:
        if pgno != LOCK_PAGE:
            self.total.update(page)
        self.pages += hashlib.sha256(page).digest()[:16] if pgno != LOCK_PAGE else bytes(16)

    def first_difference(self, other: Digests) -> int | None:
        """The first page number whose digests differ, or None."""
        for i in range(0, max(len(self.pages), len(other.pages)), 16):
            if self.pages[i : i + 16] != other.pages[i : i + 16]:
                return i // 16 + 1
        return None


def digest_source(
    store: Store, name: str, pages: int, batch_pages: int, progress: Progress
) -> Digests:
    digests = Digests()
    progress("digest", 0, pages)
    for batch in source_batches(store, name, pages, batch_pages):
        for pgno, page in batch:
            digests.add(pgno, page)
        progress("digest", batch[-1][0], pages)
    return digests


def delete_v1_files(
    store: Store, name: str, record: MigrationRecord, progress: Progress
) -> MigrationRecord:
    """Remove the v1 files (metadata keys, then chunks: v1's delete order); keep the record."""
    deleted = replace(record, source_deleted=True, updated_ms=now_ms())
    progress("delete", 0, 1)

    def clear_meta(tr: Transaction) -> None:
        for role in ROLES:
            tr.clear(FileKeys(name, role).meta)

    def clear_chunks(tr: Transaction) -> None:
        for role in ROLES:
            tr.clear_range(*FileKeys(name, role).chunks_from(0))
        tr.set(migration_state_key(name), deleted.encode())

    store.transact(clear_meta, name="migrate.delete_meta")
    store.transact(clear_chunks, name="migrate.delete_chunks")
    progress("delete", 1, 1)
    return deleted
