"""v1 -> v2 migration (``sqlkv.migrate``, ``sqlkv migrate``): copies that dump like their
source, crashes at every store operation followed by a rerun, refusals that change nothing.

Crash tests run on the memory store (its named fault points); a "crash" ends the call with
``SimulatedCrash`` and the rerun is a new call with a new engine, as a new process would be.
``crash_plan`` is what ``test_fault_points.py`` checks against the registry.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import apsw
import pytest
from crash_support import crash, crash_in_chain, plan_of
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sqlkv
from sqlkv.cli.main import main
from sqlkv.engine import Engine, EngineConfig
from sqlkv.engine.keys import DbKeys
from sqlkv.errors import ConfigError, SqlkvError
from sqlkv.migrate import MigrationRecord, MigrationReport, Outcome, _Migration, migrate_v1_to_v2
from sqlkv.store import MemoryStore, Store, open_store
from sqlkv.store.faults import CrashPoint
from sqlkv.vfs.v1 import connect_v1
from sqlkv.vfs.v1.check import inspect
from sqlkv.vfs.v1.keys import database_range, migration_state_key
from sqlkv.workloads import WORKLOADS, Scale, dump, integrity_ok

NAME = "shop"
JOURNAL_MAGIC = bytes.fromhex("d9d505f920a163d7")

# --------------------------------------------------------------------------- helpers


def everything(store: Store) -> list[tuple[bytes, bytes]]:
    """Every key and value of the store (any driver), in order."""
    rows: list[tuple[bytes, bytes]] = store.transact(
        lambda tr: tr.get_range(b"", b"\xff" * 8, snapshot=True)
    )
    return rows


def build_v1(store: Store, statements: Callable[[apsw.Connection], object]) -> str:
    """Create v1 database NAME with ``statements``; returns its dump."""
    conn = connect_v1(NAME, store)
    try:
        statements(conn)
        assert integrity_ok(conn)
        text: str = dump(conn)
    finally:
        conn.close()
    return text


def v1_dump(store: Store) -> str:
    conn = connect_v1(NAME, store)
    try:
        text: str = dump(conn)
    finally:
        conn.close()
    return text


def v2_dump(store: Store) -> str:
    conn = sqlkv.connect(NAME, store, compaction=False)
    try:
        assert integrity_ok(conn)
        text: str = dump(conn)
    finally:
        conn.close()
    return text


def shop(conn: apsw.Connection) -> None:
    """A database of a few hundred KiB: an index, overflow pages, a shrink by VACUUM."""
    r = random.Random(7)
    with conn:
        conn.execute("CREATE TABLE items(id INTEGER PRIMARY KEY, name TEXT, body BLOB)")
        conn.execute("CREATE INDEX items_name ON items(name)")
        conn.executemany(
            "INSERT INTO items(name, body) VALUES (?, ?)",
            [(f"item {i % 17}", r.randbytes(r.choice([40, 900, 6_000]))) for i in range(120)],
        )
    conn.execute("DELETE FROM items WHERE id % 5 = 0")
    conn.execute("VACUUM")


def small(conn: apsw.Connection) -> None:
    with conn:
        conn.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)")
        conn.executemany("INSERT INTO t(v) VALUES (?)", [(f"row {i}" * 20,) for i in range(300)])


def staged_keys(store: Store) -> list[bytes]:
    """Staging manifests of the v2 database: none may survive a finished migration."""
    return [k for k, _ in store.transact(lambda tr: tr.get_range(*DbKeys(NAME).stage_range()))]


def record(store: Store) -> MigrationRecord | None:
    raw = store.transact(lambda tr: tr.get(migration_state_key(NAME)))
    return None if raw is None else MigrationRecord.decode(raw)


def crash_chain(exc: BaseException) -> bool:
    """Whether ``exc`` is the simulated crash, or an error it caused (SQLite wraps it)."""
    return crash_in_chain(exc) is not None


class Phases:
    """A ``progress`` callback that notes the store's operation count at every event."""

    def __init__(self, store: MemoryStore) -> None:
        self.store = store
        self.events: list[tuple[str, int, int, int]] = []

    def __call__(self, phase: str, done: int, total: int) -> None:
        self.events.append((phase, done, total, self.store.op_count))

    def op_after(self, phase: str) -> int:
        """The store's operation count when ``phase`` reported 1 of 1: its last operation."""
        (count,) = [n for p, d, t, n in self.events if p == phase and d == t == 1]
        return count


# --------------------------------------------------------------------------- copies


@pytest.mark.parametrize("workload", ["join", "delete_vacuum", "large_payloads", "churn"])
def test_migrated_workload_database_dumps_like_the_source(store: Store, workload: str) -> None:
    source = build_v1(store, lambda conn: WORKLOADS[workload](conn, Scale.SMALL))
    report = migrate_v1_to_v2(NAME, store, batch_pages=32)
    assert report.outcome is Outcome.MIGRATED and report.attempts == 1
    assert report.pages_stored <= report.pages and report.stage_calls >= report.pages // 32
    assert v2_dump(store) == source
    assert v1_dump(store) == source, "the v1 data stays in place"
    assert staged_keys(store) == []
    done = record(store)
    assert done is not None and done.phase == MigrationRecord.DONE
    assert done.checksum == report.checksum


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    ops=st.lists(
        st.one_of(
            st.tuples(st.just("insert"), st.integers(1, 40), st.sampled_from([10, 700, 5_000])),
            st.tuples(st.just("delete"), st.integers(2, 5), st.just(0)),
            st.tuples(st.just("update"), st.integers(2, 5), st.sampled_from([10, 3_000])),
            st.tuples(st.just("table"), st.integers(0, 3), st.just(0)),
            st.tuples(st.just("vacuum"), st.just(0), st.just(0)),
        ),
        min_size=1,
        max_size=12,
    ),
    batch_pages=st.integers(1, 64),
)
def test_migration_of_a_random_history_dumps_like_the_source(
    ops: list[tuple[str, int, int]], batch_pages: int
) -> None:
    store = MemoryStore()

    def history(conn: apsw.Connection) -> None:
        r = random.Random(len(ops))
        conn.execute("CREATE TABLE t0(id INTEGER PRIMARY KEY, v BLOB)")
        for op, n, size in ops:
            if op == "insert":
                with conn:
                    conn.executemany(
                        "INSERT INTO t0(v) VALUES (?)", [(r.randbytes(size),) for _ in range(n)]
                    )
            elif op == "delete":
                conn.execute("DELETE FROM t0 WHERE id % ? = 0", (n,))
            elif op == "update":
                conn.execute("UPDATE t0 SET v = randomblob(?) WHERE id % ? = 1", (size, n))
            elif op == "table":
                conn.execute(f"CREATE TABLE IF NOT EXISTS x{n}(a, b UNIQUE)")
                conn.execute(f"INSERT INTO x{n} VALUES (?, ?)", (n, r.random()))
            else:
                conn.execute("VACUUM")

    source = build_v1(store, history)
    report = migrate_v1_to_v2(NAME, store, batch_pages=batch_pages)
    assert report.outcome is Outcome.MIGRATED
    assert v2_dump(store) == source


def test_batches_too_large_for_the_engine_are_halved() -> None:
    store = MemoryStore()
    source = build_v1(store, shop)
    engine = Engine(store, EngineConfig(max_delta_bytes=64 * 1024))
    report = migrate_v1_to_v2(NAME, store, engine=engine, batch_pages=64)
    assert report.stage_calls > -(-report.pages // 64), "some batches were split"
    assert v2_dump(store) == source


def test_migration_through_a_given_engine_with_compaction() -> None:
    store = MemoryStore()
    source = build_v1(store, shop)
    engine = Engine(store, compaction=True)
    try:
        report = migrate_v1_to_v2(NAME, store, engine=engine, batch_pages=16)
        assert report.outcome is Outcome.MIGRATED
        engine.compact_until_done(NAME)
    finally:
        engine.close()
    assert v2_dump(store) == source


def test_progress_reports_every_phase_in_order() -> None:
    store = MemoryStore()
    build_v1(store, small)
    phases = Phases(store)
    report = migrate_v1_to_v2(NAME, store, batch_pages=8, progress=phases)
    seen = [p for p, *_ in phases.events]
    order = ["stage", "finalize", "verify", "record"]
    assert [p for i, p in enumerate(seen) if i == 0 or seen[i - 1] != p] == order
    stage = [(d, t) for p, d, t, _ in phases.events if p == "stage"]
    assert stage[0] == (0, report.pages) and stage[-1] == (report.pages, report.pages)
    phases.events.clear()
    migrate_v1_to_v2(NAME, store, delete_source=True, progress=phases)
    assert [p for p, *_ in phases.events if p != "digest"] == ["delete", "delete"]


def test_rerun_after_completion_changes_nothing() -> None:
    store = MemoryStore()
    source = build_v1(store, small)
    first = migrate_v1_to_v2(NAME, store)
    conn = sqlkv.connect(NAME, store, compaction=False)
    conn.execute("INSERT INTO t(v) VALUES ('written to v2 after the migration')")
    conn.close()
    before = everything(store)
    again = migrate_v1_to_v2(NAME, store)
    assert again.outcome is Outcome.ALREADY_DONE and again.checksum == first.checksum
    assert everything(store) == before
    assert v1_dump(store) == source


def _hot_journal() -> tuple[MemoryStore, str]:
    """A v1 database whose last transaction crashed: its journal is hot (and the db file
    partly overwritten). Returns the store and the dump of the last committed state."""
    store = MemoryStore()
    committed = build_v1(store, small)
    before = inspect(store, NAME)["db"].content()
    conn = connect_v1(NAME, store)
    # the journal is complete and some db pages are overwritten (the 70th store operation)
    store.faults.crash_at("v1.write.apply", 58)
    with pytest.raises(BaseException) as info, conn:
        conn.execute("UPDATE t SET v = v || v")
        conn.execute("INSERT INTO t(v) SELECT v FROM t")
    store.faults.clear()
    assert crash_chain(info.value)
    with contextlib.suppress(apsw.Error):
        conn.close()
    files = inspect(store, NAME)
    journal = files["journal"].content()
    assert journal is not None and journal[:8] == JOURNAL_MAGIC, "the journal is hot"
    assert files["db"].content() != before, "the crashed transaction changed the db file"
    return store, committed


def test_hot_journal_is_rolled_back_before_the_copy() -> None:
    store, committed = _hot_journal()
    report = migrate_v1_to_v2(NAME, store)
    assert report.journal_rolled_back
    assert v2_dump(store) == committed
    assert "journal" not in inspect(store, NAME)


def test_delete_source_removes_the_v1_files_after_the_verified_copy(store: Store) -> None:
    source = build_v1(store, shop)
    report = migrate_v1_to_v2(NAME, store, delete_source=True)
    assert report.source_deleted and report.outcome is Outcome.MIGRATED
    left = store.transact(lambda tr: tr.get_range(*database_range(NAME)))
    assert [k for k, _ in left] == [migration_state_key(NAME)], "only the record is kept"
    assert v2_dump(store) == source
    again = migrate_v1_to_v2(NAME, store, delete_source=True)
    assert again.outcome is Outcome.ALREADY_DONE and again.source_deleted


def test_delete_source_refuses_a_source_changed_after_the_migration() -> None:
    store = MemoryStore()
    build_v1(store, small)
    migrate_v1_to_v2(NAME, store)
    conn = connect_v1(NAME, store)
    conn.execute("INSERT INTO t(v) VALUES ('written to v1 after the migration')")
    changed = dump(conn)
    conn.close()
    with pytest.raises(ConfigError, match="changed after it was migrated"):
        migrate_v1_to_v2(NAME, store, delete_source=True)
    assert v1_dump(store) == changed


def test_failed_verification_removes_the_copy_and_leaves_the_store_as_it_was(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = MemoryStore()
    build_v1(store, small)
    before = store.dump()
    monkeypatch.setattr(_Migration, "verify", lambda self, source, pages: (False, "forced", 0))
    with pytest.raises(SqlkvError, match=r"failed verification \(forced\)"):
        migrate_v1_to_v2(NAME, store)
    assert store.dump() == before


# --------------------------------------------------------------------------- refusals


def test_unknown_v1_database_is_refused_and_nothing_changes(store: Store) -> None:
    before = everything(store)
    with pytest.raises(ConfigError, match="no v1 database named 'shop'"):
        migrate_v1_to_v2(NAME, store)
    assert everything(store) == before


@pytest.mark.parametrize("v2_rows", [0, 3], ids=["empty", "with-rows"])
def test_existing_v2_database_is_refused_and_nothing_changes(store: Store, v2_rows: int) -> None:
    build_v1(store, small)
    conn = sqlkv.connect(NAME, store, compaction=False)
    if v2_rows:
        conn.execute("CREATE TABLE mine(x)")
        conn.executemany("INSERT INTO mine VALUES (?)", [(i,) for i in range(v2_rows)])
    conn.close()
    before = everything(store)
    with pytest.raises(ConfigError, match="v2 database named 'shop' already exists"):
        migrate_v1_to_v2(NAME, store)
    assert everything(store) == before


def test_page_size_other_than_4096_is_refused_and_nothing_changes() -> None:
    store = MemoryStore()
    build_v1(store, lambda conn: conn.execute("PRAGMA page_size=8192; VACUUM; CREATE TABLE t(x)"))
    before = store.dump()
    with pytest.raises(ConfigError, match="8192-byte pages"):
        migrate_v1_to_v2(NAME, store)
    assert store.dump() == before


@pytest.mark.parametrize("batch_pages", [0, 4097, 1.5])
def test_invalid_batch_size_is_refused(batch_pages: Any) -> None:
    with pytest.raises(ConfigError, match="batch_pages"):
        migrate_v1_to_v2(NAME, MemoryStore(), batch_pages=batch_pages)


# --------------------------------------------------------------------------- crashes


@pytest.fixture
def crash_bench() -> Iterator[tuple[MemoryStore, dict[bytes, bytes], str]]:
    """A memory store holding v1 database NAME (several batches at batch_pages=8)."""
    store = MemoryStore()
    source = build_v1(store, shop)
    yield store, store.snapshot_state(), source


def _at_op(points: list[CrashPoint], n: int, *, after_commit: bool = False) -> CrashPoint:
    """The crash point before (or after) the ``n``-th store operation of a plan."""
    before = [p for p in points if not p.after_commit][n - 1]
    if not after_commit:
        return before
    (after,) = [p for p in points if p == CrashPoint(before.point, before.occurrence, True)]
    return after


def _crash(store: MemoryStore, point: CrashPoint, run: Callable[[], object]) -> None:
    exc = crash(store, point, run)
    assert crash_chain(exc), f"{point}: {exc!r} was not caused by the crash"


def _run(
    store: MemoryStore, delete_source: bool, progress: Phases | None = None
) -> MigrationReport:
    return migrate_v1_to_v2(
        NAME, store, batch_pages=8, delete_source=delete_source, progress=progress
    )


def _refused_copy(monkeypatch: pytest.MonkeyPatch) -> tuple[MemoryStore, Callable[[], None]]:
    """A store and a migration whose copy always fails verification (so it is undone)."""
    monkeypatch.setattr(_Migration, "verify", lambda self, source, pages: (False, "forced", 0))
    store = MemoryStore()
    build_v1(store, small)

    def run() -> None:
        with pytest.raises(SqlkvError, match=r"failed verification \(forced\)"):
            migrate_v1_to_v2(NAME, store, batch_pages=32)

    return store, run


def crash_plan() -> set[str]:
    """Every fault point this suite crashes at (``test_fault_points.py``)."""
    points: list[CrashPoint] = []
    for delete_source in (False, True):
        store = MemoryStore()
        build_v1(store, shop)
        points += plan_of(store, lambda: _run(store, delete_source))  # noqa: B023
    store, _ = _hot_journal()
    points += plan_of(store, lambda: migrate_v1_to_v2(NAME, store, batch_pages=32))
    with pytest.MonkeyPatch.context() as monkeypatch:
        store, refused = _refused_copy(monkeypatch)
        points += plan_of(store, refused)
    return {p.point for p in points}


def test_crash_anywhere_in_a_migration_that_rolls_a_hot_journal_back_then_rerun() -> None:
    store, committed = _hot_journal()
    hot = store.snapshot_state()

    def run() -> MigrationReport:
        return migrate_v1_to_v2(NAME, store, batch_pages=32)

    points = plan_of(store, run)
    assert "migrate.journal.read_meta" in {p.point for p in points}
    for point in points:
        store.restore_state(hot)
        _crash(store, point, run)
        run()
        assert v2_dump(store) == committed, point
        journal = inspect(store, NAME).get("journal")
        # no journal left, or only chunks of one whose deletion crashed (never read back)
        assert journal is None or journal.size is None, point


def test_crash_anywhere_in_removing_a_refused_copy_leaves_the_store_as_it_was(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store, refused = _refused_copy(monkeypatch)
    before = store.snapshot_state()
    points = plan_of(store, refused)
    assert store.dump() == before
    assert {"migrate.undo.read_meta", "migrate.undo.apply"} <= {p.point for p in points}
    for point in points:
        store.restore_state(before)
        _crash(store, point, lambda: migrate_v1_to_v2(NAME, store, batch_pages=32))
        refused()  # the rerun copies again, is refused again and removes everything
        assert store.dump() == before, point


@pytest.mark.parametrize("delete_source", [False, True], ids=["keep", "delete-source"])
def test_crash_at_every_store_operation_then_rerun_completes(
    crash_bench: tuple[MemoryStore, dict[bytes, bytes], str], delete_source: bool
) -> None:
    store, base, source = crash_bench

    def run() -> MigrationReport:
        return _run(store, delete_source)

    phases = Phases(store)
    start = store.op_count
    points = plan_of(store, lambda: _run(store, delete_source, phases))
    finalize = _at_op(points, phases.op_after("finalize") - start, after_commit=True)
    done_marker = phases.op_after("record") - start
    assert finalize.point == "finalize.apply"
    assert _at_op(points, done_marker).point == "migrate.record_done.apply"
    assert len(points) > 40
    outcomes: dict[CrashPoint, MigrationReport] = {}
    for point in points:
        store.restore_state(base)
        _crash(store, point, run)
        report = run()
        outcomes[point] = report
        assert v2_dump(store) == source, point
        assert staged_keys(store) == [], point
        final = record(store)
        assert final is not None and final.phase == MigrationRecord.DONE, point
        assert final.checksum == report.checksum, point
        if delete_source:
            left = store.transact(lambda tr: tr.get_range(*database_range(NAME)))
            assert [k for k, _ in left] == [migration_state_key(NAME)], point
        else:
            assert v1_dump(store) == source, point
    # A crash once the copy was finalized is finished by verifying, never by a second copy.
    for point in [finalize, _at_op(points, done_marker), _at_op(points, done_marker - 1)]:
        assert outcomes[point].outcome is Outcome.VERIFIED, point
        assert outcomes[point].attempts == 1 and outcomes[point].stage_calls == 0, point
    assert outcomes[points[0]].outcome is Outcome.MIGRATED
    assert {r.outcome for r in outcomes.values()} == set(Outcome)


def test_two_crashes_in_a_row_then_a_rerun_completes(
    crash_bench: tuple[MemoryStore, dict[bytes, bytes], str],
) -> None:
    store, base, source = crash_bench

    def run() -> MigrationReport:
        return migrate_v1_to_v2(NAME, store, batch_pages=8)

    points = plan_of(store, run)
    r = random.Random(3)
    for _ in range(15):
        store.restore_state(base)
        _crash(store, r.choice(points), run)
        store.faults.arm(r.choice(points))
        with contextlib.suppress(BaseException):
            run()  # may crash, or finish before the armed point
        store.faults.clear()
        run()
        assert v2_dump(store) == source
        assert staged_keys(store) == []


def test_source_changed_after_an_interrupted_finalized_copy_is_copied_again(
    crash_bench: tuple[MemoryStore, dict[bytes, bytes], str],
) -> None:
    store, base, _ = crash_bench
    phases = Phases(store)
    start = store.op_count
    points = plan_of(store, lambda: migrate_v1_to_v2(NAME, store, batch_pages=8, progress=phases))
    finalize = _at_op(points, phases.op_after("finalize") - start, after_commit=True)
    store.restore_state(base)
    _crash(store, finalize, lambda: migrate_v1_to_v2(NAME, store, batch_pages=8))
    conn = connect_v1(NAME, store)
    conn.execute("DELETE FROM items WHERE id < 50")
    changed = dump(conn)
    conn.close()
    report = migrate_v1_to_v2(NAME, store, batch_pages=8)
    assert report.outcome is Outcome.MIGRATED and report.attempts == 2
    assert v2_dump(store) == changed


def test_v2_written_after_an_interrupted_copy_is_refused_and_nothing_changes(
    crash_bench: tuple[MemoryStore, dict[bytes, bytes], str],
) -> None:
    store, base, _ = crash_bench
    phases = Phases(store)
    start = store.op_count
    points = plan_of(store, lambda: migrate_v1_to_v2(NAME, store, batch_pages=8, progress=phases))
    finalize = _at_op(points, phases.op_after("finalize") - start, after_commit=True)
    store.restore_state(base)
    _crash(store, finalize, lambda: migrate_v1_to_v2(NAME, store, batch_pages=8))
    conn = sqlkv.connect(NAME, store, compaction=False)
    conn.execute("CREATE TABLE written_too_early(x)")
    conn.close()
    before = store.dump()
    with pytest.raises(ConfigError, match="commits that are not this migration's"):
        migrate_v1_to_v2(NAME, store, batch_pages=8)
    assert store.dump() == before


# --------------------------------------------------------------------------- CLI


def _cli_store(tmp_path: Path) -> str:
    return str(tmp_path / "kv")


def run_cli(argv: list[str]) -> int:
    """``sqlkv`` in process; its exit status (argparse's usage errors included)."""
    try:
        return main(argv)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1


def test_cli_migrates_and_prints_a_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = _cli_store(tmp_path)
    with open_store(url) as store:
        source = build_v1(store, small)
    assert run_cli(["--store", url, "migrate", NAME, "--batch-pages", "4"]) == 0
    out, err = capsys.readouterr()
    assert out.startswith(f"{NAME}: ") and "copied and verified" in out
    assert out.rstrip().endswith("v1 data kept")
    assert f"migrate {NAME}: copying pages" in err and "verifying pages" in err
    assert run_cli(["--store", url, "migrate", NAME, "--delete-source"]) == 0
    out, _ = capsys.readouterr()
    with open_store(url) as store:
        done = record(store)
        assert done is not None and done.source_deleted
        assert out == f"{NAME}: already migrated ({done.pages} pages); v1 data deleted\n"
        assert v2_dump(store) == source


def test_cli_refusal_is_one_line_on_stderr_and_a_failure_status(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # a refusal is a ConfigError: sqlkv.cli.main decides its status (1, or 2 as a usage error)
    assert run_cli(["--store", _cli_store(tmp_path), "migrate", "nothing"]) in (1, 2)
    out, err = capsys.readouterr()
    assert out == ""
    assert err == (
        "sqlkv: error: there is no v1 database named 'nothing' in this store: nothing to migrate\n"
    )


def test_cli_bad_batch_size_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli(["--store", _cli_store(tmp_path), "migrate", NAME, "--batch-pages", "0"]) == 2
    assert "--batch-pages: must be an integer within 1..4096" in capsys.readouterr().err
