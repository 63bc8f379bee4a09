"""``sqlkv`` entry point: one function per subcommand, errors as one line on stderr.

Exit codes: 0 success, 1 failure, 2 usage error.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from sqlkv import __version__
from sqlkv.errors import SqlkvError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sqlkv",
        description="SQLite databases whose durable pages live in a transactional KV store.",
        epilog="Stores are URLs: memory://, file:///dir (or a bare path), "
        "postgresql://user:pw@host:port/db. Default: $SQLKV_STORE, else ./sqlkv-data.",
    )
    parser.add_argument("--version", action="version", version=f"sqlkv {__version__}")
    parser.add_argument("--store", help="store URL (default: $SQLKV_STORE or ./sqlkv-data)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    from sqlkv.cli import commands

    commands.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.func(args) or 0)
    except SqlkvError as exc:
        print(f"sqlkv: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("sqlkv: interrupted", file=sys.stderr)
        return 130


def entry() -> None:
    sys.exit(main())
