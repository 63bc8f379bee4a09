"""The commands through a real ``sqlkv serve`` with a token, and over PostgreSQL."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from drivers import postgres_url_or_skip

import sqlkv
from sqlkv.server.client import RemoteEngine

from .cli_support import clean_env, dump
from .conftest import Server, Workdir


def test_a_wrong_token_fails_with_one_line(
    work: Workdir, server: Server, source_small: Path
) -> None:
    for args in (
        ["import", str(source_small), "db"],
        ["export", "db", "out.db"],
        ["inspect", "db"],
        ["shell", "db", "SELECT 1"],
    ):
        result = work.run_bare("--engine", server.url, "--token", "wrong-token", *args)
        assert result.code == 1, (args, result.err)
        assert len(result.err_lines) == 1, result.err
        assert result.err_lines[0].startswith("sqlkv: error: "), result.err
        assert "token" in result.err_lines[0].lower(), result.err
    assert not (work.path / "out.db").exists()


def test_import_export_shell_and_inspect_through_the_server(
    work: Workdir, server: Server, source_small: Path
) -> None:
    env = clean_env(work.path, SQLKV_ENGINE=server.url, SQLKV_TOKEN=server.token)
    imported = work.run_bare("import", str(source_small), "remote", env=env)
    assert imported.code == 0, imported.err
    assert "compacted" not in imported.out  # the server compacts on its own
    shell = work.run_bare("shell", "remote", "SELECT count(*) FROM tags", env=env)
    assert (shell.code, shell.out) == (0, "3000\n")
    exported = work.run_bare("export", "--check", "remote", "back.db", env=env)
    assert exported.code == 0, exported.err
    assert dump(work.path / "back.db") == dump(source_small)
    report = json.loads(work.run_bare("inspect", "--json", "remote", env=env).out)
    assert report["target"] == server.url
    assert report["keys"] is None  # counted only with the store
    assert report["head"]["db_size_pages"] == source_small.stat().st_size // 4096
    # list works on the store, not through the server: a usage error, not a guess
    listed = work.run_bare("list", env=env)
    assert listed.code == 2 and "works on the store itself" in listed.err


@pytest.mark.postgres
def test_a_round_trip_through_postgresql(work: Workdir, source_20mb: Path) -> None:
    url = postgres_url_or_skip()
    name = f"cli-{uuid.uuid4().hex[:12]}"
    env = clean_env(work.path, SQLKV_STORE=url)
    try:
        imported = work.run_bare("import", str(source_20mb), name, env=env)
        assert imported.code == 0, imported.err
        report = json.loads(work.run_bare("inspect", "--json", name, env=env).out)
        assert report["accounting_ok"] is True
        assert report["compaction_lag"]["deltas"] == 0
        listed = json.loads(work.run_bare("list", "--json", env=env).out)
        assert {"name": name, "format": "v2"}.items() <= next(
            e for e in listed if e["name"] == name
        ).items()
        exported = work.run_bare("export", name, "back.db", env=env)
        assert exported.code == 0, exported.err
        back = work.path / "back.db"
        assert dump(back) == dump(source_20mb)
    finally:
        deleted = work.run_bare("delete", "--yes", name, env=env)
    assert deleted.code == 0, deleted.err
    missing = work.run_bare("inspect", name, env=env)
    assert missing.code == 1 and "does not exist" in missing.err


def test_connect_reads_the_engine_and_token_from_the_environment(
    server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SQLKV_STORE", raising=False)
    monkeypatch.setenv("SQLKV_ENGINE", server.url)
    monkeypatch.setenv("SQLKV_TOKEN", server.token)
    conn = sqlkv.connect("from-env")
    try:
        conn.execute("CREATE TABLE t(x)")
    finally:
        conn.close()
    assert not (tmp_path / "sqlkv-data").exists()  # not the default store: the server
    with RemoteEngine(server.url, token=server.token) as engine:
        assert engine.head("from-env").head_txid > 1
    # an explicit store wins over the environment's engine and token
    conn = sqlkv.connect("local", str(tmp_path / "local-store"))
    conn.close()
    assert (tmp_path / "local-store").is_dir()
