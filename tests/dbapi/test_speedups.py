"""The optional C hot paths of ``sqlkv.dbapi2`` (``_speedups``, docs/python-dbapi.md §8)
and the pure-Python code they mirror: the DB-API tests pass on both. The rest of this
directory runs on whichever the process imported (C when built); here the same tests run
again in a process that is told to use the pure-Python code."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import sqlkv.dbapi2 as dbapi2
from sqlkv.dbapi2 import cursor

HERE = Path(__file__).parent


def test_the_dbapi_tests_pass_on_the_pure_python_code() -> None:
    env = dict(os.environ, SQLKV_DBAPI_PURE_PYTHON="1")
    run = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, pytest; import sqlkv.dbapi2.cursor as c; "
            "assert c._speedups is None, 'the C code was imported'; "
            "sys.exit(pytest.main(sys.argv[1:]))",
            str(HERE),
            f"--ignore={Path(__file__)}",
            "-q",
            "-x",
            "-p",
            "no:cacheprovider",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    assert " passed" in run.stdout


def test_which_code_runs() -> None:
    """With the extension built (`pip install -e .` builds it), Connection.execute and the
    cursor's fetching are C; CI builds it, so there the C code must be the one tested."""
    if cursor._speedups is None:
        assert not os.environ.get("CI"), "CI=true but sqlkv.dbapi2._speedups was not built"
        assert cursor.Cursor.__next__ is not None  # the Python code
        return
    assert type(dbapi2.Connection.execute).__name__ == "method_descriptor"
    assert "__next__" not in vars(cursor.Cursor)
    conn = dbapi2.connect(":memory:")
    try:
        conn.execute("CREATE TABLE t(a)")
        conn.execute("INSERT INTO t VALUES (1), (2)")
        cur = conn.execute("SELECT a FROM t")
        assert type(cur) is dbapi2.Cursor
        assert iter(cur) is cur
        assert [cur.fetchone(), *cur] == [(1,), (2,)]
        assert cur.rowcount == -1 and cur.lastrowid == 2
    finally:
        conn.close()
