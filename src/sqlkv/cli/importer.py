"""Loading a plain SQLite file's pages into a sqlkv database, straight through the engine.

Pages go through ``commit_stage`` in batches (4 MiB by default) and become visible with one
``commit_finalize``: an import of up to ``txn_bytes`` (256 MiB by default) is **one
transaction**, so readers see the old database or the new one, never a mix. Memory stays
bounded by a few batches whatever the file's size.

A larger file is imported in several transactions of at most ``txn_bytes`` each. The first
one also writes a zeroed page 1 and the last one the real page 1, so until the last lands
the database reads as "not a database" (never as a mix of old and new pages); an
interrupted import is finished by running it again with ``--replace``. Between
transactions, an in-process engine is compacted when the engine asks for it
(``CompactionBehind``); a remote engine compacts on its own and is waited for.

Why not SQLite's backup API into a ``sqlkv.connect`` connection: the backup is one SQLite
transaction, which the client VFS buffers whole in memory until its commit (measured: peak
memory grows with the file), and it cannot change the page size either.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from sqlkv.cli.source import LOCK_PGNO, SourceDb
from sqlkv.engine.api import EngineApi
from sqlkv.engine.config import PAGE_SIZE
from sqlkv.engine.head import CREATION_TXID, Head
from sqlkv.engine.keys import DbKeys
from sqlkv.engine.pidx import pidx_row_bytes
from sqlkv.errors import CommandFailed, CompactionBehind, DatabaseNotFound, FenceMismatch

MiB = 1024 * 1024
STORE_TXN_BUDGET = 4_000_000
"""Bytes of PIDX rows one finalize may write: under half the store's default 10 MB
transaction limit, whatever the name's length."""


@dataclass(frozen=True)
class ImportOptions:
    """``replace``: overwrite an existing database. ``txn_bytes``: largest transaction.
    ``stage_bytes``: pages per ``commit_stage`` call (raw bytes). ``compaction_wait_s``: how
    long to wait for a remote engine's compaction when it refuses a commit."""

    replace: bool = False
    txn_bytes: int = 256 * MiB
    stage_bytes: int = 4 * MiB
    compaction_wait_s: float = 600.0


@dataclass(frozen=True)
class ImportResult:
    head: Head
    pages: int
    transactions: int
    replaced: bool


def pages_per_transaction(name: str, txn_bytes: int) -> int:
    """Pages one transaction may carry: ``txn_bytes`` of pages, and PIDX rows that fit."""
    row = pidx_row_bytes(DbKeys(name))
    return max(2, min(txn_bytes // PAGE_SIZE, STORE_TXN_BUDGET // row))


def plan(total: int, per_txn: int) -> list[tuple[int, int]]:
    """Inclusive page ranges, one per transaction. One transaction: ``[(1, total)]``.
    Several: pages 2..total split evenly, page 1 added to the last one by the caller."""
    if total <= per_txn:
        return [(1, total)]
    ranges: list[tuple[int, int]] = []
    first = 2
    while first <= total:
        last = min(total, first + per_txn - 1)
        ranges.append((first, last))
        first = last + 1
    return ranges


def database_exists(engine: EngineApi, name: str) -> bool:
    try:
        engine.head(name)
    except DatabaseNotFound:
        return False
    return True


def import_pages(
    engine: EngineApi,
    name: str,
    source: SourceDb,
    options: ImportOptions,
    *,
    advance: Callable[[int], None] = lambda n: None,
    target: str = "the store",
) -> ImportResult:
    """Copy every page of ``source`` into database ``name`` (see the module docstring)."""
    total = source.page_count
    if total == 0:
        raise CommandFailed(f"{source.path}: the database has no pages; nothing to import")
    exists = database_exists(engine, name)
    if exists and not options.replace:
        raise CommandFailed(
            f"database {name!r} already exists in {target}; pass --replace to overwrite it"
        )
    head = engine.open(name, preload_bytes=0).head  # creates it, or takes it over
    if not exists and (head.head_txid != CREATION_TXID or head.db_size_pages):
        raise CommandFailed(
            f"database {name!r} was created by another client during the import; nothing "
            "was written: run it again with --replace to overwrite it"
        )
    ranges = plan(total, pages_per_transaction(name, options.txn_bytes))
    batch = max(1, options.stage_bytes // PAGE_SIZE)
    several = len(ranges) > 1
    for i, (first, last) in enumerate(ranges):
        is_last = i == len(ranges) - 1
        try:
            txid: int | None = None
            seq = 0
            if several and i == 0:  # the old page 1 must not survive beside new pages
                zero = {1: bytes(PAGE_SIZE)}
                txid = engine.commit_stage(name, head.generation, None, 0, zero).txid
                seq = 1
            batches: Iterable[list[tuple[int, bytes]]] = source.pages(first, last, batch)
            if several and is_last:
                batches = itertools.chain(batches, source.pages(1, 1, 1))
            for pages in batches:
                txid = engine.commit_stage(name, head.generation, txid, seq, dict(pages)).txid
                seq += 1
                advance(len(pages) * PAGE_SIZE)
            assert txid is not None
            size = total if is_last else max(last, 1)
            head = _finalize(engine, name, head, txid, size, options)
        except FenceMismatch:
            state = (
                "the database is left incomplete (it reads as not a database)"
                if several and i > 0
                else "nothing of the import was committed"
            )
            raise CommandFailed(
                f"another client took database {name!r} over during the import; {state}: run "
                "the import again with --replace"
            ) from None
    return ImportResult(head, total - (1 if total >= LOCK_PGNO else 0), len(ranges), exists)


def _finalize(
    engine: EngineApi, name: str, head: Head, txid: int, size: int, options: ImportOptions
) -> Head:
    """``commit_finalize``, compacting (in process) or waiting (remote) while the engine
    refuses it with ``CompactionBehind``. The commit id makes a retry after a lost answer
    apply once."""
    commit_id = os.urandom(16)
    deadline = time.monotonic() + options.compaction_wait_s
    delay = 0.05
    while True:
        try:
            result = engine.commit_finalize(
                name, head.generation, head.head_txid, txid, size, commit_id=commit_id
            )
            return result.head
        except CompactionBehind:
            compact = getattr(engine, "compact_until_done", None)
            if callable(compact):
                compact(name)
                continue
            if time.monotonic() > deadline:
                raise CommandFailed(
                    f"the engine refused the import's commit for {options.compaction_wait_s:.0f}"
                    " s: compaction is behind; try again later"
                ) from None
            time.sleep(delay)
            delay = min(2.0, delay * 2)
