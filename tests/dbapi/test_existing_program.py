"""An unchanged stdlib-sqlite3 program runs on sqlkv with only its import line swapped for
``import sqlkv.dbapi2 as sqlite3``, and reports exactly what it reports on sqlite3."""

from __future__ import annotations

import datetime
import types
from pathlib import Path
from typing import Any

import pytest

PROGRAM = Path(__file__).parent / "programs" / "inventory.py"
STDLIB_IMPORT = "import sqlite3\n"
SWAPPED_IMPORT = "import sqlkv.dbapi2 as sqlite3\n"


def _load(source: str, name: str) -> types.ModuleType:
    module = types.ModuleType(name)
    exec(compile(source, str(PROGRAM), "exec"), module.__dict__)
    return module


def test_the_program_runs_unchanged_but_for_its_import(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = PROGRAM.read_text()
    assert source.count(STDLIB_IMPORT) == 1
    original = _load(source, "inventory_on_sqlite3")
    swapped = _load(source.replace(STDLIB_IMPORT, SWAPPED_IMPORT), "inventory_on_sqlkv")
    assert swapped.sqlite3.__name__ == "sqlkv.dbapi2"

    expected: dict[str, Any] = original.run(str(tmp_path / "inventory.db"))
    # the program names its database; on sqlkv the store comes from the environment
    monkeypatch.setenv("SQLKV_STORE", str(tmp_path / "store"))
    monkeypatch.delenv("SQLKV_ENGINE", raising=False)
    got: dict[str, Any] = swapped.run("inventory")

    assert got == expected
    assert expected["errors"] == ["IntegrityError"]  # the foreign key; add_product catches its own
    assert expected["ids"] == [1, 2, None]
    assert expected["first_at"] == datetime.datetime(2024, 1, 1, 9, 0)
    assert expected["report"][0]["stock"] == 7
    assert (tmp_path / "store").is_dir()
