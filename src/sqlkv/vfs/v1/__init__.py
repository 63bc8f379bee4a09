"""The v1 format (docs/design.md §6): SQLite files as chunked keys, written straight to the store.

``connect_v1(name, store)`` opens database ``name`` kept in ``store``. Each SQLite file of
the database (the main file and its rollback journal) is a metadata key and one key per
4 KiB chunk (``keys.py``); every xWrite is one store transaction, xRead goes through a
bounded LRU of chunks, xSync does nothing (the store is durable). The journal lives in
the store too (journal_mode DELETE), so a crash leaves a hot journal that SQLite rolls
back on the next open.

One process owns a v1 database at a time: locks are kept in the process (``locks.py``)
and caches trust that nobody else writes. Counters of store round trips are on
``conn.v1_stats`` (``V1Stats``).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, fields
from typing import Any

import apsw

from sqlkv.errors import ConfigError
from sqlkv.store import Store
from sqlkv.vfs.v1.keys import CHUNK_SIZE
from sqlkv.vfs.v1.stats import V1Stats
from sqlkv.vfs.v1.vfs import VFS_NAME, Mount, get_vfs

DEFAULT_CACHE_PAGES = 2_048  # 8 MiB of chunks per file


@dataclass(frozen=True)
class V1Options:
    """Options of ``connect_v1``.

    ``cache_pages``: chunks each file keeps in the VFS read cache (0 disables it; shared
    by the connections of this process that have the database open, the first one sets
    it). ``flags``: apsw open flags. ``busy_timeout_ms``: how long a statement waits for
    another connection of this process to release its lock.
    """

    cache_pages: int = DEFAULT_CACHE_PAGES
    flags: int = apsw.SQLITE_OPEN_READWRITE | apsw.SQLITE_OPEN_CREATE
    busy_timeout_ms: int = 0

    @classmethod
    def from_kwargs(cls, **opts: Any) -> V1Options:
        valid = {f.name for f in fields(cls)}
        unknown = sorted(set(opts) - valid)
        if unknown:
            raise ConfigError(
                f"unknown v1 option(s) {', '.join(unknown)}; valid: {', '.join(sorted(valid))}"
            )
        options = cls(**opts)
        options.validate()
        return options

    def validate(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ConfigError(f"v1 option {f.name} must be an integer >= 0, got {value!r}")


class V1Connection(apsw.Connection):
    """An ``apsw.Connection`` to a v1 database; ``v1_stats`` counts its store round trips."""

    v1_mount: Mount

    @property
    def v1_stats(self) -> V1Stats:
        return self.v1_mount.stats


def connect_v1(
    name: str, store: Store, *, cache_pages: int = DEFAULT_CACHE_PAGES, **opts: Any
) -> V1Connection:
    """Open v1 database ``name`` of ``store`` (created empty if absent).

    New databases get 4 KiB pages; the journal mode is DELETE and temporary files live
    in memory. Options: see ``V1Options``.
    """
    options = V1Options.from_kwargs(cache_pages=cache_pages, **opts)
    vfs = get_vfs()
    mount = vfs.mount(store, name, cache_chunks=options.cache_pages)
    try:
        conn = V1Connection(mount.path, flags=options.flags, vfs=VFS_NAME)
    except BaseException:
        mount.close()
        raise
    conn.v1_mount = mount
    try:
        if options.busy_timeout_ms:
            conn.set_busy_timeout(options.busy_timeout_ms)
        conn.execute(
            f"PRAGMA page_size = {CHUNK_SIZE}; PRAGMA temp_store = MEMORY; "
            "PRAGMA journal_mode = DELETE"
        ).fetchall()
    except BaseException:
        with contextlib.suppress(apsw.Error):  # the first error is the one to report
            conn.close()
        raise
    return conn


__all__ = ["DEFAULT_CACHE_PAGES", "V1Connection", "V1Options", "V1Stats", "connect_v1"]
