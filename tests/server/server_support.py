"""Helpers of the server tests: real ``sqlkv serve`` processes on 127.0.0.1, raw frames,
and metrics scraped over HTTP. Fixtures that use them are in ``conftest.py``."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from sqlkv.server.protocol import LENGTH, Health, Hello, MsgType, encode_request, split_header

HOST = "127.0.0.1"
READY_TIMEOUT_S = 30.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


@dataclass
class ServerProc:
    """One server process. ``stop()`` sends SIGTERM, ``kill()`` SIGKILL."""

    proc: subprocess.Popen[bytes]
    port: int
    metrics_port: int
    log: Path
    args: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"sqlkv://{HOST}:{self.port}"

    @property
    def node(self) -> str:
        return f"{HOST}:{self.port}"

    def alive(self) -> bool:
        return self.proc.poll() is None

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def healthy(self) -> bool:
        try:
            with socket.create_connection((HOST, self.port), timeout=2) as s:
                s.sendall(encode_request(1, Health()))
                return read_frame(s) is not None
        except OSError:
            return False

    def wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.output()}")
            if self.healthy():
                return
            time.sleep(0.05)
        raise RuntimeError(f"server not ready after {READY_TIMEOUT_S}s:\n{self.output()}")

    def metrics(self, query: str = "") -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        url = f"http://{HOST}:{self.metrics_port}/metrics" + (f"?{query}" if query else "")
        with urllib.request.urlopen(url, timeout=10) as resp:
            text = resp.read().decode()
        out: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                out[(s.name, tuple(sorted(s.labels.items())))] = s.value
        return out

    def metric(self, name: str, **labels: str) -> float:
        return self.metrics().get((name, tuple(sorted(labels.items()))), 0.0)

    def metric_of(self, query: str, name: str, **labels: str) -> float:
        """One series of ``/metrics?QUERY`` (``worker=I``: that worker's own)."""
        return self.metrics(query).get((name, tuple(sorted(labels.items()))), 0.0)

    def workers(self) -> list[int]:
        """The pids of its worker processes (none when it runs as one process)."""
        pid = self.proc.pid
        try:
            return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
        except OSError:
            return []

    def signal_all(self, sig: int) -> None:
        """``sig`` to the server and its workers (it runs in a session of its own)."""
        os.killpg(self.proc.pid, sig)

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        if self.alive():
            self.proc.kill()
        self.proc.wait(timeout=30)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)  # workers die with it; be sure


ServerFactory = Callable[..., "ServerProc"]


def engine_url(*servers: ServerProc) -> str:
    """``sqlkv://`` URL listing ``servers`` in order (failover follows it)."""
    return "sqlkv://" + ",".join(s.node for s in servers)


def start_server(
    where: Path,
    store: str,
    *,
    token: str | None = None,
    tokens_file: Path | None = None,
    extra: tuple[str, ...] = (),
    name: str = "node",
    env: dict[str, str] | None = None,
) -> ServerProc:
    port, metrics_port = free_port(), free_port()
    while metrics_port == port:  # two probes in a row may get the same free port
        metrics_port = free_port()
    args = [
        sys.executable,
        "-m",
        "sqlkv.server",
        "--store",
        store,
        "--listen",
        f"{HOST}:{port}",
        "--metrics",
        f"{HOST}:{metrics_port}",
        "--name",
        name,
        *extra,
    ]
    if token is not None:
        args += ["--token", token]
    if tokens_file is not None:
        args += ["--tokens-file", str(tokens_file)]
    log = where / f"{name}-{port}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            args,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=where,
            env=env,
            start_new_session=True,  # its own process group: signal_all reaches its workers
        )
    server = ServerProc(proc, port, metrics_port, log, args)
    try:
        server.wait_ready()
    except BaseException:
        server.kill()
        raise
    return server


# --------------------------------------------------------------------------- raw frames


def read_frame(sock: socket.socket) -> tuple[int, int, bytes] | None:
    """(type, request id, body) of the next frame, or None when the peer closed."""
    prefix = recv_exact(sock, LENGTH.size)
    if prefix is None:
        return None
    (length,) = LENGTH.unpack(prefix)
    payload = recv_exact(sock, length)
    if payload is None:
        return None
    msg_type, rid, body = split_header(payload)
    return msg_type, rid, bytes(body)


def recv_exact(sock: socket.socket, n: int) -> bytes | None:
    buf = bytearray()
    while len(buf) < n:
        try:
            chunk = sock.recv(n - len(buf))
        except ConnectionResetError:
            return None
        if not chunk:
            return None
        buf += chunk
    return bytes(buf)


def hello_frame(token: str = "", *, versions: tuple[int, int] = (1, 1)) -> bytes:
    return encode_request(
        1, Hello(token.encode(), "test", min_version=versions[0], max_version=versions[1])
    )


def is_error(frame: tuple[int, int, bytes] | None) -> bool:
    return frame is not None and frame[0] == MsgType.ERROR
