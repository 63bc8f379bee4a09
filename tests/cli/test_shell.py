"""``sqlkv shell``: on a pseudo-terminal as a user types, with SQL arguments, from a pipe,
when another client takes the database over, and the edges a new user meets (``.help``,
a closed pipe, a typo in the name, options after the arguments)."""

from __future__ import annotations

import os
import subprocess

import pytest

from .cli_support import CLI, Terminal
from .conftest import Workdir


def test_an_interactive_session_creates_inserts_selects_and_quits(work: Workdir) -> None:
    term = Terminal(["--store", str(work.store), "shell", "notes"], cwd=work.path, env=work.env)
    try:
        term.expect(f"database 'notes' does not exist in {work.store}; create it? [y/N]")
        term.send("y")
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
    assert work.run("shell", "--create", "db", "SELECT 1").code == 0
    term = Terminal(["--store", str(work.store), "shell", "db"], cwd=work.path, env=work.env)
    try:
        term.expect("sqlkv> ")
        os.write(term.fd, b"\x04")  # Ctrl-D
        assert term.wait() == 0
    finally:
        term.close()


def test_sql_arguments_run_and_exit(work: Workdir) -> None:
    result = work.run(
        "shell",
        "--create",
        "db",
        "CREATE TABLE t(x)",
        "INSERT INTO t VALUES (1), (2)",
        "SELECT sum(x) FROM t",
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
    result = work.run("shell", "db", "--create", stdin=script)
    assert (result.code, result.out) == (0, "piped\n")


def test_open_is_refused_inside_the_shell(work: Workdir) -> None:
    result = work.run("shell", "--create", "db", ".open other.db")
    assert result.code == 1
    assert ".open is not available" in result.err
    assert not (work.path / "other.db").exists()


def test_a_takeover_ends_the_shell_with_one_line(work: Workdir) -> None:
    assert work.run("shell", "--create", "db", "CREATE TABLE t(x)").code == 0
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


def test_help_prints_the_dot_commands_and_exits_0(work: Workdir) -> None:
    result = work.run("shell", "--create", "db", ".help")
    assert result.code == 0, result.err
    text = result.out + result.err  # apsw's shell prints its help on stderr
    assert ".tables" in text and ".dump" in text
    assert ".open                         Not available" in text  # our own .open
    assert "must have documentation" not in text


def test_a_reader_that_goes_away_ends_the_shell_quietly(work: Workdir) -> None:
    """``echo .dump | sqlkv shell db | head -1``: no "Broken pipe", status 141."""
    rows = (
        "CREATE TABLE t AS WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c "
        "WHERE i < 5000) SELECT i, printf('%0200d', i) AS x FROM c"
    )
    assert work.run("shell", "--create", "db", rows).code == 0
    proc = subprocess.Popen(
        [*CLI, "--store", str(work.store), "shell", "db"],
        cwd=work.path,
        env=work.env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdin and proc.stdout and proc.stderr
    proc.stdin.write(b".dump\n")
    proc.stdin.close()
    assert proc.stdout.readline()  # head -1
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 141
    assert err == "", err


@pytest.mark.parametrize("sql", [["SELECT 1"], []])
def test_a_missing_database_is_not_created_without_create(work: Workdir, sql: list[str]) -> None:
    assert work.run("shell", "--create", "real", "SELECT 1").code == 0
    typo = work.run("shell", "reel", *sql, stdin="SELECT 1;\n")
    assert (typo.code, typo.out) == (1, "")
    assert typo.err == (
        f"sqlkv: error: database 'reel' does not exist in {work.store}; pass --create to "
        "create it ('sqlkv list' shows the databases)\n"
    )
    listed = work.run("list")
    assert "real" in listed.out and "reel" not in listed.out


def test_a_terminal_asks_before_creating_and_no_means_nothing_is_created(work: Workdir) -> None:
    code, text = work.answer("shell", "typo", prompt="create it? [y/N]", reply="n")
    assert code == 1
    assert "sqlkv: error: database 'typo' not created" in text
    assert "typo" not in work.run("list").out


def test_options_go_before_or_after_the_arguments(work: Workdir) -> None:
    store = str(work.store)
    made = work.run_bare("shell", "e1", "--store", store, "--create", "CREATE TABLE t(x)")
    assert made.code == 0, made.err
    for argv in (
        ["shell", "e1", "--store", store, "SELECT count(*) FROM t"],
        ["shell", "e1", "--cache-size", "8MiB", "SELECT count(*) FROM t", "--store", store],
        ["--store", store, "shell", "--cache-size", "8MiB", "e1", "SELECT count(*) FROM t"],
        ["list", "--store", store],
    ):
        result = work.run_bare(*argv)
        assert result.code == 0, (argv, result.err)
        assert result.out.strip() in ("0", "") or "e1" in result.out, (argv, result.out)


@pytest.mark.parametrize("name", ["../etc", "a/b", " ", "a\nb"])
def test_invalid_names_are_usage_errors(work: Workdir, name: str) -> None:
    for argv in (["shell", "--create", name, "SELECT 1"], ["inspect", name], ["compact", name]):
        result = work.run(*argv)
        assert result.code == 2, (argv, result.err)
        assert len(result.err.splitlines()) == 1
        assert f"argument NAME: invalid database name {name!r}: " in result.err
    assert not work.store.exists() or work.run("list").out.startswith("no databases")
