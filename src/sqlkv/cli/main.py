"""``sqlkv`` entry point: one function per subcommand, errors as one line on stderr.

Exit codes: 0 success, 1 failure, 2 usage error (a wrong command line or setting).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from sqlkv import __version__
from sqlkv.errors import ConfigError, SqlkvError

EPILOG = """\
configuration (flag > environment > default, the same for sqlkv.connect); the flags
work before or after the command and its arguments:
  --store URL    SQLKV_STORE    default ./sqlkv-data (the embedded store)
  --engine URL   SQLKV_ENGINE   sqlkv://host:port[,host:port...] (a 'sqlkv serve' server)
  --token TOKEN  SQLKV_TOKEN    token for the engine server
  Store URLs: a directory path or file:///abs/dir (embedded), lmdb:///abs/dir (LMDB),
  memory:// or memory://NAME (in process, gone at exit),
  postgresql://user:password@host:port/dbname. With an engine URL the server's store is
  used; an explicit --store wins over SQLKV_ENGINE. list, compact and delete work on the
  store itself.
  Database names: 1 to 255 bytes of printable characters, without '/', '\\', control
  characters or spaces at either end, and not '.' or '..'.

examples:
  sqlkv import orders.db orders        sqlkv export orders copy.db
  sqlkv shell --create orders          sqlkv inspect orders --json
  sqlkv shell orders --engine sqlkv://db1:7878 --token s3cr3t

exit status: 0 success, 1 failure, 2 usage error, 141 output pipe closed.
"""


class UsageExit(Exception):
    """argparse found a usage error (already printed as one line)."""


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line and return exit code 2 from ``main``."""

    def error(self, message: str) -> NoReturn:
        print(f"{self.prog}: error: {message} (see '{self.prog} --help')", file=sys.stderr)
        raise UsageExit(message)


class CommandParser(Parser):
    """The parser of one subcommand: takes the global options too (``sqlkv shell db
    --store X``), and options anywhere among the positional arguments (``sqlkv shell db
    --cache-size 8MiB 'SELECT 1'``), as argparse's intermixed parsing does."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._intermixing = False
        add_global_options(self, default=argparse.SUPPRESS)

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        if self._intermixing:  # the intermixed parse calls back in, twice
            return super().parse_known_args(args, namespace)
        self._intermixing = True
        try:
            return self.parse_known_intermixed_args(args, namespace)
        finally:
            self._intermixing = False


def add_global_options(parser: argparse.ArgumentParser, default: Any = None) -> None:
    """``--store``, ``--engine`` and ``--token``: on ``sqlkv`` itself (``default`` None)
    and on every subcommand (``default`` SUPPRESS, so that a flag given before the
    command is not reset after it)."""
    parser.add_argument(
        "--store",
        metavar="URL",
        default=default,
        help="store URL (default: $SQLKV_STORE or ./sqlkv-data)",
    )
    parser.add_argument(
        "--engine",
        dest="engine_url",
        metavar="URL",
        default=default,
        help="engine server URL, sqlkv://host:port[,...] (default: $SQLKV_ENGINE)",
    )
    parser.add_argument(
        "--token",
        dest="client_token",
        metavar="TOKEN",
        default=default,
        help="token for the engine server (default: $SQLKV_TOKEN)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="sqlkv",
        description="SQLite databases whose durable pages live in a transactional KV store.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"sqlkv {__version__}")
    add_global_options(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=CommandParser)
    from sqlkv.cli import commands

    commands.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one ``sqlkv`` command line; returns the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except UsageExit:
        return 2
    except SystemExit as exc:  # --help, --version
        return exc.code if isinstance(exc.code, int) else 0
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    from sqlkv.errors import UsageError

    try:
        return int(args.func(args) or 0)
    except (ConfigError, UsageError) as exc:
        print(f"sqlkv: error: {exc}", file=sys.stderr)
        return 2
    except SqlkvError as exc:
        print(f"sqlkv: error: {_one_line(exc)}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # The reader went away (``sqlkv list | head``): stop quietly, as Unix tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"sqlkv: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("sqlkv: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        import apsw

        if isinstance(exc, apsw.Error):  # SQLite's own errors (the shell prints its own)
            print(f"sqlkv: error: {_one_line(exc)}", file=sys.stderr)
            return 1
        raise


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def entry() -> None:
    sys.exit(main())


if __name__ == "__main__":
    entry()
