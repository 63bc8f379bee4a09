"""What the command line imports before it knows which subcommand runs: ``sqlkv --help``,
``--version`` and usage errors load no engine, store or SQLite binding (docs/cli.md
"Start-up"). Checked in a fresh interpreter, by the modules loaded, not by time."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("apsw", "prometheus_client", "sqlkv.engine", "sqlkv.store", "sqlkv.migrate", "sqlkv.vfs")
PROBE = """
import json, sys
from sqlkv.cli.main import main
code = main(sys.argv[1:])
print(json.dumps([code, sorted(sys.modules)]), file=sys.__stderr__)
"""


def loaded_by(*argv: str) -> tuple[int, list[str]]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    run = subprocess.run(
        [sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, env=env, check=False
    )
    code, modules = json.loads(run.stderr.strip().splitlines()[-1])
    return code, modules


@pytest.mark.parametrize(
    ("argv", "code"),
    [(("--help",), 0), (("--version",), 0), (("import", "--help"), 0), (("nope",), 2)],
)
def test_help_and_usage_errors_load_no_engine_store_or_sqlite(
    argv: tuple[str, ...], code: int
) -> None:
    got, modules = loaded_by(*argv)
    assert got == code
    heavy = [m for m in modules if m.split(".")[0] in HEAVY or m.startswith(HEAVY)]
    assert heavy == []


def test_a_light_subcommand_builds_no_engine(tmp_path: Path) -> None:
    from sqlkv.store import open_store

    open_store(str(tmp_path / "store")).close()
    code, modules = loaded_by("--store", str(tmp_path / "store"), "list")
    assert code == 0
    assert "sqlkv.engine.engine" not in modules  # the Engine, its metrics and compaction
    assert "prometheus_client" not in modules


def test_the_defaults_named_for_the_parser_are_the_libraries() -> None:
    import sqlkv.migrate
    from sqlkv.cli import migrate, transfer
    from sqlkv.cli.importer import ImportOptions

    assert migrate.DEFAULT_BATCH_PAGES == sqlkv.migrate.DEFAULT_BATCH_PAGES
    assert migrate.MAX_BATCH_PAGES == sqlkv.migrate.MAX_BATCH_PAGES
    assert transfer.IMPORT_TXN_MIB * transfer.MiB == ImportOptions.txn_bytes
