"""Time travel on the command line: ``sqlkv fork``, ``restore``, ``checkpoint``, ``history``.

    sqlkv fork SRC DST [--at TXID|TIME|LABEL]    # a new database from a state of SRC
    sqlkv restore NAME --to TXID|TIME|LABEL      # that state becomes the newest commit
    sqlkv checkpoint NAME LABEL                  # name the current txid
    sqlkv history NAME [--json] [--limit N]      # txids, commit times, sizes, labels

``fork`` and ``restore`` run the engine in this process on the store itself (``--store``):
pages go from the store to the engine and back, never through a SQLite client. A state is
named by a txid (digits), a time (ISO 8601, e.g. ``2026-12-02T09:30:00Z``; without a zone
it is local time: the newest commit at or before it) or a label (``label:NAME`` for a name
that looks like a txid or a time, as in the SQLAlchemy URL's ``?at=``). docs/fork-restore.md.
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import UTC, datetime
from typing import Any

from sqlkv.cli.common import (
    check_store_exists,
    client_config,
    database_missing,
    database_name,
    human_bytes,
    store_config,
)
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

    p = sub.add_parser(
        "restore",
        help="make a past state of a database its newest state (a new commit)",
        description="Make the state of NAME at --to its newest state, as one new commit "
        "(atomic). Takes the database over: its current owner is fenced out and must "
        "reopen. The state before the restore stays in the history (within the retention "
        "window): restore to the txid printed as 'before' to undo it.",
    )
    p.add_argument("name", metavar="NAME", type=database_name)
    p.add_argument(
        "--to",
        metavar="TXID|TIME|LABEL",
        type=parse_state,
        required=True,
        help="the state to restore",
    )
    progress_flag(p)
    p.set_defaults(func=cmd_restore)

    p = sub.add_parser(
        "checkpoint",
        help="name the current state of a database (a restore point)",
        description="Give the newest committed txid of NAME the label LABEL; restore, "
        "fork --at and connect(at=) accept it as long as the state is retained.",
    )
    p.add_argument("name", metavar="NAME", type=database_name)
    p.add_argument("label", metavar="LABEL")
    p.set_defaults(func=cmd_checkpoint)

    p = sub.add_parser(
        "history",
        help="list a database's retained commits: txids, times, sizes, labels",
        description="List the retained commits of NAME, newest first: txid, commit time "
        "(UTC), size and labels.",
    )
    p.add_argument("name", metavar="NAME", type=database_name)
    p.add_argument("--json", action="store_true", help="print a JSON array")
    p.add_argument("--limit", type=int, metavar="N", help="only the N newest commits")
    p.set_defaults(func=cmd_history)


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
    if text.startswith("label:"):
        return text[len("label:") :]
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
            try:
                head = engine.fork(args.src, args.dst, args.at, progress=bar.report)
            except DatabaseNotFound as exc:
                if exc.name != args.src:
                    raise
                raise database_missing(args.src, cfg) from None
    print(
        f"forked {args.src!r} at txid {head.head_txid} into {args.dst!r} "
        f"({time.perf_counter() - started:.2f} s): {head.db_size_pages} pages "
        f"({human_bytes(head.db_size_pages * head.page_size)}) in {head.shard_count} shard(s), "
        f"{human_bytes(head.storage_used)} stored"
    )
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    """Make NAME's state at --to its newest state."""
    from sqlkv.engine.restore import restore_database
    from sqlkv.errors import DatabaseNotFound

    cfg = client_config(args)
    check_store_exists(cfg)
    started = time.perf_counter()
    with (
        cfg.open_engine() as opened,
        Progress(f"restore {args.name}", 0, enabled=args.progress) as bar,
    ):
        try:
            out = restore_database(opened.engine, args.name, args.to, bar.report)
        except DatabaseNotFound:
            raise database_missing(args.name, cfg) from None
    print(
        f"restored {args.name!r} to txid {out.target_txid} as txid {out.head.head_txid} "
        f"({time.perf_counter() - started:.2f} s): {out.pages_written} pages written, "
        f"{out.db_size_pages} pages; before the restore: txid {out.before_txid} "
        f"(undo: sqlkv restore {args.name} --to {out.before_txid})"
    )
    return 0


def cmd_checkpoint(args: argparse.Namespace) -> int:
    """Label NAME's newest committed txid."""
    from sqlkv.errors import DatabaseNotFound

    cfg = client_config(args)
    check_store_exists(cfg)
    with cfg.open_engine() as opened:
        try:
            txid = opened.engine.label(args.name, args.label)
        except DatabaseNotFound:
            raise database_missing(args.name, cfg) from None
    print(f"checkpoint {args.label!r} of {args.name!r} is txid {txid}")
    return 0


def cmd_history(args: argparse.Namespace) -> int:
    """List NAME's retained commits."""
    from sqlkv.errors import DatabaseNotFound, UsageError

    if args.limit is not None and args.limit < 1:
        raise UsageError(f"--limit must be at least 1, got {args.limit}")
    cfg = client_config(args)
    check_store_exists(cfg)
    with cfg.open_engine() as opened:
        try:
            entries = opened.engine.history(args.name, limit=args.limit)
        except DatabaseNotFound:
            raise database_missing(args.name, cfg) from None
    rows = [_entry(e) for e in entries]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'TXID':>10}  {'COMMITTED (UTC)':<23}  {'SIZE':>10}  LABELS")
    for r in rows:
        size = human_bytes(r["db_size_pages"] * 4096)
        line = f"{r['txid']:>10}  {r['committed']:<23}  {size:>10}  {', '.join(r['labels'])}"
        print(line.rstrip())
    return 0


def _entry(e: Any) -> dict[str, Any]:
    when = datetime.fromtimestamp(e.committed_ms / 1000, UTC)
    return {
        "txid": e.txid,
        "committed_ms": e.committed_ms,
        "committed": when.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "db_size_pages": e.db_size_pages,
        "labels": list(e.labels),
    }
