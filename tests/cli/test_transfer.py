"""``sqlkv import`` / ``sqlkv export`` end to end: real processes, real stores, real files."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import tracemalloc
from collections.abc import Sequence
from pathlib import Path

import pytest

from sqlkv.cli.importer import ImportOptions, import_pages
from sqlkv.cli.source import SourceDb
from sqlkv.engine import Engine
from sqlkv.engine.api import CommitResult, OpenResult, Pages, PagesResult, StageResult
from sqlkv.engine.head import Head
from sqlkv.errors import DatabaseNotFound
from sqlkv.store import MemoryStore
from sqlkv.store.embedded import EmbeddedStore

from .cli_support import dump, integrity, make_sqlite
from .conftest import Workdir

MiB = 1024 * 1024


def test_a_20mb_file_round_trips_to_an_identical_dump(work: Workdir, source_20mb: Path) -> None:
    imported = work.run("import", str(source_20mb), "big")
    assert imported.code == 0, imported.err
    assert imported.out.startswith(f"imported {source_20mb} into 'big': ")
    assert "1 transaction;" in imported.out
    exported = work.run("export", "--check", "big", "copy.db")
    assert exported.code == 0, exported.err
    assert "integrity_check ok" in exported.out
    copy = work.path / "copy.db"
    assert integrity(source_20mb) == integrity(copy) == "ok"
    assert dump(copy) == dump(source_20mb)
    # page for page, the export is the file that was imported
    assert copy.read_bytes() == source_20mb.read_bytes()


def test_the_sqlite3_tool_opens_the_export(work: Workdir, source_small: Path) -> None:
    sqlite3_tool = shutil.which("sqlite3")
    if sqlite3_tool is None:
        if os.environ.get("CI"):
            pytest.fail("CI=true but the sqlite3 tool is missing: scripts/test installs it")
        pytest.skip("the sqlite3 command-line tool is not installed (apt-get install sqlite3)")
    assert work.run("import", str(source_small), "db").code == 0
    assert work.run("export", "db", "out.db").code == 0
    out = subprocess.run(
        [
            sqlite3_tool,
            str(work.path / "out.db"),
            "PRAGMA integrity_check; SELECT count(*) FROM tags;",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert out == ["ok", "3000"]


@pytest.mark.parametrize(("page_size", "wal"), [(1024, False), (8192, False), (4096, True)])
def test_files_with_other_page_sizes_or_in_wal_mode_are_converted(
    work: Workdir, page_size: int, wal: bool
) -> None:
    source = make_sqlite(work.path / "odd.db", 2, page_size=page_size, wal=wal)
    if wal:  # leave the newest pages in the -wal file
        conn = sqlite3.connect(source)
        conn.execute("PRAGMA wal_autocheckpoint=0")
        conn.execute("INSERT INTO audit(what) VALUES ('only in the WAL')")
        conn.commit()
        holder = conn  # keep the WAL un-checkpointed while the import runs
    result = work.run("import", str(source), "odd")
    assert result.code == 0, result.err
    assert "VACUUM INTO a temporary file" in result.err
    assert work.run("export", "odd", "back.db").code == 0
    back = work.path / "back.db"
    assert integrity(back) == "ok"
    assert dump(back) == dump(source)
    assert sqlite3.connect(back).execute("PRAGMA page_size").fetchone() == (4096,)
    if wal:
        holder.close()


def test_replace_overwrites_in_one_transaction(work: Workdir, source_small: Path) -> None:
    other = make_sqlite(work.path / "other.db", 0.5, seed=99)
    assert work.run("import", str(source_small), "db").code == 0
    replaced = work.run("import", "--replace", str(other), "db")
    assert replaced.code == 0 and "(replaced)" in replaced.out and "1 transaction;" in replaced.out
    assert work.run("export", "db", "back.db").code == 0
    assert dump(work.path / "back.db") == dump(other)


def test_a_file_larger_than_one_transaction_is_imported_in_several(
    work: Workdir, source_small: Path
) -> None:
    bigger = make_sqlite(work.path / "bigger.db", 3, seed=5)
    assert work.run("import", str(bigger), "db").code == 0
    # shrink it back to the small file, 1 MiB per transaction
    result = work.run(
        "import", "--replace", "--txn-mib", "1", "--no-compact", str(source_small), "db"
    )
    assert result.code == 0, result.err
    assert "transactions;" in result.out  # several: 1 MiB is 256 pages
    assert work.run("export", "--check", "db", "back.db").code == 0
    assert dump(work.path / "back.db") == dump(source_small)


def test_progress_bar_is_drawn_on_request(work: Workdir, source_small: Path) -> None:
    result = work.run("import", "--progress", str(source_small), "db")
    assert result.code == 0
    assert "import db [" in result.err and "100%" in result.err
    # the compaction after the import has a bar of its own, drawn after the import's ended
    compaction = result.err.split("compact db [", 1)[-1]
    assert "import db" not in compaction and "100%" in compaction, result.err
    result = work.run("export", "--progress", "db", "out.db")
    assert "export db [" in result.err and "100%" in result.err
    quiet = work.run("export", "--force", "db", "out.db")  # not a terminal: no bar
    assert quiet.err == ""


def test_export_reads_without_taking_the_database_over(work: Workdir, source_small: Path) -> None:
    assert work.run("import", str(source_small), "db").code == 0
    with EmbeddedStore(work.store) as store:
        before = Engine(store).head("db").generation
    assert work.run("export", "db", "out.db").code == 0
    with EmbeddedStore(work.store) as store:
        assert Engine(store).head("db").generation == before


# --------------------------------------------------------------------------- memory bound


class CountingEngine:
    """An ``EngineApi`` that keeps no page: it only counts what it was sent."""

    def __init__(self) -> None:
        self.pages = 0
        self.largest_stage = 0
        self.head_ = Head(1, head_txid=1, next_txid=2, materialized_txid=1, db_size_pages=0)

    def head(self, db: str) -> Head:
        raise DatabaseNotFound(db)

    def open(
        self,
        db: str,
        *,
        preload: Sequence[int] = (),
        preload_bytes: int | None = None,
        create: bool = True,
    ) -> OpenResult:
        return OpenResult(self.head_)

    def get_pages(self, db: str, generation: int, pgnos: Sequence[int]) -> PagesResult:
        raise AssertionError("an import reads no page")

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
        raise AssertionError("an import stages its pages")

    def commit_stage(
        self, db: str, generation: int, txid: int | None, seq: int, pages: Pages
    ) -> StageResult:
        self.pages += len(pages)
        self.largest_stage = max(self.largest_stage, sum(len(p) for p in pages.values()))
        return StageResult(2, 1)

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
        self.head_ = Head(1, txid, txid + 1, 1, db_size_pages)
        return CommitResult(self.head_)


def test_import_reads_the_source_in_bounded_memory(tmp_path: Path) -> None:
    source = make_sqlite(tmp_path / "forty.db", 40)
    engine = CountingEngine()
    tracemalloc.start()
    try:
        with SourceDb.open(source) as src:
            result = import_pages(engine, "db", src, ImportOptions(stage_bytes=2 * MiB))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert engine.pages == result.pages == src.page_count
    assert engine.largest_stage == 2 * MiB
    assert peak < 8 * MiB, f"import held {peak / MiB:.1f} MiB of a 40 MiB file"


def test_import_into_a_memory_store_matches_the_file(source_small: Path) -> None:
    store = MemoryStore()
    engine = Engine(store)
    with SourceDb.open(source_small) as src:
        result = import_pages(engine, "db", src, ImportOptions())
    head = engine.head("db")
    assert head == result.head
    assert head.db_size_pages == source_small.stat().st_size // 4096
    pages = engine.get_pages("db", head.generation, list(range(1, head.db_size_pages + 1))).pages
    assert b"".join(p or b"" for _, p in sorted(pages.items())) == source_small.read_bytes()
