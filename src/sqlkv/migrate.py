"""Converting a v1 database (files as chunked KV) into the v2 engine format: issue #7.

``migrate_v1_to_v2(name, store)`` copies v1 database ``name`` of ``store`` into the v2
database of the same name, verifies the copy and records that it is done. The v1 data
stays in place unless ``delete_source=True`` (it is removed only after a verified copy).

Steps (the store transactions are the only durable effects):

1. **survey**, one read-only transaction: does the v1 database exist, is there a v2
   database of that name, what does the migration record say
   (``vfs.v1.keys.migration_state_key``). Every refusal happens here and changes nothing.
2. **open the source** with ``connect_v1`` and keep a read transaction open until the end:
   SQLite rolls back a hot journal on this open (the recovery any open does), and the
   SHARED lock keeps every writer of this process out, so the pages copied are one
   consistent database. Its page size must be 4096 (the v2 page size).
3. **claim**, one transaction: the survey is repeated serializably and the record becomes
   ``staging`` with a fresh 16-byte commit id. Only then is the v2 database created.
4. **copy**: ``engine.open`` creates v2 (or takes over the empty database an interrupted
   attempt created, which removes its staged parts). The v1 chunks (chunk i is page i+1)
   are read straight from the store, ``batch_pages`` per transaction, and staged with
   ``commit_stage`` under one reserved txid; ``commit_finalize`` with the commit id makes
   them visible at once. All-zero pages are not stored (v2 reads them back as zeros) and
   SQLite's lock-byte page is never stored.
5. **verify**: v2 is opened with ``sqlkv.connect``; ``PRAGMA integrity_check`` must answer
   ``ok``, the page count must be the source's, and every page must equal the source page
   byte for byte (compared by SHA-256). Equal pages make a separate integrity check of the
   source unnecessary: the two databases are the same bytes.
6. **record**, one transaction: the record becomes ``done`` with the source's checksum.

**Resuming.** Staged pages are invisible until finalize, and a takeover removes them, so an
interrupted copy is never continued: a rerun starts over. What a rerun does is decided
from the survey alone:

========================  ==================================  ===============================
record                    v2 database                         rerun
========================  ==================================  ===============================
none                      absent                              migrate
none                      exists                              refuse: the name is taken
staging                   absent, or never committed to       migrate again (new commit id)
staging                   last commit is this record's id     verify, then record ``done``:
                                                              the crash hit after finalize
staging                   other commits                       refuse: v2 was written to
done                      exists                              nothing to do (v2 may have
                                                              been used since: that is fine)
done                      absent                              migrate again
========================  ==================================  ===============================

A copy whose verification fails is removed again (the v2 database and the record) before
the error is raised, so a failed migration leaves the store as it found it; the same
happens to an interrupted attempt's finalized copy when the source changed since (it is
then copied again). ``delete_source`` removes the v1 files only after the record says
``done`` and the source still has the checksum recorded there (v1's order: metadata
keys, then chunks), and keeps the record, so a rerun answers "already migrated".

One process owns a v1 database at a time (v1's rule): nothing here can keep another
process from writing the source during a migration, and ``delete_source`` requires that no
other connection of this process has the v1 database open.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from enum import StrEnum

import apsw

from sqlkv.engine import Engine, EngineApi
from sqlkv.engine.head import CREATION_TXID, Head
from sqlkv.engine.keys import DbKeys
from sqlkv.engine.stage import MAX_SEQ
from sqlkv.errors import CommitTooLarge, ConfigError, MigrationError
from sqlkv.ltx import lock_pgno
from sqlkv.store import Store, Transaction
from sqlkv.vfs.v1 import connect_v1
from sqlkv.vfs.v1.keys import CHUNK_SIZE, ROLES, FileKeys, decode_size, migration_state_key

PAGE_SIZE = 4096
LOCK_PAGE = lock_pgno(PAGE_SIZE)
ZERO_PAGE = bytes(PAGE_SIZE)
DEFAULT_BATCH_PAGES = 1024  # 4 MiB of pages per read and per commit_stage
MAX_BATCH_PAGES = 4096
RECORD_VERSION = 1

Progress = Callable[[str, int, int], None]
"""``progress(phase, done, total)``. Page phases: ``stage`` (read and staged), ``digest``
(source read to compare, when an earlier attempt's copy is checked or before a delete),
``verify`` (v2 pages compared). Steps, 0 of 1 when they start and 1 of 1 when they landed:
``finalize``, ``record`` (the done record), ``delete`` (the v1 files)."""


class Outcome(StrEnum):
    """What a call of ``migrate_v1_to_v2`` did."""

    MIGRATED = "migrated"  # copied, verified and recorded by this call
    VERIFIED = "verified"  # an interrupted attempt's finalized copy, verified and recorded
    ALREADY_DONE = "already migrated"  # the record said done: nothing copied


@dataclass(frozen=True)
class MigrationReport:
    """The result of ``migrate_v1_to_v2``.

    ``pages``: the database's size in pages; ``pages_stored``: those staged into v2 (every
    page that is not all zeros nor the lock page); ``checksum``: SHA-256 (hex) of the
    source's pages in order, lock page excluded; ``attempts``: copies started so far,
    this call's included; ``v2_head_txid``: the v2 head when this call verified it (0 when
    it did not look).
    """

    name: str
    outcome: Outcome
    pages: int
    pages_stored: int
    bytes_staged: int
    stage_calls: int
    checksum: str
    attempts: int
    v2_head_txid: int
    journal_rolled_back: bool
    source_deleted: bool
    seconds: float


# --------------------------------------------------------------------------- the record


@dataclass(frozen=True)
class MigrationRecord:
    """The migration state kept at ``migration_state_key(name)``, as versioned JSON.

    ``phase`` is ``staging`` (a copy was started with ``commit_id``; it may or may not
    have been finalized) or ``done`` (verified; ``checksum`` is the source's).
    """

    phase: str
    commit_id: bytes
    pages: int
    attempts: int
    checksum: str = ""
    source_deleted: bool = False
    updated_ms: int = 0

    STAGING = "staging"
    DONE = "done"

    def encode(self) -> bytes:
        return json.dumps(
            {
                "version": RECORD_VERSION,
                "phase": self.phase,
                "commit_id": self.commit_id.hex(),
                "pages": self.pages,
                "attempts": self.attempts,
                "checksum": self.checksum,
                "source_deleted": self.source_deleted,
                "updated_ms": self.updated_ms,
            },
            sort_keys=True,
        ).encode()

    @classmethod
    def decode(cls, raw: bytes) -> MigrationRecord:
        try:
            data = json.loads(raw)
            if data.get("version") != RECORD_VERSION:
                raise ValueError(f"version {data.get('version')!r}")
            record = cls(
                phase=str(data["phase"]),
                commit_id=bytes.fromhex(data["commit_id"]),
                pages=int(data["pages"]),
                attempts=int(data["attempts"]),
                checksum=str(data["checksum"]),
                source_deleted=bool(data["source_deleted"]),
                updated_ms=int(data["updated_ms"]),
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise MigrationError(
                f"the migration record is not one this sqlkv wrote ({exc}); upgrade sqlkv"
            ) from exc
        if record.phase not in (cls.STAGING, cls.DONE) or len(record.commit_id) != 16:
            raise MigrationError(f"the migration record is damaged: {raw[:200]!r}")
        return record


def _now_ms() -> int:
    return int(time.time() * 1000)


# --------------------------------------------------------------------------- survey


class Action(StrEnum):
    MIGRATE = "migrate"
    VERIFY = "verify"
    DONE = "done"


@dataclass(frozen=True)
class Survey:
    """What the store holds for ``name``: the v1 db file's size, the journal, v2, the record."""

    v1_size: int | None
    journal: bool
    v2: Head | None
    record: MigrationRecord | None

    def action(self, name: str) -> Action:
        """What to do (see the module's table); ``ConfigError`` for a refusal."""
        record, v2 = self.record, self.v2
        if record is not None and record.phase == MigrationRecord.DONE:
            return Action.MIGRATE if v2 is None and self.v1_size is not None else Action.DONE
        if self.v1_size is None:
            raise ConfigError(
                f"there is no v1 database named {name!r} in this store: nothing to migrate"
            )
        if v2 is None:
            return Action.MIGRATE
        if record is None:
            raise ConfigError(
                f"a v2 database named {name!r} already exists and is not a migration of the "
                f"v1 database {name!r}; nothing was changed. Migrate under another store or "
                "remove the v2 database first"
            )
        if v2.last_commit_id == record.commit_id:
            return Action.VERIFY
        if v2.head_txid == CREATION_TXID:
            return Action.MIGRATE
        raise ConfigError(
            f"the v2 database {name!r} has commits that are not this migration's (it was "
            "written to after an interrupted migration); nothing was changed. Remove the v2 "
            "database to migrate again"
        )


def _survey(tr: Transaction, name: str, *, snapshot: bool) -> Survey:
    meta, journal, v2, record = tr.get_many(
        [
            FileKeys(name, "db").meta,
            FileKeys(name, "journal").meta,
            DbKeys(name).meta,
            migration_state_key(name),
        ],
        snapshot=snapshot,
    )
    try:
        size = None if meta is None else decode_size(meta)
    except ValueError as exc:
        raise MigrationError(f"v1 database {name!r} is damaged: {exc}") from exc
    return Survey(
        size,
        journal is not None,
        None if v2 is None else Head.decode(v2),
        None if record is None else MigrationRecord.decode(record),
    )


# --------------------------------------------------------------------------- the source


@contextlib.contextmanager
def _open_source(name: str, store: Store) -> Iterator[int]:
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


def _source_batches(
    store: Store, name: str, pages: int, batch_pages: int
) -> Iterator[list[tuple[int, bytes]]]:
    """The v1 database's pages 1..``pages`` in order, ``batch_pages`` per store read."""
    keys = FileKeys(name, "db")
    for first in range(1, pages + 1, batch_pages):
        chunk_keys = [keys.chunk(p - 1) for p in range(first, min(first + batch_pages, pages + 1))]

        def read(tr: Transaction, chunk_keys: list[bytes] = chunk_keys) -> list[bytes | None]:
            return tr.get_many(chunk_keys, snapshot=True)

        values = store.transact(read)
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


class _Digests:
    """A 16-byte SHA-256 prefix per page and the SHA-256 of all pages, lock page excluded."""

    def __init__(self) -> None:
        self.pages = bytearray()
        self.total = hashlib.sha256()

    def add(self, pgno: int, page: bytes) -> None:
        if pgno != LOCK_PAGE:
            self.total.update(page)
        self.pages += hashlib.sha256(page).digest()[:16] if pgno != LOCK_PAGE else bytes(16)

    def first_difference(self, other: _Digests) -> int | None:
        """The first page number whose digests differ, or None."""
        for i in range(0, max(len(self.pages), len(other.pages)), 16):
            if self.pages[i : i + 16] != other.pages[i : i + 16]:
                return i // 16 + 1
        return None


def _digest_source(
    store: Store, name: str, pages: int, batch_pages: int, progress: Progress
) -> _Digests:
    digests = _Digests()
    progress("digest", 0, pages)
    for batch in _source_batches(store, name, pages, batch_pages):
        for pgno, page in batch:
            digests.add(pgno, page)
        progress("digest", batch[-1][0], pages)
    return digests


# --------------------------------------------------------------------------- the migration


@dataclass
class _Copy:
    pages_stored: int = 0
    bytes_staged: int = 0
    stage_calls: int = 0


class _Migration:
    """One call of ``migrate_v1_to_v2``."""

    def __init__(
        self,
        name: str,
        store: Store,
        engine: EngineApi | None,
        batch_pages: int,
        progress: Progress,
    ) -> None:
        self.name = name
        self.store = store
        self.own_engine = engine is None
        self.engine: EngineApi = engine if engine is not None else Engine(store)
        self.batch_pages = batch_pages
        self.progress = progress
        self.copy = _Copy()

    # ------------------------------------------------------------------ claim and record

    def claim(
        self, expected: Action, survey: Survey, pages: int, clear_v2: bool
    ) -> MigrationRecord:
        """Write the ``staging`` record (one transaction) if the store still is as surveyed.

        The record and the action the survey led to are read again serializably, so two
        migrations racing for one database cannot both claim it. ``clear_v2`` removes the
        v2 database first: an attempt's finalized copy that is no longer wanted (the action
        is still ``VERIFY``, so its last commit is still that attempt's).
        """
        old = survey.record
        record = MigrationRecord(
            MigrationRecord.STAGING,
            os.urandom(16),
            pages,
            (old.attempts if old is not None else 0) + 1,
            updated_ms=_now_ms(),
        )

        def claim(tr: Transaction) -> None:
            now = _survey(tr, self.name, snapshot=False)
            if now.record != survey.record or now.action(self.name) is not expected:
                raise ConfigError(
                    f"database {self.name!r} changed while the migration was starting "
                    "(another migration or writer?); run the migration again"
                )
            if clear_v2:
                tr.clear_range(*DbKeys(self.name).all_range())
            tr.set(migration_state_key(self.name), record.encode())

        self.store.transact(claim)
        return record

    def record_done(self, record: MigrationRecord, checksum: str) -> MigrationRecord:
        done = replace(record, phase=MigrationRecord.DONE, checksum=checksum, updated_ms=_now_ms())
        key = migration_state_key(self.name)

        def mark(tr: Transaction) -> None:
            raw = tr.get(key)
            if raw is None or MigrationRecord.decode(raw).commit_id != record.commit_id:
                raise ConfigError(
                    f"the migration record of {self.name!r} changed under this migration "
                    "(another migration ran?); run the migration again"
                )
            tr.set(key, done.encode())

        self.progress("record", 0, 1)
        self.store.transact(mark)
        self.progress("record", 1, 1)
        return done

    def undo(self, record: MigrationRecord) -> None:
        """Remove this attempt's v2 copy and the record (one transaction), if still ours."""
        keys = DbKeys(self.name)

        def remove(tr: Transaction) -> None:
            raw = tr.get(keys.meta)
            if raw is not None and Head.decode(raw).last_commit_id != record.commit_id:
                return  # someone committed since: not ours to remove
            tr.clear_range(*keys.all_range())
            tr.clear(migration_state_key(self.name))

        self.store.transact(remove)

    # ------------------------------------------------------------------ copy

    def copy_pages(self, record: MigrationRecord, pages: int) -> _Digests:
        """Stage every page of the source under one txid and finalize it with the record's id."""
        opened = self.engine.open(self.name, preload_bytes=0)
        generation, expected = opened.head.generation, opened.head.head_txid
        digests = _Digests()
        txid: int | None = None
        seq = 0
        done = 0
        self.progress("stage", 0, pages)
        for batch in _source_batches(self.store, self.name, pages, self.batch_pages):
            wanted: dict[int, bytes] = {}
            for pgno, page in batch:
                digests.add(pgno, page)
                if pgno != LOCK_PAGE and page != ZERO_PAGE:
                    wanted[pgno] = page
            if wanted:
                txid, seq = self._stage(generation, txid, seq, wanted)
            done += len(batch)
            self.progress("stage", done, pages)
        self.progress("finalize", 0, 1)
        if txid is None:  # nothing but zeros (or no pages): the size alone says it all
            self.engine.commit(
                self.name, generation, expected, {}, pages, commit_id=record.commit_id
            )
        else:
            self.engine.commit_finalize(
                self.name, generation, expected, txid, pages, commit_id=record.commit_id
            )
        self.progress("finalize", 1, 1)
        return digests

    def _stage(
        self, generation: int, txid: int | None, seq: int, pages: dict[int, bytes]
    ) -> tuple[int, int]:
        """Stage ``pages`` as call ``seq`` (halving the batch when the engine finds it too
        large); returns the txid and the next seq."""
        if seq >= MAX_SEQ:
            raise MigrationError(
                f"v1 database {self.name!r} needs more than {MAX_SEQ} stage calls at "
                f"batch_pages={self.batch_pages}; migrate it with a larger batch_pages"
            )
        try:
            result = self.engine.commit_stage(self.name, generation, txid, seq, pages)
        except CommitTooLarge:
            if len(pages) == 1:
                raise
            items = sorted(pages.items())
            half = len(items) // 2
            txid, seq = self._stage(generation, txid, seq, dict(items[:half]))
            return self._stage(generation, txid, seq, dict(items[half:]))
        self.copy.stage_calls += 1
        self.copy.pages_stored += len(pages)
        self.copy.bytes_staged += len(pages) * PAGE_SIZE
        return result.txid, seq + 1

    # ------------------------------------------------------------------ verify

    def verify(self, source: _Digests, pages: int) -> tuple[bool, str, int]:
        """Open v2 with ``sqlkv.connect`` and compare it with the source's digests.

        Returns (ok, what differs, v2 head txid).
        """
        from sqlkv.client import connect

        if self.own_engine:
            conn = connect(self.name, self.store, compaction=False)
        else:
            conn = connect(self.name, engine=self.engine)
        try:
            head = conn.sqlkv_head()
            ((count,),) = conn.execute("PRAGMA page_count").fetchall()
            if count != pages or head.db_size_pages != pages:
                return False, f"v2 has {count} pages, the source {pages}", head.head_txid
            copy = _Digests()
            self.progress("verify", 0, pages)
            for first in range(1, pages + 1, self.batch_pages):
                pgnos = list(range(first, min(first + self.batch_pages, pages + 1)))
                wanted = [p for p in pgnos if p != LOCK_PAGE]
                got = self.engine.get_pages(self.name, conn.sqlkv_generation, wanted).pages
                for pgno in pgnos:
                    copy.add(pgno, got.get(pgno) or ZERO_PAGE)
                self.progress("verify", pgnos[-1], pages)
            differs = source.first_difference(copy)
            if differs is not None:
                return False, f"page {differs} differs from the source", head.head_txid
            problems = [str(row[0]) for row in conn.execute("PRAGMA integrity_check")]
            if problems != ["ok"]:
                return (
                    False,
                    "v2 fails PRAGMA integrity_check although its pages equal the source's, so "
                    f"the v1 database itself is damaged: {'; '.join(problems[:3])}",
                    head.head_txid,
                )
            return True, "", head.head_txid
        finally:
            conn.close()

    # ------------------------------------------------------------------ delete the source

    def delete_source(self, record: MigrationRecord) -> MigrationRecord:
        """Remove the v1 files (metadata keys, then chunks: v1's delete order); keep the record."""
        deleted = replace(record, source_deleted=True, updated_ms=_now_ms())
        self.progress("delete", 0, 1)

        def clear_meta(tr: Transaction) -> None:
            for role in ROLES:
                tr.clear(FileKeys(self.name, role).meta)

        def clear_chunks(tr: Transaction) -> None:
            for role in ROLES:
                tr.clear_range(*FileKeys(self.name, role).chunks_from(0))
            tr.set(migration_state_key(self.name), deleted.encode())

        self.store.transact(clear_meta)
        self.store.transact(clear_chunks)
        self.progress("delete", 1, 1)
        return deleted


def _ignore(phase: str, done: int, total: int) -> None:
    pass


def migrate_v1_to_v2(
    name: str,
    store: Store,
    *,
    engine: EngineApi | None = None,
    batch_pages: int = DEFAULT_BATCH_PAGES,
    progress: Progress | None = None,
    delete_source: bool = False,
) -> MigrationReport:
    """Copy v1 database ``name`` of ``store`` into the v2 format, verify it, record it done.

    Safe to run again after a crash at any point, and after it completed (see the module
    docstring). ``engine``: the ``EngineApi`` to write through (it must serve ``store``);
    default an in-process ``Engine(store)``. ``batch_pages``: pages per store read and per
    ``commit_stage`` (1..4096). ``progress``: called as ``progress(phase, done, total)``.
    ``delete_source``: remove the v1 files once the copy is verified (default: keep them).

    Refusals raise ``ConfigError`` and change nothing: no v1 database of that name, a v2
    database of that name that this migration did not create, a page size other than
    4096. A copy that fails verification is removed again and raises ``MigrationError``.
    """
    if not isinstance(batch_pages, int) or not 1 <= batch_pages <= MAX_BATCH_PAGES:
        raise ConfigError(f"batch_pages must be within 1..{MAX_BATCH_PAGES}, got {batch_pages!r}")
    start = time.perf_counter()
    run = _Migration(name, store, engine, batch_pages, progress or _ignore)
    survey = store.transact(lambda tr: _survey(tr, name, snapshot=True))
    action = survey.action(name)

    if action is Action.DONE:
        record = survey.record
        assert record is not None
        if delete_source and not record.source_deleted:
            if survey.v1_size is not None:
                with _open_source(name, store) as pages:
                    now = _digest_source(store, name, pages, batch_pages, run.progress)
                if now.total.hexdigest() != record.checksum:
                    raise ConfigError(
                        f"v1 database {name!r} changed after it was migrated; it was not "
                        "deleted. Its changes are not in the v2 database"
                    )
            record = run.delete_source(record)
        return _report(run, survey, record, Outcome.ALREADY_DONE, record.pages, 0, start)

    with _open_source(name, store) as pages:
        outcome = Outcome.MIGRATED
        head_txid = 0
        if action is Action.VERIFY:
            record = survey.record
            assert record is not None
            source = _digest_source(store, name, pages, batch_pages, run.progress)
            ok, _, head_txid = run.verify(source, pages)
            if ok:
                outcome = Outcome.VERIFIED
            else:  # the source changed since that attempt: copy it again
                record = run.claim(action, survey, pages, clear_v2=True)
        else:
            record = run.claim(action, survey, pages, clear_v2=False)
            ok = False
        if not ok:
            source = run.copy_pages(record, pages)
            ok, differs, head_txid = run.verify(source, pages)
            if not ok:
                run.undo(record)
                raise MigrationError(
                    f"the v2 copy of {name!r} failed verification ({differs}); it was removed "
                    "again and the v1 database is unchanged"
                )
        record = run.record_done(record, source.total.hexdigest())
    if delete_source:
        record = run.delete_source(record)
    return _report(run, survey, record, outcome, pages, head_txid, start)


def _report(
    run: _Migration,
    survey: Survey,
    record: MigrationRecord,
    outcome: Outcome,
    pages: int,
    head_txid: int,
    start: float,
) -> MigrationReport:
    rolled_back = survey.journal and outcome is not Outcome.ALREADY_DONE
    if rolled_back:
        rolled_back = (
            run.store.transact(lambda tr: tr.get(FileKeys(run.name, "journal").meta, snapshot=True))
            is None
        )
    return MigrationReport(
        name=run.name,
        outcome=outcome,
        pages=pages,
        pages_stored=run.copy.pages_stored,
        bytes_staged=run.copy.bytes_staged,
        stage_calls=run.copy.stage_calls,
        checksum=record.checksum,
        attempts=record.attempts,
        v2_head_txid=head_txid,
        journal_rolled_back=rolled_back,
        source_deleted=record.source_deleted,
        seconds=time.perf_counter() - start,
    )


__all__ = [
    "DEFAULT_BATCH_PAGES",
    "MAX_BATCH_PAGES",
    "MigrationRecord",
    "MigrationReport",
    "Outcome",
    "Progress",
    "migrate_v1_to_v2",
]
