"""The migration's durable state: the record at ``migration_state_key(name)``, the survey
that decides what a run does (the table in ``sqlkv.migrate``), and the transactions that
move the record: claim (``staging``), done, and undo.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import StrEnum

from sqlkv.engine.head import CREATION_TXID, Head
from sqlkv.engine.keys import DbKeys
from sqlkv.errors import ConfigError, MigrationError
from sqlkv.store import Store, Transaction
from sqlkv.vfs.v1.keys import FileKeys, decode_size, migration_state_key

RECORD_VERSION = 1

Progress = Callable[[str, int, int], None]
"""``progress(phase, done, total)``. Page phases: ``stage`` (read and staged), ``digest``
(source read to compare, when an earlier attempt's copy is checked or before a delete),
``verify`` (v2 pages compared). Steps, 0 of 1 when they start and 1 of 1 when they landed:
``finalize``, ``record`` (the done record), ``delete`` (the v1 files)."""


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


def now_ms() -> int:
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
        """What to do (see the table in ``sqlkv.migrate``); ``ConfigError`` for a refusal."""
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


def read_survey(tr: Transaction, name: str, *, snapshot: bool) -> Survey:
    meta, journal, v2, record = tr.get_many(
        [
            FileKeys(name, "db").meta,
            FileKeys(name, "journal").meta,
            DbKeys(name).meta,
            migration_state_key(name),
        ],
        snapshot=snapshot,
        point="read_state",
    )
    try:
        size = None if meta is None else decode_size(meta)
    except ValueError as exc:
        raise MigrationError(f"v1 database {name!r} is damaged: {exc}") from exc
    return Survey(
        size,
        journal is not None,
        None if v2 is None else Head.decode(v2, name),
        None if record is None else MigrationRecord.decode(record),
    )


# --------------------------------------------------------------------------- record transactions


def claim(
    store: Store, name: str, expected: Action, surveyed: Survey, pages: int, *, clear_v2: bool
) -> MigrationRecord:
    """Write the ``staging`` record (one transaction) if the store still is as surveyed.

    The record and the action the survey led to are read again serializably, so two
    migrations racing for one database cannot both claim it. ``clear_v2`` removes the
    v2 database first: an attempt's finalized copy that is no longer wanted (the action
    is still ``VERIFY``, so its last commit is still that attempt's).
    """
    old = surveyed.record
    record = MigrationRecord(
        MigrationRecord.STAGING,
        os.urandom(16),
        pages,
        (old.attempts if old is not None else 0) + 1,
        updated_ms=now_ms(),
    )

    def claim_it(tr: Transaction) -> None:
        now = read_survey(tr, name, snapshot=False)
        if now.record != surveyed.record or now.action(name) is not expected:
            raise ConfigError(
                f"database {name!r} changed while the migration was starting "
                "(another migration or writer?); run the migration again"
            )
        if clear_v2:
            tr.clear_range(*DbKeys(name).all_range())
        tr.set(migration_state_key(name), record.encode())

    store.transact(claim_it, name="migrate.claim")
    return record


def record_done(
    store: Store, name: str, record: MigrationRecord, checksum: str, progress: Progress
) -> MigrationRecord:
    """Mark ``record`` done with the source's ``checksum`` (one transaction), if still ours."""
    done = replace(record, phase=MigrationRecord.DONE, checksum=checksum, updated_ms=now_ms())
    key = migration_state_key(name)

    def mark(tr: Transaction) -> None:
        raw = tr.get(key, point="read_record")
        if raw is None or MigrationRecord.decode(raw).commit_id != record.commit_id:
            raise ConfigError(
                f"the migration record of {name!r} changed under this migration "
                "(another migration ran?); run the migration again"
            )
        tr.set(key, done.encode())

    progress("record", 0, 1)
    store.transact(mark, name="migrate.record_done")
    progress("record", 1, 1)
    return done


def undo(store: Store, name: str, record: MigrationRecord) -> None:
    """Remove this attempt's v2 copy and the record (one transaction), if still ours."""
    keys = DbKeys(name)

    def remove(tr: Transaction) -> None:
        raw = tr.get(keys.meta, point="read_meta")
        if raw is not None and Head.decode(raw, name).last_commit_id != record.commit_id:
            return  # someone committed since: not ours to remove
        tr.clear_range(*keys.all_range())
        tr.clear(migration_state_key(name))

    store.transact(remove, name="migrate.undo")
