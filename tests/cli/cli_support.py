"""Helpers of the command-line tests: running ``sqlkv`` as a user does, making SQLite
files, comparing them, reading a store's keys, and driving a pseudo-terminal."""

from __future__ import annotations

import os
import pty
import random
import re
import select
import sqlite3
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlkv.store import Store, Transaction

CLI = [sys.executable, "-m", "sqlkv.cli.main"]
CLIENT_ENV = ("SQLKV_STORE", "SQLKV_ENGINE", "SQLKV_TOKEN")
TIMEOUT_S = 120


def clean_env(home: Path, **extra: str) -> dict[str, str]:
    """The environment of a ``sqlkv`` process: ours without the client variables."""
    env = {k: v for k, v in os.environ.items() if k not in CLIENT_ENV}
    env.update(HOME=str(home), NO_COLOR="1", TERM="dumb", **extra)
    return env


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def err_lines(self) -> list[str]:
        return self.err.splitlines()


def run(args: Sequence[str], *, cwd: Path, env: dict[str, str], stdin: str = "") -> Result:
    """Run ``sqlkv ARGS`` in a subprocess and wait for it."""
    proc = subprocess.run(
        [*CLI, *args],
        cwd=cwd,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


def make_sqlite(
    path: Path, megabytes: float, *, page_size: int = 4096, wal: bool = False, seed: int = 1
) -> Path:
    """A SQLite file of about ``megabytes``: rows with text, reals, blobs, an index, a
    WITHOUT ROWID table, a view, a trigger and a user_version."""
    rnd = random.Random(seed)
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA page_size={page_size}")
    if wal:
        conn.execute("PRAGMA journal_mode=WAL")
    conn.executescript(
        """
        CREATE TABLE items(id INTEGER PRIMARY KEY, name TEXT, price REAL, body BLOB);
        CREATE INDEX items_name ON items(name);
        CREATE TABLE tags(tag TEXT PRIMARY KEY, n INTEGER) WITHOUT ROWID;
        CREATE TABLE audit(id INTEGER PRIMARY KEY, what TEXT);
        CREATE VIEW cheap AS SELECT id, name FROM items WHERE price < 10;
        CREATE TRIGGER items_audit AFTER DELETE ON items
            BEGIN INSERT INTO audit(what) VALUES ('deleted ' || old.id); END;
        PRAGMA user_version = 42;
        """
    )
    target = int(megabytes * 1024 * 1024)
    i = 0
    while i * 700 < target:
        rows = [
            (
                i + k,
                f"item {rnd.randrange(10**9)} {'x' * rnd.randrange(0, 40)}",
                rnd.random() * 100,
                rnd.randbytes(rnd.randrange(200, 1000)),
            )
            for k in range(2000)
        ]
        conn.executemany("INSERT INTO items VALUES (?, ?, ?, ?)", rows)
        i += 2000
    conn.executemany(
        "INSERT INTO tags VALUES (?, ?)", [(f"tag{k}", rnd.randrange(1000)) for k in range(3000)]
    )
    conn.execute("DELETE FROM items WHERE id % 97 = 0")  # freelist pages and audit rows
    conn.commit()
    conn.close()
    return path


def dump(path: Path) -> list[str]:
    """The SQL dump of ``path`` (stdlib ``sqlite3``'s ``iterdump``: another SQLite build)."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        lines = list(conn.iterdump())
        lines.append(f"-- user_version {conn.execute('PRAGMA user_version').fetchone()[0]}")
        return lines
    finally:
        conn.close()


def integrity(path: Path) -> str:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return "\n".join(r[0] for r in conn.execute("PRAGMA integrity_check"))
    finally:
        conn.close()


def store_keys(store: Store) -> dict[bytes, bytes]:
    """Every key and value of ``store``, read in pages."""
    out: dict[bytes, bytes] = {}
    begin = b""
    while True:

        def page(tr: Transaction, begin: bytes = begin) -> list[tuple[bytes, bytes]]:
            return tr.get_range(begin, b"\xff" * 8, limit=1000, snapshot=True)

        rows = store.transact(page)
        out.update(rows)
        if len(rows) < 1000:
            return out
        begin = rows[-1][0] + b"\x00"


# --------------------------------------------------------------------------- terminals

ANSI = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]")


class Terminal:
    """A ``sqlkv`` process on a pseudo-terminal (stdin, stdout and stderr are the tty)."""

    def __init__(self, args: Sequence[str], *, cwd: Path, env: dict[str, str]) -> None:
        pid, fd = pty.fork()
        if pid == 0:  # the child: become sqlkv
            try:
                os.chdir(cwd)
                os.execve(sys.executable, [*CLI, *args], env)
            finally:
                os._exit(127)
        self.pid, self.fd = pid, fd
        self.output = b""
        self.code: int | None = None

    def expect(self, text: str, timeout: float = 60) -> str:
        """Read until ``text`` appears (colours stripped); returns everything read so far."""
        want = text.encode()
        deadline = time.monotonic() + timeout
        while want not in ANSI.sub(b"", self.output):
            left = deadline - time.monotonic()
            if left <= 0 or not self._read(left):
                raise AssertionError(f"{text!r} not seen; output so far:\n{self.text}")
        return self.text

    def send(self, line: str) -> None:
        os.write(self.fd, line.encode() + b"\n")

    def wait(self, timeout: float = 60) -> int:
        """Read to the end and return the exit status."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self._read(deadline - time.monotonic()):
            pass
        end = time.monotonic() + max(1.0, deadline - time.monotonic())
        while True:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.code = os.waitstatus_to_exitcode(status)
                os.close(self.fd)
                return self.code
            if time.monotonic() > end:
                os.kill(self.pid, 9)
                raise AssertionError(f"sqlkv did not exit; output:\n{self.text}")
            time.sleep(0.05)

    @property
    def text(self) -> str:
        return ANSI.sub(b"", self.output).decode(errors="replace").replace("\r\n", "\n")

    def _read(self, timeout: float) -> bool:
        ready, _, _ = select.select([self.fd], [], [], max(0.0, timeout))
        if not ready:
            return False
        try:
            chunk = os.read(self.fd, 65536)
        except OSError:  # EIO: the child closed the terminal
            return False
        self.output += chunk
        return bool(chunk)

    def close(self) -> None:
        if self.code is None:
            try:
                os.kill(self.pid, 9)
                os.waitpid(self.pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
            os.close(self.fd)
            self.code = -9
