"""Time travel on the command line: ``sqlkv fork``, ``restore``, ``checkpoint``, ``history``.

    sqlkv fork SRC DST [--at TXID|TIME|LABEL]    # a new database from a state of SRC
    sqlkv restore NAME --to TXID|TIME|LABEL      # that state becomes the newest commit
    sqlkv checkpoint NAME LABEL                  # name the current txid
    sqlkv history NAME [--json] [--limit N]      # txids, commit times, sizes, labels

``fork`` and ``restore`` run the engine in this process on the store itself (``--store``):
pages go from the store to the engine and back, never through a SQLite client. A state is
named by a txid (digits), a time (ISO 8601, e.g. ``2026-12-02T09:30:00Z``; without a zone
it is local time: the newest commit at or before it) or a label. docs/fork-restore.md.
"""

from __future__ import annotations

import argparse
import time
from datetime import datetime

from sqlkv.cli.common import database_missing, database_name, human_bytes, store_config
from sqlkv.cli.progress import Progress


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "fork",
        help="create a new database from the current (or a past) state of another",
        description="Create database DST holding the state of SRC (its newest commit, or "
        "--at one still retained), copied inside the engine in bounded store transactions. "
        "DST must not exist; until the copy completes it does not (a crash leaves nothing "
        "visible, and running the command again starts over). DST inherits SRC's quota.",
    )
    p.add_argument("src", metavar="SRC", type=database_name)
    p.add_argument("dst", metavar="DST", type=database_name)
    p.add_argument(
        "--at",
        metavar="TXID|TIME|LABEL",
        type=parse_state,
        help="the state of SRC to copy (default: its newest commit)",
    )
    progress_flag(p)
    p.set_defaults(func=cmd_fork)


def progress_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="show a progress bar on stderr (default: when stderr is a terminal)",
    )


def parse_state(text: str) -> int | datetime | str:
    """A state of a database as the user names it: txid, time or label."""
    text = text.strip()
    if not text:
        raise argparse.ArgumentTypeError("give a txid, a time (ISO 8601) or a label")
    if text.isdigit():
        return int(text)
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return text
    return when if when.tzinfo is not None else when.astimezone()


def cmd_fork(args: argparse.Namespace) -> int:
    """Copy SRC's state into the new database DST."""
    from sqlkv.engine import Engine
    from sqlkv.errors import DatabaseNotFound

    cfg = store_config(args, "fork")
    started = time.perf_counter()
    with cfg.open_store() as store:
        engine = Engine(store)
        with Progress(f"fork {args.src} -> {args.dst}", 0, enabled=args.progress) as bar:

            def progress(done: int, total: int) -> None:
                if bar.total != total:
                    bar.set_total(total)
                bar.done = done

            try:
                head = engine.fork(args.src, args.dst, args.at, progress=progress)
            except DatabaseNotFound as exc:
                if exc.name != args.src:
                    raise
                raise database_missing(args.src, cfg) from None
    print(
        f"forked {args.src!r} at txid {head.head_txid} into {args.dst!r} "
        f"({time.perf_counter() - started:.2f} s): {head.db_size_pages} pages "
        f"({human_bytes(head.db_size_pages * head.page_size)}) in {head.shard_count} shards, "
        f"{human_bytes(head.storage_used)} stored"
    )
    return 0
