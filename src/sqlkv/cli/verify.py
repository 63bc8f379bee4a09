"""``sqlkv verify NAME [--json]``: check every key of a v2 database from one snapshot.

Prints each problem on its own line (``KIND location: what is wrong``) and a summary; exit
status 1 if there is any problem, 0 if none. Read-only: it takes nothing over and writes
nothing, so it can run next to the database's clients. Works on the store itself.
"""

from __future__ import annotations

import argparse
import json

from sqlkv.cli.common import database_missing, database_name, human_bytes, store_config


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "verify",
        help="check every stored value and invariant of a database; exit 1 on a problem",
        description="Check every key of v2 database NAME from one snapshot: each value's "
        "checksum, each LTX blob, that every PIDX row names a delta part holding its page, "
        "shard and delta counts, head invariants, and that storage used equals the bytes "
        "stored. Prints one line per problem; exit status 1 if there is any.",
    )
    p.add_argument("name", metavar="NAME", type=database_name)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_verify)


def cmd_verify(args: argparse.Namespace) -> int:
    """Verify NAME; 0 when no problem was found, 1 otherwise."""
    from sqlkv.engine import Engine
    from sqlkv.errors import DatabaseNotFound

    cfg = store_config(args, "verify")
    with cfg.open_store() as store:
        try:
            report = Engine(store).verify(args.name)
        except DatabaseNotFound:
            raise database_missing(args.name, cfg) from None
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
        return 0 if report.ok else 1
    for problem in report.problems:
        print(problem)
    summary = (
        f"{report.keys} keys ({human_bytes(report.bytes)}): {report.pidx_rows} PIDX rows, "
        f"{report.delta_parts} delta parts, {report.shards} shards, "
        f"{report.pages_checked} pages checked"
    )
    if report.ok:
        print(f"verified {args.name!r}: no problem in {summary}")
        return 0
    n = len(report.problems)
    print(f"verify {args.name!r}: {n} problem{'s' if n > 1 else ''} in {summary}")
    return 1
