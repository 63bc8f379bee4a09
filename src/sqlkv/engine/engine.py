"""The in-process storage engine: ``EngineApi`` over one store.

Each operation is one store transaction (``store.transact``, retried on conflicts) built by
its own module: takeover, read, commit, stage. This class only wires them together, keeps
the PIDX cache consistent (published only after a transaction landed) and logs.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from sqlkv.engine.api import CommitResult, OpenResult, Pages, PagesResult, StageResult
from sqlkv.engine.apply import check_commit_id, check_generation
from sqlkv.engine.commit import CommitOutcome, commit_pages
from sqlkv.engine.config import EngineConfig
from sqlkv.engine.head import Head
from sqlkv.engine.keys import DbKeys
from sqlkv.engine.pidx import PidxCache
from sqlkv.engine.read import PageSource, check_pgnos
from sqlkv.engine.stage import finalize, stage_pages
from sqlkv.engine.takeover import open_database
from sqlkv.errors import DatabaseNotFound
from sqlkv.store import Store, Transaction

log = logging.getLogger("sqlkv.engine")


class Engine:
    """Storage engine for every database in ``store``. Thread-safe."""

    def __init__(self, store: Store, config: EngineConfig | None = None) -> None:
        self.store = store
        self.config = config or EngineConfig()
        self.config.validate()
        self.pidx = PidxCache()
        self._keys: dict[str, DbKeys] = {}

    def keys(self, db: str) -> DbKeys:
        k = self._keys.get(db)
        if k is None:
            k = self._keys[db] = DbKeys(db)
        return k

    # ------------------------------------------------------------------ operations

    def open(
        self,
        db: str,
        *,
        preload: Sequence[int] = (),
        preload_bytes: int | None = None,
        create: bool = True,
    ) -> OpenResult:
        keys = self.keys(db)
        budget = self.config.preload_bytes if preload_bytes is None else preload_bytes
        out = self.store.transact(
            lambda tr: open_database(tr, db, keys, self.config, preload, budget, create)
        )
        self.pidx.publish(db, out.head, out.pidx)
        log.info(
            "database opened",
            extra={
                "db": db,
                "generation": out.head.generation,
                "head_txid": out.head.head_txid,
                "created": out.created,
                "orphans_removed": out.orphans_removed,
                "preloaded": len(out.pages),
            },
        )
        return OpenResult(out.head, out.pages)

    def get_pages(self, db: str, generation: int, pgnos: Sequence[int]) -> PagesResult:
        keys = self.keys(db)
        wanted = check_pgnos(pgnos)

        def read(tr: Transaction) -> tuple[Head, dict[int, bytes | None]]:
            head = self._head_snapshot(tr, db, keys)
            check_generation(db, head, generation)
            if not wanted:
                return head, {}
            source = PageSource(keys, head, self.pidx.rows_for(tr, db, keys, head))
            return head, source.read(tr, wanted)

        head, pages = self.store.transact(read)
        return PagesResult(head, pages)

    def commit(
        self,
        db: str,
        generation: int,
        expected_head_txid: int,
        pages: Pages,
        db_size_pages: int,
        *,
        commit_id: bytes | None = None,
    ) -> CommitResult:
        keys = self.keys(db)
        cid = check_commit_id(commit_id)
        out = self.store.transact(
            lambda tr: commit_pages(
                tr,
                db,
                keys,
                self.config,
                self.pidx,
                generation,
                expected_head_txid,
                pages,
                db_size_pages,
                cid,
            )
        )
        return self._landed(db, out)

    def commit_stage(
        self, db: str, generation: int, txid: int | None, seq: int, pages: Pages
    ) -> StageResult:
        keys = self.keys(db)
        txid_out, parts = self.store.transact(
            lambda tr: stage_pages(tr, db, keys, self.config, generation, txid, seq, pages)
        )
        return StageResult(txid_out, parts)

    def commit_finalize(
        self,
        db: str,
        generation: int,
        expected_head_txid: int,
        txid: int,
        db_size_pages: int,
        *,
        commit_id: bytes | None = None,
    ) -> CommitResult:
        keys = self.keys(db)
        cid = check_commit_id(commit_id)
        out = self.store.transact(
            lambda tr: finalize(
                tr,
                db,
                keys,
                self.pidx,
                generation,
                expected_head_txid,
                txid,
                db_size_pages,
                cid,
            )
        )
        return self._landed(db, out)

    def head(self, db: str) -> Head:
        keys = self.keys(db)
        return self.store.transact(lambda tr: self._head_snapshot(tr, db, keys))

    # ------------------------------------------------------------------ helpers

    def _landed(self, db: str, out: CommitOutcome) -> CommitResult:
        if out.pidx is not None:
            self.pidx.publish(db, out.head, out.pidx)
        log.debug(
            "commit landed",
            extra={
                "db": db,
                "head_txid": out.head.head_txid,
                "pages": out.pages,
                "already_applied": out.already_applied,
            },
        )
        return CommitResult(out.head, already_applied=out.already_applied)

    @staticmethod
    def _head_snapshot(tr: Transaction, db: str, keys: DbKeys) -> Head:
        raw = tr.get(keys.meta, snapshot=True)
        if raw is None:
            raise DatabaseNotFound(db)
        return Head.decode(raw)
