"""``sqlkv serve``: run the storage engine as a network server.

    sqlkv serve --store postgresql://u:pw@db/sqlkv --listen 0.0.0.0:7878 \\
        --tokens-file /etc/sqlkv/tokens.json --metrics 0.0.0.0:9478

Any number of servers may share one store; clients list them all
(``sqlkv://a:7878,b:7878``) and fail over. One server runs ``--workers`` processes (default:
one per CPU; ``server/supervisor.py``, docs/serving.md), each an engine on the shared
store. SIGTERM or SIGINT drains and stops the server.
The token is ``--token``, else ``--tokens-file``, else ``$SQLKV_TOKEN`` (as for the
client); without any, no token is needed: fine on loopback, and warned about anywhere
else. Prefer ``--tokens-file`` or the environment to ``--token``, which other local users
can read in the process list. Engine settings: ``--config FILE`` and ``--set``
(``serve_config.py``).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from sqlkv.config import redact_url
from sqlkv.errors import ConfigError, UsageError

if TYPE_CHECKING:
    from sqlkv.server.worker import WorkerSpec

MiB = 1024 * 1024


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "serve",
        help="run the storage engine as a network server",
        description="Serve the engine protocol on TCP. Stops gracefully on SIGTERM/SIGINT.",
        conflict_handler="resolve",  # its --token is the server's, not the client's
    )
    p.add_argument("--listen", default="127.0.0.1:7878", metavar="HOST:PORT")
    auth = p.add_mutually_exclusive_group()
    auth.add_argument(
        "--token", help="one token for every database (default: $SQLKV_TOKEN, if set)"
    )
    auth.add_argument("--tokens-file", metavar="FILE", help='JSON {"token": ["db", ...] or "*"}')
    p.add_argument("--metrics", metavar="HOST:PORT", help="serve /metrics and /healthz here")
    p.add_argument(
        "--metrics-per-database",
        action="store_true",
        help="label compaction gauges by database (one series per database: unbounded)",
    )
    p.add_argument(
        "--config", type=Path, metavar="FILE", help="engine settings, TOML [engine] [compaction]"
    )
    p.add_argument(
        "--set",
        dest="settings",
        action="append",
        default=[],
        metavar="SECTION.NAME=VALUE",
        help="one engine setting, like engine.max_delta_bytes=16MiB (wins over --config)",
    )
    p.add_argument(
        "--workers",
        default="auto",
        metavar="N",
        help="server processes sharing the port (default auto: one per CPU, 1 for memory://)",
    )
    p.add_argument(
        "--threads", type=int, default=16, help="engine calls at once per worker (default 16)"
    )
    p.add_argument(
        "--group-commit",
        type=int,
        default=32,
        metavar="N",
        help="most COMMITs (of distinct databases) landed in one store transaction "
        "(default 32; 1: each alone)",
    )
    p.add_argument("--max-connections", type=int, default=1024)
    p.add_argument("--max-frame-mib", type=int, default=64, help="largest frame (default 64)")
    p.add_argument(
        "--drain-timeout", type=float, default=20.0, help="seconds to finish running requests"
    )
    p.add_argument("--name", help="node name shown to clients (default host:pid)")
    p.add_argument(
        "--no-compaction",
        action="store_true",
        help="no background compaction (tests and debugging only)",
    )
    # tests only: hold every engine request this long, so that shutdown finds some in flight
    p.add_argument("--test-request-delay", type=float, default=0.0, help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_serve)


def parse_hostport(text: str, what: str) -> tuple[str, int]:
    host, sep, port_text = text.rpartition(":")
    host = host.strip("[]")
    try:
        port = int(port_text)
    except ValueError:
        port = -1
    if not sep or not host or not 0 <= port <= 65535:
        raise ConfigError(f"{what} {text!r} must be HOST:PORT, like 127.0.0.1:7878")
    return host, port


def _is_loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def cmd_serve(args: argparse.Namespace) -> int:
    import logging

    from sqlkv.cli.serve_config import load_settings
    from sqlkv.server.auth import Auth
    from sqlkv.server.config import ServerConfig
    from sqlkv.server.worker import WorkerSpec, configure_logging
    from sqlkv.store.url import parse_store_url, resolve_store_url

    if getattr(args, "engine_url", None):
        raise UsageError(
            "sqlkv serve runs an engine on a store: give --store URL; --engine names a "
            "server for clients to use"
        )
    host, port = parse_hostport(args.listen, "--listen")
    metrics_at = parse_hostport(args.metrics, "--metrics") if args.metrics else None
    settings = load_settings(args.config, args.settings, per_database=args.metrics_per_database)
    url = resolve_store_url(args.store)
    parse_store_url(url)
    workers = resolve_workers(args.workers, url)
    token = args.token if args.token is not None else os.environ.get("SQLKV_TOKEN") or None
    if args.tokens_file:
        auth = Auth.from_file(args.tokens_file)
    elif token is not None:
        auth = Auth.shared(token)
    else:
        auth = Auth.open()
    config = ServerConfig(
        host=host,
        port=port,
        threads=args.threads,
        group_commit=args.group_commit,
        max_connections=args.max_connections,
        max_frame=args.max_frame_mib * MiB,
        drain_timeout_s=args.drain_timeout,
        request_delay_s=args.test_request_delay,
        **({"name": args.name} if args.name else {}),
    )
    config.validate()
    configure_logging(None)
    log = logging.getLogger("sqlkv.server")
    if not auth.required and not _is_loopback(host):
        log.warning(
            "listening on %s without a token: anyone who reaches it has every database", host
        )
    compaction = False if args.no_compaction else settings.compaction
    spec = WorkerSpec(url, auth, settings, config, compaction)
    if workers == 1:
        _serve_alone(spec, metrics_at)
    else:
        _supervise(spec, workers, metrics_at)
    return 0


def resolve_workers(text: str, url: str) -> int:
    """``--workers``: a number, or ``auto``: one per CPU this process may use; 1 for a
    memory store, which lives in one process, and for the embedded store, one SQLite file
    that every process writes under one lock (a second writer process costs each commit
    more CPU than it adds: docs/serving.md, "How the server uses the cores")."""
    from sqlkv.store.url import parse_store_url

    memory = url.startswith("memory:")
    if text == "auto":
        if memory or parse_store_url(url).kind == "embedded":
            return 1
        affinity = getattr(os, "sched_getaffinity", None)  # Linux: the CPUs we may use
        return max(1, len(affinity(0)) if affinity else os.cpu_count() or 1)
    try:
        n = int(text)
    except ValueError:
        n = 0
    if not 1 <= n <= 256:
        raise ConfigError(f"--workers must be auto or a number within 1..256, got {text!r}")
    if memory and n > 1:
        raise ConfigError(
            f"--workers {n} needs a store several processes can share; memory:// lives in "
            "one process: use --workers 1, or a store directory, lmdb://, postgresql:// "
            "or etcd://"
        )
    return n


def _announce(spec: WorkerSpec, workers: int, port: int, metrics: str | None) -> None:
    from sqlkv.server.protocol import PROTOCOL_VERSION

    extra = f", metrics on {metrics}" if metrics else ""
    processes = f", {workers} worker processes" if workers > 1 else ""
    print(
        f"sqlkv serve: node {spec.config.name} listening on {spec.config.host}:{port} "
        f"(store {redact_url(spec.url)}, protocol v{PROTOCOL_VERSION}{processes}{extra})",
        file=sys.stderr,
        flush=True,
    )


def _serve_alone(spec: WorkerSpec, metrics_at: tuple[str, int] | None) -> None:
    from sqlkv.server.worker import serve

    def announce(port: int, metrics_port: int | None) -> None:
        at = f"{metrics_at[0]}:{metrics_port}" if metrics_at and metrics_port else None
        _announce(spec, 1, port, at)

    serve(spec, metrics_at=metrics_at, announce=announce)


def _supervise(spec: WorkerSpec, workers: int, metrics_at: tuple[str, int] | None) -> None:
    import logging

    from sqlkv.server.supervisor import Supervisor

    supervisor = Supervisor(spec, workers, metrics_at=metrics_at)
    try:
        supervisor.start()
        at = None
        if metrics_at and supervisor.http is not None:
            at = f"{metrics_at[0]}:{supervisor.http.port}"
        _announce(spec, workers, supervisor.port, at)
        supervisor.run()
    finally:
        supervisor.close()
    logging.getLogger("sqlkv.server").info("stopped")
