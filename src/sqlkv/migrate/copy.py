"""Copying a v1 database's pages into v2: staged under one reserved txid with
``commit_stage`` (halving a batch the engine finds too large), then made visible at once by
``commit_finalize`` with the migration record's commit id.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlkv.engine import EngineApi
from sqlkv.engine.config import PAGE_SIZE
from sqlkv.engine.stage import MAX_SEQ
from sqlkv.errors import CommitTooLarge, MigrationError
from sqlkv.migrate.source import LOCK_PAGE, ZERO_PAGE, Digests, source_batches
from sqlkv.migrate.state import MigrationRecord, Progress
from sqlkv.store import Store


@dataclass
class PageCopy:
    """The copy step of one migration, and what it staged (for the report)."""

    name: str
    store: Store
    engine: EngineApi
    batch_pages: int
    progress: Progress
    pages_stored: int = 0
    bytes_staged: int = 0
    stage_calls: int = 0

    def run(self, record: MigrationRecord, pages: int) -> Digests:
        """Stage every page of the source under one txid and finalize it with the record's id.

        All-zero pages are not stored (v2 reads them back as zeros), nor is the lock page.
        Returns the source's digests, taken from the pages as they were read.
        """
        opened = self.engine.open(self.name, preload_bytes=0)
        generation, expected = opened.head.generation, opened.head.head_txid
        digests = Digests()
        txid: int | None = None
        seq = 0
        done = 0
        self.progress("stage", 0, pages)
        for batch in source_batches(self.store, self.name, pages, self.batch_pages):
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
        self.stage_calls += 1
        self.pages_stored += len(pages)
        self.bytes_staged += len(pages) * PAGE_SIZE
        return result.txid, seq + 1
