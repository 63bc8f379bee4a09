"""``sqlkv shell``: on a pseudo-terminal as a user types, with SQL arguments, from a pipe,
and when another client takes the database over."""

from __future__ import annotations

import os

from .cli_support import Terminal
from .conftest import Workdir


def test_an_interactive_session_creates_inserts_selects_and_quits(work: Workdir) -> None:
    term = Terminal(["--store", str(work.store), "shell", "notes"], cwd=work.path, env=work.env)
    try:
        term.expect("sqlkv> ")
        assert "sqlkv shell on database 'notes'" in term.text
        term.send("CREATE TABLE note(id INTEGER PRIMARY KEY, body TEXT);")
        term.expect("sqlkv> ")
        term.send("INSERT INTO note(body) VALUES ('hello from a terminal');")
        term.expect("sqlkv> ")
        term.send("SELECT id, body FROM note;")
        term.expect("hello from a terminal")
        term.expect("sqlkv> ")
        term.send(".quit")
        assert term.wait() == 0
    finally:
        term.close()
    # the row is durable: a new process sees it
    again = work.run("shell", "notes", "SELECT body FROM note")
    assert (again.code, again.out) == (0, "hello from a terminal\n")


def test_end_of_input_leaves_the_shell(work: Workdir) -> None:
    term = Terminal(["--store", str(work.store), "shell", "db"], cwd=work.path, env=work.env)
    try:
        term.expect("sqlkv> ")
        os.write(term.fd, b"\x04")  # Ctrl-D
        assert term.wait() == 0
    finally:
        term.close()


def test_sql_arguments_run_and_exit(work: Workdir) -> None:
    result = work.run(
        "shell", "db", "CREATE TABLE t(x)", "INSERT INTO t VALUES (1), (2)", "SELECT sum(x) FROM t"
    )
    assert (result.code, result.out) == (0, "3\n")
    assert result.err == f"sqlkv: database 'db' is new (empty) in {work.store}\n"
    again = work.run("shell", "db", "SELECT count(*) FROM t")
    assert (again.code, again.out, again.err) == (0, "2\n", "")
    failed = work.run("shell", "db", "SELECT nope FROM t")
    assert failed.code == 1
    assert "no such column: nope" in failed.err


def test_statements_from_a_pipe(work: Workdir) -> None:
    script = "CREATE TABLE t(x);\nINSERT INTO t VALUES ('piped');\nSELECT x FROM t;\n"
    result = work.run("shell", "db", stdin=script)
    assert (result.code, result.out) == (0, "piped\n")


def test_open_is_refused_inside_the_shell(work: Workdir) -> None:
    result = work.run("shell", "db", ".open other.db")
    assert result.code == 1
    assert ".open is not available" in result.err
    assert not (work.path / "other.db").exists()


def test_a_takeover_ends_the_shell_with_one_line(work: Workdir) -> None:
    assert work.run("shell", "db", "CREATE TABLE t(x)").code == 0
    term = Terminal(["--store", str(work.store), "shell", "db"], cwd=work.path, env=work.env)
    try:
        term.expect("sqlkv> ")
        other = work.run("shell", "db", "INSERT INTO t VALUES ('other owner')")
        assert other.code == 0, other.err
        term.send("INSERT INTO t VALUES ('fenced out');")
        assert term.wait() == 1
        errors = [line for line in term.text.splitlines() if line.startswith("sqlkv: error:")]
        assert errors == [
            "sqlkv: error: database 'db': another owner took this database over; "
            "open a new connection"
        ]
        assert "Traceback" not in term.text
    finally:
        term.close()
    rows = work.run("shell", "db", "SELECT x FROM t")
    assert rows.out == "other owner\n"
