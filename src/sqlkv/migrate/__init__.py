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

This module runs the steps; the package splits them by what they own: ``state.py`` (the
record, the survey and the transactions that move the record), ``source.py`` (the v1
source: open, read, digest, delete), ``copy.py`` (stage and finalize) and ``verify.py``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import StrEnum

from sqlkv.engine import Engine, EngineApi
from sqlkv.errors import ConfigError, MigrationError
from sqlkv.migrate import state
from sqlkv.migrate.copy import PageCopy
from sqlkv.migrate.source import Digests, delete_v1_files, digest_source, open_source
from sqlkv.migrate.state import Action, MigrationRecord, Progress, Survey, read_survey
from sqlkv.migrate.verify import verify_copy
from sqlkv.store import Store
from sqlkv.vfs.v1.keys import FileKeys

DEFAULT_BATCH_PAGES = 1024  # 4 MiB of pages per read and per commit_stage
MAX_BATCH_PAGES = 4096


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


# --------------------------------------------------------------------------- the migration


class _Migration:
    """One call of ``migrate_v1_to_v2``: what its steps share, and each step as a method
    over it (the steps themselves live in the modules named in the package docstring)."""

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
        self.copy = PageCopy(name, store, self.engine, batch_pages, progress)

    def claim(
        self, expected: Action, surveyed: Survey, pages: int, clear_v2: bool
    ) -> MigrationRecord:
        return state.claim(self.store, self.name, expected, surveyed, pages, clear_v2=clear_v2)

    def record_done(self, record: MigrationRecord, checksum: str) -> MigrationRecord:
        return state.record_done(self.store, self.name, record, checksum, self.progress)

    def undo(self, record: MigrationRecord) -> None:
        state.undo(self.store, self.name, record)

    def copy_pages(self, record: MigrationRecord, pages: int) -> Digests:
        return self.copy.run(record, pages)

    def verify(self, source: Digests, pages: int) -> tuple[bool, str, int]:
        return verify_copy(
            self.name,
            self.store,
            self.engine,
            own_engine=self.own_engine,
            source=source,
            pages=pages,
            batch_pages=self.batch_pages,
            progress=self.progress,
        )

    def delete_source(self, record: MigrationRecord) -> MigrationRecord:
        return delete_v1_files(self.store, self.name, record, self.progress)


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
    survey = store.transact(lambda tr: read_survey(tr, name, snapshot=True), name="migrate.survey")
    action = survey.action(name)

    if action is Action.DONE:
        record = survey.record
        assert record is not None
        if delete_source and not record.source_deleted:
            if survey.v1_size is not None:
                with open_source(name, store) as pages:
                    now = digest_source(store, name, pages, batch_pages, run.progress)
                if now.total.hexdigest() != record.checksum:
                    raise ConfigError(
                        f"v1 database {name!r} changed after it was migrated; it was not "
                        "deleted. Its changes are not in the v2 database"
                    )
            record = run.delete_source(record)
        return _report(run, survey, record, Outcome.ALREADY_DONE, record.pages, 0, start)

    with open_source(name, store) as pages:
        outcome = Outcome.MIGRATED
        head_txid = 0
        if action is Action.VERIFY:
            record = survey.record
            assert record is not None
            source = digest_source(store, name, pages, batch_pages, run.progress)
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
            run.store.transact(
                lambda tr: tr.get(
                    FileKeys(run.name, "journal").meta, snapshot=True, point="read_meta"
                ),
                name="migrate.journal",
            )
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
