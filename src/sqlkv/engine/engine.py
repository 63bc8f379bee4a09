"""The in-process storage engine: ``EngineApi`` over one store.

Each operation is one store transaction (``store.transact``, retried on conflicts) built by
its own module: takeover, read, commit, stage, compaction. This class only wires them
together, keeps the PIDX cache consistent (published only after a transaction landed) and
the META cache that commits guard (``meta_cache.py``); a commit lands through
``guarded.py`` (in turn with compaction's applies, publishing what landed), as a group
commit does; feeds the compaction coordinator, and records metrics and logs.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Sequence

from sqlkv.engine import guarded
from sqlkv.engine.api import CommitResult, OpenResult, Pages, PagesResult, StageResult
from sqlkv.engine.apply import check_commit_id, check_generation
from sqlkv.engine.commit import commit_pages
from sqlkv.engine.compaction import (
    ApplyState,
    CompactionConfig,
    CompactionCoordinator,
    FoldPlan,
    PassOutcome,
    absorb,
    apply_pass,
    plan_pass,
    retained,
)
from sqlkv.engine.config import EngineConfig
from sqlkv.engine.head import Head
from sqlkv.engine.hint import HintMemory, hint_pages, save_hint
from sqlkv.engine.history_ops import HistoryOps
from sqlkv.engine.keys import DbKeys
from sqlkv.engine.ledger import Ledger
from sqlkv.engine.meta_cache import MetaCache
from sqlkv.engine.metrics import EngineMetrics
from sqlkv.engine.pidx import PidxCache, tag_of
from sqlkv.engine.read import PageSource, check_pgnos
from sqlkv.engine.rewind import AckedHeads
from sqlkv.engine.stage import finalize, stage_pages
from sqlkv.engine.takeover import Guess, open_database
from sqlkv.engine.verify import VerifyReport, verify_database
from sqlkv.errors import (
    CompactionBehind,
    ConflictError,
    DatabaseNotFound,
    FenceMismatch,
    GuardFailed,
    QuotaExceeded,
    RetriesExhausted,
    SqlkvError,
)
from sqlkv.keyspace import check_database_name
from sqlkv.store import Store, Transaction
from sqlkv.store.ranges import key_after

log = logging.getLogger("sqlkv.engine")

PASS_PLANS = 8
"""Plans one compaction pass may make before it gives up (``RetriesExhausted``)."""
APPLY_ATTEMPTS = 64
"""Guarded applies of one plan (each failed guard teaches it something) before a new plan."""


@functools.lru_cache(maxsize=1 << 16)  # open databases of one engine: ~200 bytes each
def _db_keys(db: str) -> DbKeys:
    return DbKeys(check_database_name(db))


class Engine(HistoryOps):
    """Storage engine for every database in ``store``. Thread-safe.

    ``compaction``: a ``CompactionConfig`` (or True for the defaults) starts the background
    coordinator; without it, compaction runs only when ``compact`` is called.
    """

    def __init__(
        self,
        store: Store,
        config: EngineConfig | None = None,
        *,
        compaction: CompactionConfig | bool = False,
        metrics: EngineMetrics | None = None,
        hints: HintMemory | None = None,
    ) -> None:
        """``hints``: the hint memory to use (``hint.shared_hints``), else the engine's own."""
        self.store = store
        self.config = config or EngineConfig()
        self.config.validate()
        self.pidx = PidxCache(self.config.pidx_cache_rows)
        self.heads = MetaCache()  # META each database was last seen with: commits guard it
        self.acked = AckedHeads()  # newest head acknowledged per database: rewind detection
        self._hints = hints if hints is not None else HintMemory()  # the open's guess
        self.metrics = metrics or EngineMetrics(per_database=self.config.metrics_per_database)
        self.compactor: CompactionCoordinator | None = None
        if compaction:
            cfg = compaction if isinstance(compaction, CompactionConfig) else CompactionConfig()
            self.compactor = CompactionCoordinator(self, cfg)
        self._shards_per_pass = (
            self.compactor.config.shards_per_pass
            if self.compactor
            else CompactionConfig().shards_per_pass
        )

    def keys(self, db: str) -> DbKeys:
        return _db_keys(db)

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
        since = self.acked.now()
        guess = Guess(self._hints.get(db, ()), self.pidx.peek_rows(db) or self._hints.where(db))
        out = self.store.transact(
            lambda tr: open_database(
                Ledger(tr, db, keys), self.config, preload, budget, create, guess
            ),
            name="open",
        )
        self.pidx.publish(db, out.head, out.pidx)
        self._hints.put(db, out.hint, out.pidx)
        if not out.created:
            self.metrics.takeovers.inc()
            self.acked.check(db, out.head, since=since, taken_over=True)
        self.acked.ack(db, out.head)
        self.metrics.orphans_removed.inc(out.orphans_removed)
        log.info(
            "database opened",
            extra={
                "db": db,
                "generation": out.head.generation,
                "head_txid": out.head.head_txid,
                "db_created": out.created,
                "orphans_removed": out.orphans_removed,
                "preloaded": len(out.pages),
            },
        )
        return OpenResult(out.head, out.pages)

    def get_pages(self, db: str, generation: int, pgnos: Sequence[int]) -> PagesResult:
        keys = self.keys(db)
        wanted = check_pgnos(pgnos)

        sources: list[PageSource] = []
        since = self.acked.now()

        def read(tr: Transaction) -> tuple[Head, dict[int, bytes | None]]:
            cached = self.pidx.peek(db) if wanted else None
            if cached is not None:
                # One round trip: META and the blobs the cached map names, at once; used
                # when META still has the map's tag, else the call goes on from this META.
                source = PageSource(keys, *cached, tr.limits)
                plan = source.plan(wanted)
                meta, *blobs = tr.get_ranges(
                    [(keys.meta, key_after(keys.meta), 0, False), *plan.ranges],
                    snapshot=True,
                    point="read_all",
                )
                if not meta:
                    raise DatabaseNotFound(db)
                head = Head.decode(meta[0][1], db)
            else:
                head = self._head_snapshot(tr, db, keys)
            self.acked.check(db, head, since=since)
            check_generation(db, head, generation)
            if not wanted:
                return head, {}
            if cached is not None and tag_of(head) == tag_of(cached[0]):
                sources[:] = [source]
                return head, source.decode(plan, blobs, tr)
            source = PageSource(keys, head, self.pidx.rows_for(tr, db, keys, head), tr.limits)
            sources[:] = [source]
            return head, source.read(tr, wanted)

        start = time.perf_counter()
        try:
            head, pages = self.store.transact(read, name="get_pages")
        except SqlkvError as exc:
            self._refused(exc)
            raise
        self.acked.ack(db, head)
        source = sources[0] if sources else None
        self.metrics.read(
            time.perf_counter() - start,
            len(wanted),
            source.from_deltas if source else 0,
            source.from_shards if source else 0,
        )
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
        return guarded.commit_one(
            self,
            db,
            "commit",
            "fast",
            lambda known: (
                lambda tr: commit_pages(
                    Ledger(tr, db, keys),
                    self.config,
                    self.pidx,
                    generation,
                    expected_head_txid,
                    pages,
                    db_size_pages,
                    cid,
                    known,
                )
            ),
        )

    def commit_stage(
        self, db: str, generation: int, txid: int | None, seq: int, pages: Pages
    ) -> StageResult:
        keys = self.keys(db)
        ledgers: list[Ledger] = []

        def stage(tr: Transaction) -> tuple[int, int]:
            ledgers[:] = [Ledger(tr, db, keys)]
            return stage_pages(ledgers[0], self.config, generation, txid, seq, pages)

        start = time.perf_counter()
        try:
            txid_out, parts = self.store.transact(stage, name="stage")
        except SqlkvError as exc:
            self._refused(exc)
            raise
        self._remember(db, ledgers[0].written)
        self.metrics.committed("stage", time.perf_counter() - start)
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
        return guarded.commit_one(
            self,
            db,
            "finalize",
            "large",
            lambda known: (
                lambda tr: finalize(
                    Ledger(tr, db, keys),
                    self.config,
                    self.pidx,
                    generation,
                    expected_head_txid,
                    txid,
                    db_size_pages,
                    cid,
                    known,
                )
            ),
        )

    def save_hint(self, db: str, generation: int, pgnos: Sequence[int]) -> Head:
        """Remember ``pgnos`` as the pages to return with the next open (``hint.py``)."""
        keys = self.keys(db)
        max_pages = max(1, self.config.preload_bytes // self.config.page_size)
        since = self.acked.now()
        ledgers: list[Ledger] = []

        def save(tr: Transaction) -> Head:
            ledgers[:] = [Ledger(tr, db, keys)]
            return save_hint(ledgers[0], generation, pgnos, max_pages)

        head = self.store.transact(save, name="hint")
        self.acked.check(db, head, since=since)
        self.acked.ack(db, head)
        self._remember(db, ledgers[0].written)  # the hint changed META's storage_used
        self._hints.put(db, hint_pages(pgnos, max_pages), self.pidx.peek_rows(db))
        return head

    def head(self, db: str) -> Head:
        keys = self.keys(db)
        since = self.acked.now()
        head = self.store.transact(lambda tr: self._head_snapshot(tr, db, keys), name="head")
        self.acked.check(db, head, since=since)
        self.acked.ack(db, head)
        return head

    def verify(self, db: str) -> VerifyReport:
        """Check every key of ``db`` from one snapshot (read-only); see ``engine/verify.py``."""
        keys = self.keys(db)
        return self.store.transact(lambda tr: verify_database(tr, keys), name="verify")

    # ------------------------------------------------------------------ compaction

    def compact(self, db: str, *, generation: int | None = None) -> PassOutcome:
        """Run one compaction pass on ``db``: planned from a snapshot, applied in one guarded
        store operation (``compaction/fold.py``); a failed guard is absorbed (newer META, a
        PIDX row a commit rewrote) and the apply sent again, or the pass is planned again."""
        keys = self.keys(db)
        out: PassOutcome | None = None
        for _ in range(PASS_PLANS):
            plan = self.store.transact(
                lambda tr: plan_pass(tr, db, keys, self.pidx, self._shards_per_pass, generation),
                name="compact",
            )
            if plan.retention is not None:
                out = self.store.transact(
                    lambda tr: retained.fold_pass(
                        Ledger(tr, db, keys), self.pidx, self._shards_per_pass, generation
                    ),
                    name="compact",
                )
                break
            if not plan.changes:
                out = PassOutcome(plan.head, plan.pidx)
                break
            state = ApplyState(plan.meta)
            for _ in range(APPLY_ATTEMPTS):
                # In turn with this engine's commits of ``db``, on the META of the last
                # (newer than the plan's or the last failed guard's): meta_cache.py.
                try:
                    with self.heads.turn(db):
                        state.meta = self.heads.newer(db, Head.decode(state.meta, db), state.meta)
                        out = self.store.transact(
                            functools.partial(self._apply_pass, db, plan, generation, state),
                            name="compact",
                        )
                        self._remember(db, out.meta if out else None)
                    break
                except GuardFailed as exc:
                    if not absorb(keys, plan, state, exc):
                        break
            if out is not None:
                break
        if out is None:
            raise RetriesExhausted(
                PASS_PLANS, ConflictError(f"database {db!r} changed under every plan")
            )
        if out.pidx is not None:
            self.pidx.publish(db, out.head, out.pidx)
        self._remember(db, out.meta)
        m = self.metrics
        if out.changed:
            m.compaction_passes.inc()
            m.pages_folded.inc(out.pages_folded)
            m.deltas_deleted.inc(out.deltas_deleted)
        m.observe_head(db, out.head.delta_count, out.head.head_txid - out.head.materialized_txid)
        m.observe_retained(db, out.retained_bytes)
        log.debug(
            "compaction pass",
            extra={
                "db": db,
                "pages_folded": out.pages_folded,
                "deltas_deleted": out.deltas_deleted,
                "materialized_txid": out.head.materialized_txid,
            },
        )
        return out

    def compact_until_done(self, db: str, *, stop: threading.Event | None = None) -> Head:
        """Run passes until no live delta remains or a pass changes nothing."""
        while True:
            out = self.compact(db)
            if out.head.delta_count == 0 or not out.changed or (stop and stop.is_set()):
                return out.head

    def close(self) -> None:
        """Stop background compaction (the store is the caller's to close)."""
        if self.compactor is not None:
            self.compactor.close()

    # ------------------------------------------------------------------ helpers

    def _apply_pass(
        self,
        db: str,
        plan: FoldPlan,
        generation: int | None,
        state: ApplyState,
        tr: Transaction,
    ) -> PassOutcome | None:
        return apply_pass(Ledger(tr, db, self.keys(db)), plan, self.pidx, generation, state)

    def _remember(self, db: str, written: tuple[Head, bytes] | None) -> None:
        """Keep META as an operation of this engine wrote it (after it landed)."""
        if written is not None:
            self.heads.put(db, *written)

    def _refused(self, exc: SqlkvError, db: str = "", since: int = 0) -> None:
        """Count an operation's refusal (the caller re-raises ``exc``)."""
        if isinstance(exc, FenceMismatch):
            if db and isinstance(exc.head, Head):
                # a head older than one acknowledged before this began: lost, not a fence
                self.acked.check(db, exc.head, since=since)
            self.metrics.fence_mismatches.inc()
        elif isinstance(exc, QuotaExceeded):
            self.metrics.quota_refusals.inc()
        elif isinstance(exc, CompactionBehind):
            self.metrics.busy_refusals.inc()

    @staticmethod
    def _head_snapshot(tr: Transaction, db: str, keys: DbKeys) -> Head:
        raw = tr.get(keys.meta, snapshot=True, point="read_meta")
        if raw is None:
            raise DatabaseNotFound(db)
        return Head.decode(raw, db)
