"""What the subcommands share: the resolved configuration, failures, sizes, confirmation.

A subcommand signals a failure by raising ``CommandFailed`` (exit 1) or ``UsageError``
(exit 2); ``main`` prints the message as one line on stderr. Messages say what happened
and what to do.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from sqlkv.config import ClientConfig
from sqlkv.errors import CommandFailed, InvalidDatabaseName, UsageError
from sqlkv.keyspace import check_database_name

if TYPE_CHECKING:
    from sqlkv.store import Store


def client_config(args: argparse.Namespace, **overrides: Any) -> ClientConfig:
    """The client configuration of this run: global flags > environment > defaults."""
    return ClientConfig.from_env(
        store=getattr(args, "store", None),
        engine=getattr(args, "engine_url", None),
        token=getattr(args, "client_token", None),
        **overrides,
    )


def database_name(text: str) -> str:
    """argparse ``type`` of a NAME argument: the database-name rule, as a usage error."""
    try:
        return check_database_name(text)
    except InvalidDatabaseName as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def require_store(cfg: ClientConfig, command: str) -> None:
    """Refuse a store-level command (list, delete, ...) when an engine URL is configured."""
    if cfg.engine is not None:
        raise UsageError(
            f"'sqlkv {command}' works on the store itself and cannot go through the engine "
            f"server {cfg.engine}; give --store URL (the store that server uses)"
        )


def local_store_path(url: str) -> Path | None:
    """The directory of a local store URL (embedded or LMDB), None for other stores;
    ``ConfigError`` (with the hint) for a malformed URL."""
    from sqlkv.store.url import parse_store_url

    return parse_store_url(url).path


def check_store_exists(cfg: ClientConfig) -> None:
    """Fail when a command that only reads would have to create a local store directory."""
    if cfg.engine is not None:
        return
    path = local_store_path(cfg.store)
    if path is not None and not path.is_dir():
        raise CommandFailed(
            f"store directory {str(path)!r} does not exist; give --store URL or set "
            "SQLKV_STORE to the store holding your databases"
        )


def store_config(args: argparse.Namespace, command: str) -> ClientConfig:
    """The configuration of a command that works on the store itself (``list``,
    ``compact``, ``delete``): refuses an engine URL, then a local store that does not exist."""
    cfg = client_config(args)
    require_store(cfg, command)
    check_store_exists(cfg)
    return cfg


def v1_exists(store: Store, name: str) -> bool:
    """True if v1 database ``name`` has its main file in ``store`` (a snapshot read)."""
    from sqlkv.vfs.v1.keys import FileKeys

    meta = FileKeys(name, "db").meta
    return store.transact(lambda tr: tr.get(meta, snapshot=True)) is not None


def database_missing(name: str, cfg: ClientConfig) -> CommandFailed:
    return CommandFailed(
        f"database {name!r} does not exist in {cfg.target}; 'sqlkv list' shows the databases"
    )


def human_bytes(n: float) -> str:
    """``20.0 MiB``-style size."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def confirm(question: str, *, assume_yes: bool, what: str, stdin: TextIO | None = None) -> bool:
    """Ask ``question`` on the terminal; True for yes. Without a terminal (and without
    ``--yes``) refuse with ``UsageError`` rather than guess."""
    if assume_yes:
        return True
    stdin = stdin or sys.stdin
    if not (stdin.isatty() and sys.stderr.isatty()):
        raise UsageError(
            f"refusing to {what} without confirmation: stdin is not a terminal; "
            "pass --yes to confirm"
        )
    print(f"{question} [y/N] ", end="", file=sys.stderr, flush=True)
    answer = stdin.readline().strip().lower()
    return answer in ("y", "yes")
