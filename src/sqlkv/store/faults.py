"""Named fault points: the registry of every store operation that the engine, the v1 VFS and
migration perform, and the test-only fault plan the memory store runs against them.

A store operation is one driver round trip: a read (``get``, ``get_many``, ``get_range``,
``get_ranges``) or the commit. Its name is ``<transaction>.<step>``: the transaction is
named by ``Store.transact(fn, name=...)`` (the engine operation: ``commit``, ``open`` ...),
the step by the ``point=`` argument of the read (``read_meta``) or, for the commit, ``apply``.
Every name used must be in ``POINTS``; the memory store refuses an unregistered one, and
``tests/engine/test_fault_points.py`` fails when a registered point is never crashed at by
the crash suites. How to add a point: docs/fault-points.md.

``FaultPlan``, ``SimulatedCrash`` and ``crash_points`` are test tools: nothing here derives
from ``SqlkvError``, so no production handler or wire code knows them. An injected *failure*
raises a real, retryable production error (``StoreUnavailable`` by default), as a driver would.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlkv.errors import StoreError, StoreUnavailable

APPLY = "apply"
"""The step name of a transaction's commit (its only write to the store)."""

POINTS: dict[str, str] = {
    # ---------------------------------------------------------------- engine: open / takeover
    "open.read_all": "META, manifests, newest DELTA chunks, PIDX, hint, directory, guessed "
    "blobs: one serializable multi-range read (META absent: the database is created)",
    "open.read_pages": "the preloaded pages the first read did not bring",
    "open.apply": "new generation; leftovers of a crashed owner removed (or the new head)",
    # ---------------------------------------------------------------- engine: preload hint
    "hint.read_meta": "META (serializably) and the old hint",
    "hint.apply": "the new hint and META (storage)",
    # ---------------------------------------------------------------- engine: reads
    "head.read_meta": "META (a snapshot read)",
    "get_pages.read_meta": "META (a snapshot read; the PIDX cache holds no map)",
    "get_pages.read_all": "META and every blob the cached PIDX map names, at once (snapshot)",
    "get_pages.read_pidx": "the PIDX rows (cache miss)",
    "get_pages.read_pages": "every DELTA part and shard the pages live in, at once",
    "snapshot.read_history": "META, the facts from the txid on and the retention rows, at once; "
    "then the older facts (only for pages changed since)",
    "snapshot.read_pidx": "the PIDX rows (a snapshot of the head, cache miss)",
    "snapshot.read_pages": "every DELTA part and shard the pages live in, at once",
    "read_at.read_history": "META, the facts from the txid on and the retention rows, at once; "
    "then the older facts (only for pages changed since)",
    "read_at.read_pidx": "the PIDX rows (a read at the head, cache miss)",
    "read_at.read_pages": "every DELTA part and shard the pages live in, at once",
    "changes_since.read_history": "META and the history facts from the txid on, at once",
    "retention.read_meta": "META, serializably (set_retention)",
    "retention.read_retention": "the retention record it replaces",
    "retention.apply": "the retention record and META (storage)",
    "retention_get.read_meta": "META (a snapshot read)",
    "retention_get.read_retention": "the retention record",
    "label.read_meta": "META, serializably (the label counts in storage)",
    "label.read_history": "the facts of the txid to label (it must be committed)",
    "label.read_label": "the label it replaces",
    "label.apply": "the label row and META",
    "resolve.read_meta": "META (a snapshot read)",
    "resolve.read_history": "every history facts row and every label, at once",
    "history.read_meta": "META (a snapshot read)",
    "history.read_history": "every history facts row and every label, at once",
    "verify.read_meta": "META (a snapshot read; verify only reads)",
    "verify.scan": "one batch of the database's keys, checked (a snapshot read)",
    # ---------------------------------------------------------------- engine: commit
    "commit.read_meta": "META, serializably (the fence)",
    "commit.read_pidx": "the PIDX rows (cache miss)",
    "commit.read_staged": "staging manifests of an abandoned staged commit",
    "commit.read_shard": "the shard holding the new end (shrink)",
    "commit.read_retention": "the retention window, when a shrink cuts shards",
    "commit.apply": "DELTA parts, PIDX rows, directory row and META",
    # ---------------------------------------------------------------- engine: stage / finalize
    "stage.read_meta": "META, serializably (the fence)",
    "stage.read_staged": "manifests this seq staged before (replaced)",
    "stage.apply": "staged DELTA parts, their manifests and META (next_txid, storage)",
    "finalize.read_meta": "META, serializably (the fence)",
    "finalize.read_staged": "the staging manifests of the txid",
    "finalize.read_pidx": "the PIDX rows (cache miss)",
    "finalize.read_shard": "the shard holding the new end (shrink)",
    "finalize.read_retention": "the retention window, when a shrink cuts shards",
    "finalize.apply": "PIDX rows, directory row, manifests dropped and META",
    # ---------------------------------------------------------------- engine: compaction
    "compact.read_meta": "META and the retention rows, at once (a snapshot read: the pass is "
    "planned)",
    "compact.read_pidx": "the PIDX rows (cache miss)",
    "compact.read_shard": "a shard being folded into (a pass under a retention window)",
    "compact.read_delta": "the DELTA parts holding pages being folded, with the shards, the "
    "dead deltas' directory rows and the history facts below the new materialized txid",
    "compact.read_delta_dir": "the directory rows of the deltas now dead",
    "compact.read_history": "the history facts that date the window / are deleted",
    "compact.read_retained": "the retention record, a retained delta, a retired shard version",
    "compact.apply": "shards, PIDX rows, dead deltas and META (guarded, or read serializably)",
    # ---------------------------------------------------------------- engine: fork
    "fork_begin.read_source_meta": "SRC's META (a snapshot read): the txid and size copied",
    "fork_begin.read_meta": "DST's META, serializably (it must not exist)",
    "fork_begin.read_source_retention": "SRC's retention window (DST gets it)",
    "fork_begin.read_record": "DST's fork progress record, serializably",
    "fork_begin.apply": "DST's leftovers cleared and a new progress record",
    "fork_copy.read_record": "DST's progress record, serializably (still this fork's)",
    "fork_copy.read_meta": "DST's META, serializably (still absent)",
    "fork_copy.read_source_meta": "SRC's META (a snapshot read; its head must not have moved)",
    "fork_copy.read_pidx": "SRC's PIDX rows (cache miss)",
    "fork_copy.read_shards": "SRC's shards of the batch",
    "fork_copy.read_pages": "SRC's DELTA parts holding newer copies of the batch's pages",
    "fork_copy.apply": "DST's shards of the batch and the progress record",
    "fork_copy_at.read_record": "DST's progress record, serializably (at a past txid)",
    "fork_copy_at.read_meta": "DST's META, serializably (still absent)",
    "fork_copy_at.apply": "DST's shards of the batch, from pages read with read_at, and F",
    "fork_finish.read_record": "DST's progress record, serializably",
    "fork_finish.read_meta": "DST's META, serializably (still absent)",
    "fork_finish.apply": "the progress record dropped and DST's META written",
    "fork_abort.read_record": "DST's progress record (is the partial copy still this fork's?)",
    "fork_abort.read_meta": "DST's META, serializably (still absent)",
    "fork_abort.apply": "the partial copy removed",
    # ---------------------------------------------------------------- v1 VFS
    "v1.load.read_meta": "a file's size key",
    "v1.read.read_chunks": "the chunks a read needs",
    "v1.write.read_chunks": "chunks a partial write merges into",
    "v1.write.apply": "the chunks written and the size",
    "v1.truncate_size.apply": "truncate, 1/3: the new size",
    "v1.truncate_clear.apply": "truncate, 2/3: every chunk past the end removed",
    "v1.truncate_last.read_chunk": "truncate, 3/3: the last chunk (not cached)",
    "v1.truncate_last.apply": "truncate, 3/3: the shortened last chunk",
    "v1.delete_meta.apply": "delete, 1/2: the size key removed",
    "v1.delete_chunks.apply": "delete, 2/2: the chunks removed",
    # ---------------------------------------------------------------- migration v1 -> v2
    "migrate.survey.read_state": "source, journal, v2 META and record (a snapshot read)",
    "migrate.claim.read_state": "the survey again, serializably",
    "migrate.claim.apply": "the 'staging' record (and an empty v2 leftover removed)",
    "migrate.read_source.read_chunks": "one batch of source pages",
    "migrate.record_done.read_record": "the record, serializably",
    "migrate.record_done.apply": "the 'done' record with the checksum",
    "migrate.undo.read_meta": "the copy's META, serializably",
    "migrate.undo.apply": "the copy and the record removed",
    "migrate.delete_meta.apply": "delete source, 1/2: the v1 size keys",
    "migrate.delete_chunks.apply": "delete source, 2/2: the v1 chunks and the record",
    "migrate.journal.read_meta": "whether a hot journal is left (report)",
}


def point_name(transaction: str, step: str) -> str:
    """The fault point of ``step`` in the transaction named ``transaction`` ("" if unnamed)."""
    if not transaction:
        return ""
    return f"{transaction}.{step or '<unnamed step>'}"


class UnregisteredPoint(AssertionError):
    """A store operation carries a fault point name missing from ``POINTS`` (a bug)."""


def check_registered(point: str) -> None:
    if point and point not in POINTS:
        raise UnregisteredPoint(
            f"store operation {point!r} is not a registered fault point: add it to POINTS in "
            "sqlkv/store/faults.py and crash at it in a crash suite (docs/fault-points.md)"
        )


# --------------------------------------------------------------------------- test tools


class SimulatedCrash(BaseException):
    """The memory store simulated a process crash at a named point (tests only).

    A BaseException, and outside the ``SqlkvError`` tree: no ``except Exception`` handler
    swallows it, as no handler survives a real crash.
    """

    def __init__(self, point: str) -> None:
        super().__init__(f"simulated crash at {point}")
        self.point = point


@dataclass(frozen=True)
class CrashPoint:
    """The ``occurrence``-th store operation named ``point`` after arming; ``after_commit``
    (only for an ``apply``) lets the commit land and loses its answer."""

    point: str
    occurrence: int = 1
    after_commit: bool = False

    def __str__(self) -> str:
        when = "after" if self.after_commit else "before"
        return f"crash {when} {self.point} #{self.occurrence}"


def crash_points(ops: list[str]) -> list[CrashPoint]:
    """Every crash point of a run whose store operations were named ``ops`` (in order):
    before each operation, and after each commit. Raises on an unnamed operation."""
    seen: dict[str, int] = {}
    out: list[CrashPoint] = []
    for name in ops:
        if not name:
            raise UnregisteredPoint("a store operation of this run has no fault point name")
        seen[name] = seen.get(name, 0) + 1
        out.append(CrashPoint(name, seen[name]))
        if name.endswith("." + APPLY):
            out.append(CrashPoint(name, seen[name], after_commit=True))
    return out


@dataclass
class FaultPlan:
    """Faults armed against named store operations, counted from when they are armed.

    ``fail_at(point, n)``: the n-th operation named ``point`` raises ``error`` (a retryable
    production error by default). ``crash_at(point, n, after_commit=...)`` (or ``arm``): it
    raises ``SimulatedCrash`` instead; after its commit applied when ``after_commit``.
    ``fired`` lists what fired, as ``str(CrashPoint)`` or ``"fail <point> #n"``.
    """

    _armed: list[tuple[str, CrashPoint, type[StoreError]]] = field(default_factory=list)
    _seen: dict[str, int] = field(default_factory=dict)
    fired: list[str] = field(default_factory=list)

    def fail_at(
        self, point: str, occurrence: int = 1, error: type[StoreError] = StoreUnavailable
    ) -> None:
        check_registered(point)
        self._arm("fail", CrashPoint(point, occurrence), error)

    def crash_at(self, point: str, occurrence: int = 1, *, after_commit: bool = False) -> None:
        self.arm(CrashPoint(point, occurrence, after_commit))

    def arm(self, crash: CrashPoint) -> None:
        check_registered(crash.point)
        if crash.after_commit and not crash.point.endswith("." + APPLY):
            raise ValueError(f"only a commit ('.{APPLY}') can crash after it: {crash.point}")
        self._arm("crash", crash, StoreUnavailable)

    def _arm(self, kind: str, at: CrashPoint, error: type[StoreError]) -> None:
        if at.occurrence < 1:
            raise ValueError(f"occurrence must be >= 1, got {at.occurrence}")
        if not self._armed:
            self._seen.clear()
        self._armed.append((kind, at, error))

    def clear(self) -> None:
        self._armed.clear()
        self._seen.clear()

    @property
    def armed(self) -> bool:
        return bool(self._armed)

    def reach(self, point: str) -> tuple[str, CrashPoint, type[StoreError]] | None:
        """Count one operation named ``point``; the fault that fires on it, if any."""
        if not self._armed:
            return None
        n = self._seen[point] = self._seen.get(point, 0) + 1
        for i, (kind, at, error) in enumerate(self._armed):
            if at.point == point and at.occurrence == n:
                del self._armed[i]
                self.fired.append(f"fail {point} #{n}" if kind == "fail" else str(at))
                return kind, at, error
        return None
