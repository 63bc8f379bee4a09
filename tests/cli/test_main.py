"""``main([...])`` in process: exit codes and the exact one-line messages of bad input."""

from __future__ import annotations

from pathlib import Path

import pytest

from sqlkv.cli.main import main

pytestmark = pytest.mark.usefixtures("no_client_env")


def call(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, list[str]]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err.splitlines()


@pytest.fixture
def store(tmp_path: Path) -> str:
    return str(tmp_path / "store")


def test_no_command_prints_help_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = call(capsys)
    assert code == 2
    assert err[0].startswith("usage: sqlkv")


def test_help_documents_the_configuration(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = call(capsys, "--help")
    assert code == 0
    for text in ("SQLKV_STORE", "SQLKV_ENGINE", "SQLKV_TOKEN", "--engine URL", "--token TOKEN"):
        assert text in out
    for command in ("shell", "import", "export", "inspect", "compact", "list", "delete"):
        assert f"    {command} " in out


def test_an_unknown_command_is_a_one_line_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = call(capsys, "frobnicate")
    assert code == 2
    assert len(err) == 1
    assert err[0].startswith("sqlkv: error: argument COMMAND: invalid choice: 'frobnicate'")


def test_missing_arguments_are_a_one_line_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = call(capsys, "import", "only-one.db")
    assert (code, err) == (
        2,
        [
            "sqlkv import: error: the following arguments are required: NAME "
            "(see 'sqlkv import --help')"
        ],
    )


def test_import_of_a_missing_file_fails(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, store: str
) -> None:
    missing = tmp_path / "missing.db"
    code, _, err = call(capsys, "--store", store, "import", str(missing), "x")
    assert (code, err) == (1, [f"sqlkv: error: {missing}: no such file"])


def test_import_of_a_file_that_is_not_sqlite_fails(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, store: str
) -> None:
    text = tmp_path / "notes.db"
    text.write_text("hello, this is not a database\n" * 10)
    code, _, err = call(capsys, "--store", store, "import", str(text), "x")
    assert (code, err) == (
        1,
        [
            f"sqlkv: error: {text}: not a SQLite database (the file does not start with "
            "'SQLite format 3')"
        ],
    )


def test_import_of_an_empty_file_or_a_directory_fails(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, store: str
) -> None:
    empty = tmp_path / "empty.db"
    empty.write_bytes(b"")
    code, _, err = call(capsys, "--store", store, "import", str(empty), "x")
    assert (code, err) == (
        1,
        [f"sqlkv: error: {empty}: the file is empty; there is nothing to import"],
    )
    code, _, err = call(capsys, "--store", store, "import", str(tmp_path), "x")
    assert (code, err) == (
        1,
        [f"sqlkv: error: {tmp_path}: is a directory, not a SQLite database file"],
    )


def test_import_refuses_an_existing_database_without_replace(
    capsys: pytest.CaptureFixture[str], source_small: Path, store: str
) -> None:
    assert call(capsys, "--store", store, "import", str(source_small), "db")[0] == 0
    code, _, err = call(capsys, "--store", store, "import", str(source_small), "db")
    assert (code, err) == (
        1,
        [f"sqlkv: error: database 'db' already exists in {store}; pass --replace to overwrite it"],
    )
    code, out, _ = call(capsys, "--store", store, "import", "--replace", str(source_small), "db")
    assert code == 0 and "(replaced)" in out


def test_unknown_databases_fail_with_one_line(
    capsys: pytest.CaptureFixture[str], source_small: Path, tmp_path: Path, store: str
) -> None:
    call(capsys, "--store", store, "import", str(source_small), "present")
    message = (
        f"sqlkv: error: database 'absent' does not exist in {store}; 'sqlkv list' shows the "
        "databases"
    )
    for argv in (
        ["export", "absent", str(tmp_path / "out.db")],
        ["inspect", "absent"],
        ["compact", "absent"],
        ["delete", "--yes", "absent"],
    ):
        code, _, err = call(capsys, "--store", store, *argv)
        assert (code, err) == (1, [message]), argv


def test_read_only_commands_do_not_create_a_missing_store(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    nowhere = tmp_path / "nowhere"
    code, _, err = call(capsys, "--store", str(nowhere), "list")
    assert (code, err) == (
        1,
        [
            f"sqlkv: error: store directory {str(nowhere)!r} does not exist; give --store URL "
            "or set SQLKV_STORE to the store holding your databases"
        ],
    )
    assert not nowhere.exists()


def test_an_unreachable_store_fails_with_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = call(capsys, "--store", "postgresql://127.0.0.1:1/x", "list")
    assert code == 1
    assert len(err) == 1
    assert err[0].startswith("sqlkv: error: cannot connect to PostgreSQL at 127.0.0.1:1/x")


def test_an_unknown_store_scheme_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = call(capsys, "--store", "ftp://host/x", "list")
    assert code == 2
    assert len(err) == 1 and err[0].startswith("sqlkv: error: unknown store URL scheme 'ftp'")


def test_store_commands_refuse_an_engine_url(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = call(capsys, "--engine", "sqlkv://127.0.0.1:1", "list")
    assert (code, err) == (
        2,
        [
            "sqlkv: error: 'sqlkv list' works on the store itself and cannot go through the "
            "engine server sqlkv://127.0.0.1:1; give --store URL (the store that server uses)"
        ],
    )


def test_store_and_engine_flags_together_are_a_usage_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, _, err = call(capsys, "--store", "memory://", "--engine", "sqlkv://h:1", "list")
    assert (code, err) == (
        2,
        [
            "sqlkv: error: give a store URL or an engine URL, not both: an engine server "
            "brings its own store"
        ],
    )


def test_an_unreachable_engine_fails_with_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, _, err = call(capsys, "--engine", "sqlkv://127.0.0.1:1", "inspect", "x")
    assert code == 1
    assert len(err) == 1 and err[0].startswith("sqlkv: error: HEAD failed after")


def test_delete_without_a_terminal_needs_yes(
    capsys: pytest.CaptureFixture[str], source_small: Path, store: str
) -> None:
    call(capsys, "--store", store, "import", str(source_small), "keep")
    code, _, err = call(capsys, "--store", store, "delete", "keep")
    assert (code, err) == (
        2,
        [
            "sqlkv: error: refusing to delete database 'keep' without confirmation: stdin is "
            "not a terminal; pass --yes to confirm"
        ],
    )
    code, out, _ = call(capsys, "--store", store, "list")
    assert "keep" in out


def test_export_refuses_to_overwrite_without_force(
    capsys: pytest.CaptureFixture[str], source_small: Path, tmp_path: Path, store: str
) -> None:
    call(capsys, "--store", store, "import", str(source_small), "db")
    target = tmp_path / "exists.db"
    target.write_bytes(b"precious")
    code, _, err = call(capsys, "--store", store, "export", "db", str(target))
    assert (code, err) == (
        1,
        [f"sqlkv: error: {target}: the file exists; pass --force to overwrite it"],
    )
    assert target.read_bytes() == b"precious"
    assert call(capsys, "--store", store, "export", "--force", "db", str(target))[0] == 0
    assert target.read_bytes()[:16] == b"SQLite format 3\x00"


def test_export_refuses_a_stale_journal_beside_the_target(
    capsys: pytest.CaptureFixture[str], source_small: Path, tmp_path: Path, store: str
) -> None:
    call(capsys, "--store", store, "import", str(source_small), "db")
    target = tmp_path / "new.db"
    journal = tmp_path / "new.db-journal"
    journal.write_bytes(b"stale")
    code, _, err = call(capsys, "--store", store, "export", "db", str(target))
    assert code == 1 and len(err) == 1 and "new.db-journal exists" in err[0]
    assert call(capsys, "--store", store, "export", "--force", "db", str(target))[0] == 0
    assert not journal.exists()


def test_bad_option_values_are_usage_errors(
    capsys: pytest.CaptureFixture[str], source_small: Path, store: str
) -> None:
    code, _, err = call(
        capsys, "--store", store, "import", "--txn-mib", "0", str(source_small), "x"
    )
    assert code == 2 and len(err) == 1 and "'0' is not a positive integer" in err[0]
    code, _, err = call(capsys, "--store", store, "shell", "--cache-size", "lots", "x", "SELECT 1")
    assert code == 2 and len(err) == 1 and "cache_size 'lots' is not a size" in err[0]


def test_a_reader_that_goes_away_ends_the_command_quietly() -> None:
    """``sqlkv demo | head -1``: no error message, the usual status of a broken pipe."""
    import subprocess
    import sys

    proc = subprocess.Popen(
        [sys.executable, "-m", "sqlkv.cli.main", "--store", "memory://", "demo"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # before the interpreter has even started: its first write fails
    err = proc.stderr.read()
    assert proc.wait(timeout=60) == 141
    assert b"error" not in err


@pytest.mark.parametrize(
    ("url", "hint"),
    [
        ("memory:/", "did you mean memory://?"),
        ("lmdb://relative", "like lmdb:///var/lib/sqlkv (three slashes)"),
        ("file://relative/dir", "like file:///var/lib/sqlkv (three slashes)"),
    ],
)
@pytest.mark.parametrize("command", [["list"], ["shell", "--create", "db", "SELECT 1"]])
def test_store_url_typos_are_usage_errors_with_the_hint(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    url: str,
    hint: str,
    command: list[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, err = call(capsys, "--store", url, *command)
    assert code == 2 and len(err) == 1, err
    assert err[0].startswith(f"sqlkv: error: store URL {url!r}: ") and hint in err[0]
    assert list(tmp_path.iterdir()) == []  # no ./memory:, ./relative or anything else


def test_help_lists_every_store_url_form(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = call(capsys, "--help")
    assert code == 0
    for form in ("file:///", "lmdb:///", "memory://", "memory://NAME", "postgresql://"):
        assert form in out, form


def test_serve_refuses_an_engine_url(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = call(capsys, "serve", "--engine", "sqlkv://127.0.0.1:1")
    assert (code, err) == (
        2,
        [
            "sqlkv: error: sqlkv serve runs an engine on a store: give --store URL; --engine "
            "names a server for clients to use"
        ],
    )
