"""Fixtures of the command-line tests: a working directory with an embedded store, a
``sqlkv`` runner, SQLite source files, and a real ``sqlkv serve`` with a token."""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from .cli_support import CLI, CLIENT_ENV, Result, Terminal, clean_env, make_sqlite, run

Runner = Callable[..., Result]


@dataclass
class Workdir:
    """A user's directory: ``store`` is the embedded store the commands use."""

    path: Path
    store: Path
    env: dict[str, str]

    def run(self, *args: str, stdin: str = "", env: dict[str, str] | None = None) -> Result:
        """``sqlkv --store STORE ARGS`` in this directory."""
        return run(
            ["--store", str(self.store), *args], cwd=self.path, env=env or self.env, stdin=stdin
        )

    def run_bare(self, *args: str, env: dict[str, str] | None = None) -> Result:
        """``sqlkv ARGS`` with no --store flag."""
        return run(list(args), cwd=self.path, env=env or self.env)

    def answer(self, *args: str, prompt: str, reply: str) -> tuple[int, str]:
        """``sqlkv --store STORE ARGS`` on a terminal: wait for ``prompt``, type ``reply``;
        the exit status and everything the terminal showed."""
        term = Terminal(["--store", str(self.store), *args], cwd=self.path, env=self.env)
        try:
            term.expect(prompt)
            term.send(reply)
            return term.wait(), term.text
        finally:
            term.close()


@pytest.fixture
def work(tmp_path: Path) -> Workdir:
    return Workdir(tmp_path, tmp_path / "store", clean_env(tmp_path))


@pytest.fixture
def no_client_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process tests start without the client environment variables."""
    for var in CLIENT_ENV:
        monkeypatch.delenv(var, raising=False)


@pytest.fixture(scope="session")
def source_20mb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 20 MiB SQLite file with 4096-byte pages (read-only: tests copy what they change)."""
    return make_sqlite(tmp_path_factory.mktemp("sources") / "source20.db", 20)


@pytest.fixture(scope="session")
def source_small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 1 MiB SQLite file with 4096-byte pages."""
    return make_sqlite(tmp_path_factory.mktemp("sources") / "small.db", 1, seed=7)


@dataclass
class Server:
    url: str
    token: str
    proc: subprocess.Popen[bytes]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    """``sqlkv serve`` on 127.0.0.1 (a free port) with a token, over an embedded store."""
    token = "right-token"
    log = tmp_path / "serve.log"
    args = [
        *CLI,
        "--store",
        str(tmp_path / "server-store"),
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--token",
        token,
    ]
    with log.open("wb") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=clean_env(tmp_path))
    try:
        deadline = time.monotonic() + 30
        while True:
            m = re.search(r"listening on 127\.0\.0\.1:(\d+)", log.read_text(errors="replace"))
            if m:
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"sqlkv serve did not start:\n{log.read_text()}")
            time.sleep(0.05)
        yield Server(f"sqlkv://127.0.0.1:{m.group(1)}", token, proc)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
