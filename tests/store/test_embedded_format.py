"""The embedded store's file format: the store's version lives in the conflict log (format
2, ``embedded_file.VERSION``), a commit writes no ``meta`` row, and a format 1 file is
migrated on open without its version going back (docs/hot-path.md, "Commit path, round 2").
"""

from __future__ import annotations

from pathlib import Path

import apsw
import pytest

from sqlkv.errors import ConflictError, GuardFailed, StoreError
from sqlkv.store import Transaction
from sqlkv.store.conflict_log import encode_ranges
from sqlkv.store.embedded import DB_FILE, EmbeddedStore
from sqlkv.store.embedded_file import FORMAT, VERSION


def meta_row(path: Path) -> tuple[int, int, int]:
    conn = apsw.Connection(str(path / DB_FILE))
    try:
        row = conn.execute("SELECT format, version, floor FROM meta").fetchall()[0]
        return (int(row[0]), int(row[1]), int(row[2]))  # type: ignore[arg-type]
    finally:
        conn.close()


def store_version(path: Path) -> int:
    conn = apsw.Connection(str(path / DB_FILE))
    try:
        return int(conn.execute(f"SELECT {VERSION} FROM meta").fetchall()[0][0])  # type: ignore[arg-type]
    finally:
        conn.close()


def test_commits_advance_the_version_without_writing_the_meta_row(tmp_path: Path) -> None:
    with EmbeddedStore(tmp_path / "s") as store:
        before = meta_row(tmp_path / "s")
        for i in range(5):
            store.transact(lambda tr, i=i: tr.set(b"k%d" % i, b"v"))  # read nothing
        store.transact(lambda tr: tr.set(b"k", tr.get(b"k0") or b""))  # read, then write
        assert store_version(tmp_path / "s") == 6
        assert meta_row(tmp_path / "s") == before == (FORMAT, 0, 0)


def test_a_format_1_file_is_migrated_and_its_version_never_goes_back(tmp_path: Path) -> None:
    path = tmp_path / "s"
    with EmbeddedStore(path):
        pass
    # What a format 1 store left: version 40 in meta, log rows up to 40 (some pruned).
    conn = apsw.Connection(str(path / DB_FILE))
    conn.execute("UPDATE meta SET format = 1, version = 40, floor = 30")
    for v in range(31, 41):
        conn.execute(
            "INSERT INTO conflict_log(version, ts, ranges) VALUES (?, 0, ?)",
            (v, encode_ranges([(b"a", b"b")])),
        )
    conn.close()
    with EmbeddedStore(path) as store:
        assert meta_row(path)[0] == FORMAT
        assert store_version(path) == 40
        old = store.begin()
        old.get(b"x")  # a read at version 40
        store.transact(lambda tr: tr.set(b"x", b"1"))
        assert store_version(path) == 41
        old.set(b"y", b"2")
        with pytest.raises(ConflictError):
            old.commit()  # the version-41 write is checked against its read


def test_a_file_of_a_newer_format_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s"
    with EmbeddedStore(path):
        pass
    conn = apsw.Connection(str(path / DB_FILE))
    conn.execute("UPDATE meta SET format = 3")
    conn.close()
    with pytest.raises(StoreError, match="format 3"):
        EmbeddedStore(path)


def test_a_guard_that_fails_writes_nothing_and_keeps_the_version(tmp_path: Path) -> None:
    with EmbeddedStore(tmp_path / "s") as store:
        store.transact(lambda tr: tr.set(b"m", b"1"))

        def fn(tr: Transaction) -> None:
            tr.guard(b"m", b"2")
            tr.set(b"k", b"v")

        with pytest.raises(GuardFailed):
            store.transact(fn)
        assert store_version(tmp_path / "s") == 1
