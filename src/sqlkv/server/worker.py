"""One engine server process: what ``sqlkv serve`` runs, alone (``--workers 1``) or as one
of the workers of a supervisor (``supervisor.py``).

``WorkerSpec`` holds everything a process needs (store URL, auth, engine settings, server
settings) and is what the supervisor sends a worker it starts (``WORKER_COMMAND``, the
spec pickled on its stdin, its sockets passed as inherited file descriptors). ``serve``
opens the store, builds the ``Engine`` and runs the ``EngineServer`` until SIGTERM/SIGINT
has drained it. A worker's engine is one more engine
on the shared store, like another node: every fence is kept by the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import pickle
import signal
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from sqlkv.errors import CommandFailed
from sqlkv.server.auth import Auth
from sqlkv.server.config import ServerConfig

if TYPE_CHECKING:
    from sqlkv.cli.serve_config import ServeSettings
    from sqlkv.engine.compaction import CompactionConfig

log = logging.getLogger("sqlkv.server")

PR_SET_PDEATHSIG = 1
# how a supervisor starts a worker (not ``-m``: the pickled spec must find this module)
WORKER_COMMAND = "import sys; from sqlkv.server.worker import main; sys.exit(main())"


@dataclass(frozen=True)
class WorkerSpec:
    url: str
    auth: Auth
    settings: ServeSettings
    config: ServerConfig
    compaction: bool | CompactionConfig = True
    index: int | None = None  # the worker's number under a supervisor; None: alone
    channel_fd: int | None = None  # Unix socket the supervisor passes connections on
    metrics_fd: int | None = None  # listening socket of this worker's /metrics
    parent_pid: int | None = None


def configure_logging(index: int | None) -> None:
    where = "" if index is None else f"[w{index}]"
    logging.basicConfig(
        level=logging.INFO, format=f"%(asctime)s %(levelname)s %(name)s{where}: %(message)s"
    )
    # the engine logs per-operation details at INFO/DEBUG; its "database opened" record
    # uses the reserved LogRecord key "created", which raises at INFO (reported upstream)
    logging.getLogger("sqlkv.engine").setLevel(logging.WARNING)


def serve(
    spec: WorkerSpec,
    *,
    metrics_at: tuple[str, int] | None = None,
    announce: Callable[[int, int | None], None] | None = None,
) -> None:
    """Run one server process until it has drained. ``metrics_at``: serve /metrics there
    (alone); a worker serves them on ``spec.metrics_fd`` for its supervisor to merge.
    ``announce(port, metrics_port)`` is called once the server listens."""
    from prometheus_client import disable_created_metrics

    from sqlkv.engine import Engine
    from sqlkv.server.http import MetricsHttpServer, registry_render
    from sqlkv.server.metrics import ServerMetrics
    from sqlkv.server.server import EngineServer
    from sqlkv.store import open_store

    disable_created_metrics()  # type: ignore[no-untyped-call]  # *_created series: noise
    channel = None if spec.channel_fd is None else socket.socket(fileno=spec.channel_fd)
    store = open_store(spec.url)
    engine = Engine(store, spec.settings.engine, compaction=spec.compaction)
    http: MetricsHttpServer | None = None
    try:
        metrics = ServerMetrics(engine.metrics.registry, store)
        server = EngineServer(engine, spec.auth, spec.config, metrics, channel=channel)
        render = registry_render(engine.metrics.registry)
        if spec.metrics_fd is not None:
            sock = socket.socket(fileno=spec.metrics_fd)
            http = MetricsHttpServer("", 0, render, lambda: server.draining, sock=sock)
        elif metrics_at is not None:
            try:
                http = MetricsHttpServer(*metrics_at, render, lambda: server.draining)
            except OSError as exc:
                raise address_error("--metrics", *metrics_at, exc) from None
        if http is not None:
            http.start()

        async def run() -> None:
            try:
                await server.start()
            except OSError as exc:
                raise address_error("--listen", spec.config.host, spec.config.port, exc) from None
            if announce is not None:
                announce(server.port, http.port if http is not None else None)
            await server.run()

        asyncio.run(run())
        log.info("stopped")
    finally:
        if http is not None:
            http.stop()
        engine.close()
        store.close()


def address_error(flag: str, host: str, port: int, exc: OSError) -> CommandFailed:
    return CommandFailed(
        f"cannot listen on {host}:{port} ({flag}): {exc.strerror or exc}; stop what uses it "
        f"or give another {flag} HOST:PORT"
    )


def _die_with_parent(parent_pid: int | None) -> None:
    """A worker must not outlive its supervisor (a SIGKILLed supervisor cannot stop it):
    ask Linux for SIGKILL when the parent dies, and exit now if it already has."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if parent_pid is not None and os.getppid() != parent_pid:
        os._exit(1)


def main() -> int:
    """The entry point of a worker of ``sqlkv serve --workers N`` (``WORKER_COMMAND``)."""
    spec = pickle.load(sys.stdin.buffer)  # from the supervisor that started this process
    assert isinstance(spec, WorkerSpec)
    _die_with_parent(spec.parent_pid)
    configure_logging(spec.index)
    config = replace(spec.config, name=f"{spec.config.name}/w{spec.index}")
    serve(replace(spec, config=config))
    return 0
