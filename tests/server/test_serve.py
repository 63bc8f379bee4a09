"""``sqlkv serve`` as an operator meets it: a quiet SIGTERM, the metrics endpoint (buckets,
no ``_created`` noise, process and build metrics, bounded per-database series), a taken
port named in the error, the token from ``SQLKV_TOKEN``, engine settings from a file or
flags, and the database-name rule over the network."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from server_support import HOST, ServerFactory, ServerProc

import sqlkv
from sqlkv.errors import AuthError, InvalidDatabaseName, QuotaExceeded
from sqlkv.server import RemoteEngine
from sqlkv.server.client import connect_engine

PAGE = 4096


def scrape(server: ServerProc) -> str:
    url = f"http://{HOST}:{server.metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=10) as resp:
        return str(resp.read().decode())


def series_names(text: str) -> set[str]:
    return {line.split("{")[0].split(" ")[0] for line in text.splitlines() if line[:1] != "#"}


def commit_one(engine: RemoteEngine, db: str) -> None:
    head = engine.open(db).head
    engine.commit(db, head.generation, head.head_txid, {1: bytes(PAGE)}, 1)


def serve_until_exit(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> str:
    """Run ``sqlkv serve ARGS`` that is expected to stop by itself; its output."""
    proc = subprocess.run(
        [sys.executable, "-m", "sqlkv.server", "--store", str(tmp_path / "s"), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    return f"{proc.returncode}\n{proc.stderr}"


def test_sigterm_with_open_connections_drains_without_errors_or_tracebacks(
    servers: ServerFactory, store_dir: str
) -> None:
    server = servers(store_dir)
    engines = [connect_engine(server.url) for _ in range(3)]
    try:
        for i, engine in enumerate(engines):
            commit_one(engine, f"db{i}")  # each holds an idle pooled connection now
        server.stop()
        assert server.proc.wait(timeout=30) == 0
    finally:
        for engine in engines:
            engine.close()
    log = server.output()
    assert "stopped" in log
    assert "ERROR" not in log and "Traceback" not in log and "CancelledError" not in log, log


def test_metrics_buckets_process_build_info_and_no_created_series(
    servers: ServerFactory, store_dir: str
) -> None:
    server = servers(store_dir)
    with connect_engine(server.url) as engine:
        commit_one(engine, "orders")
    text = scrape(server)
    names = series_names(text)
    assert not [n for n in names if n.endswith("_created")]
    assert 'sqlkv_commit_seconds_bucket{le="5e-05",path="fast"}' in text
    assert 'sqlkv_server_request_seconds_bucket{le="5e-05",type="COMMIT"}' in text
    assert 'le="10.0"' in text
    assert "process_cpu_seconds_total" in names and "process_resident_memory_bytes" in names
    assert 'sqlkv_build_info{python="' in text and f'version="{sqlkv.__version__}"' in text
    # no series is labelled by database unless asked for: one database per tenant is fine
    assert 'db="' not in text
    assert {"sqlkv_live_deltas", "sqlkv_compaction_lag_txids_max"} <= names


def test_per_database_series_are_opt_in(servers: ServerFactory, store_dir: str) -> None:
    server = servers(store_dir, extra=("--metrics-per-database", "--no-compaction"))
    with connect_engine(server.url) as engine:
        for db in ("a", "b"):
            commit_one(engine, db)
    assert server.metric("sqlkv_delta_count", db="a") == 1
    assert server.metric("sqlkv_delta_count", db="b") == 1
    assert server.metric("sqlkv_live_deltas") == 2
    assert server.metric("sqlkv_compaction_lag_txids_max") == 1


def test_a_taken_metrics_port_names_the_address(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind((HOST, 0))
        taken.listen()
        port = taken.getsockname()[1]
        out = serve_until_exit(tmp_path, "--listen", f"{HOST}:0", "--metrics", f"{HOST}:{port}")
    code, _, err = out.partition("\n")
    assert code == "1"
    assert f"sqlkv: error: cannot listen on {HOST}:{port} (--metrics): " in err
    assert "Traceback" not in err


def test_a_taken_listen_port_names_the_address(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind((HOST, 0))
        taken.listen()
        port = taken.getsockname()[1]
        out = serve_until_exit(tmp_path, "--listen", f"{HOST}:{port}")
    code, _, err = out.partition("\n")
    assert code == "1"
    assert f"sqlkv: error: cannot listen on {HOST}:{port} (--listen): " in err
    assert "Traceback" not in err


def test_the_server_reads_sqlkv_token_like_the_client(
    servers: ServerFactory, store_dir: str
) -> None:
    env = {**os.environ, "SQLKV_TOKEN": "from-the-environment"}
    server = servers(store_dir, env=env)
    with connect_engine(server.url) as anonymous, pytest.raises(AuthError):
        anonymous.open("db")
    with connect_engine(server.url, token="from-the-environment") as engine:
        commit_one(engine, "db")


def test_engine_settings_from_flags_and_a_config_file(
    servers: ServerFactory, store_dir: str, tmp_path: Path
) -> None:
    config = tmp_path / "serve.toml"
    config.write_text('[engine]\ndefault_quota_bytes = "1MiB"\n[compaction]\nworkers = 1\n')
    server = servers(store_dir, extra=("--config", str(config), "--set", "engine.part_pages=8"))
    with connect_engine(server.url) as engine:
        head = engine.open("db").head
        big = {p: os.urandom(PAGE) for p in range(1, 400)}  # 1.6 MB of incompressible pages
        with pytest.raises(QuotaExceeded, match="over its quota of 1048576 bytes"):
            engine.commit("db", head.generation, head.head_txid, big, 399)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--set", "engine.bogus=1"],
            "unknown engine setting(s) bogus; valid settings: max_delta_bytes, ",
        ),
        (["--set", "engine.max_delta_bytes=lots"], "engine.max_delta_bytes 'lots' is not a size"),
        (["--set", "compaction.workers=0"], "workers must be within 1..64, got 0"),
        (["--set", "nope"], "must be SECTION.NAME=VALUE"),
        (["--set", "server.x=1"], "unknown section 'server'; valid sections: engine, compaction"),
        (["--config", "CONFIG"], "unknown table(s) extra; valid tables: engine, compaction"),
    ],
)
def test_bad_engine_settings_are_usage_errors_naming_the_setting(
    tmp_path: Path, args: list[str], message: str
) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("[extra]\nx = 1\n")
    args = [str(config) if a == "CONFIG" else a for a in args]
    code, _, err = serve_until_exit(tmp_path, "--listen", f"{HOST}:0", *args).partition("\n")
    assert code == "2", err
    assert err.startswith("sqlkv: error: ") and message in err, err
    assert len(err.splitlines()) == 1


def test_invalid_database_names_are_refused_by_the_server(
    servers: ServerFactory, store_dir: str
) -> None:
    server = servers(store_dir)
    with connect_engine(server.url) as engine:
        for name in ("../etc", "a/b", " ", "a\nb"):
            with pytest.raises(InvalidDatabaseName, match="invalid database name"):
                engine.open(name)
