"""``sqlkv shell NAME``: an interactive SQL shell on a sqlkv database (apsw's shell).

    sqlkv shell orders                       # interactive; .help, .quit or EOF to leave
    sqlkv shell orders "SELECT count(*) FROM t"   # run SQL / dot-commands, then exit
    echo "SELECT 1;" | sqlkv shell orders    # read them from stdin
    sqlkv shell --create notes               # a new database

The shell opens existing databases: a missing one is created with ``--create``, or after
a yes on a terminal; otherwise it is an error (a typo must not create a database).
Opening takes the database over: a connection that had it is fenced out. If another client
takes it over while the shell runs, the shell prints one line and exits with status 1.
Without a terminal, or with SQL on the command line, the exit status is 1 if any
statement failed. A reader that goes away (``sqlkv shell db .dump | head``) ends the shell
quietly with status 141, as for every command.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator
from typing import Any

from sqlkv.cli.common import client_config, confirm, database_name, v1_exists
from sqlkv.config import FORMATS, ClientConfig
from sqlkv.errors import CommandFailed, ConnectionFenced


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "shell",
        help="interactive SQL shell on a database",
        description="An interactive SQL shell (apsw's) on database NAME. A missing database "
        "is created with --create (or after a yes on a terminal). Opening takes the database "
        "over from any other client.",
    )
    p.add_argument("name", metavar="NAME", type=database_name)
    p.add_argument(
        "sql",
        nargs="*",
        metavar="SQL",
        help="SQL statements or dot-commands to run instead of the interactive loop",
    )
    p.add_argument("--format", choices=FORMATS, help="database format (default v2)")
    p.add_argument("--cache-size", metavar="SIZE", help="page cache, like 64MiB or '2000 pages'")
    p.add_argument("--create", action="store_true", help="create NAME if it does not exist")
    p.set_defaults(func=cmd_shell)


class Fenced(SystemExit):
    """Leaves the shell's command loop: the connection was fenced out."""


def make_shell(conn: Any, name: str, target: str, **io: Any) -> Any:
    """An apsw shell bound to ``conn`` that stops at a fencing error (see module doc)."""
    import apsw.shell

    class SqlkvShell(apsw.shell.Shell):
        failed = False
        intro = ""

        def handle_exception(self) -> None:
            exc = sys.exc_info()[1]
            if isinstance(exc, BrokenPipeError):
                raise exc  # the reader went away: main() ends quietly with status 141
            if _fenced(exc):
                print(f"sqlkv: error: database {name!r}: {exc}", file=self.stderr, flush=True)
                raise Fenced(1)
            if not isinstance(exc, SystemExit | KeyboardInterrupt):
                self.failed = True
            super().handle_exception()  # type: ignore[no-untyped-call]

        def command_open(self, cmd: list[str]) -> None:
            """open: Not available: this shell is bound to one sqlkv database

            Start another 'sqlkv shell NAME' for another database.
            """
            raise self.Error(
                f".open is not available: this shell is bound to sqlkv database {name!r}; "
                "start another 'sqlkv shell' for another database"
            )

    shell = SqlkvShell(db=conn, **io)
    shell.prompt = "sqlkv> "
    shell.history_file = "~/.sqlkv_history"
    shell.intro = (
        f"sqlkv shell on database {name!r} in {target} (SQLite {_sqlite_version()}).\n"
        'Enter ".help" for instructions, ".quit" or end of input to leave.\n'
    )
    return shell


def _sqlite_version() -> str:
    import apsw

    return str(apsw.sqlite_lib_version())


def _fenced(exc: BaseException | None) -> bool:
    """True if ``exc`` (or what caused it) says the connection was fenced out."""
    seen = 0
    while exc is not None and seen < 8:
        if isinstance(exc, ConnectionFenced):
            return True
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return False


@contextlib.contextmanager
def open_connection(cfg: ClientConfig, name: str) -> Iterator[Any]:
    """A ``sqlkv.connect`` connection to ``name`` as ``cfg`` says (closed on exit)."""
    import sqlkv

    conn: Any
    if cfg.engine is not None:
        conn = sqlkv.connect(name, engine=cfg.engine, token=cfg.token, cache_size=cfg.cache_bytes)
    else:
        conn = sqlkv.connect(name, cfg.store, cache_size=cfg.cache_bytes, format=cfg.format)
    try:
        yield conn
    finally:
        conn.close()


def database_exists(cfg: ClientConfig, name: str) -> bool:
    """True if ``name`` exists (in ``cfg.format``), without creating or taking it over."""
    if cfg.format == "v1":
        with cfg.open_store() as store:
            return v1_exists(store, name)
    from sqlkv.cli.importer import database_exists as engine_has

    with cfg.open_engine() as opened:
        return engine_has(opened.engine, name)


def check_creation(cfg: ClientConfig, name: str, create: bool) -> bool:
    """True if the shell creates ``name``; raises if it is missing and must not be."""
    if database_exists(cfg, name):
        return False
    question = f"database {name!r} does not exist in {cfg.target}; create it?"
    if create or (
        sys.stdin.isatty()
        and sys.stderr.isatty()
        and confirm(question, assume_yes=False, what="create a database")
    ):
        return True
    if sys.stdin.isatty() and sys.stderr.isatty():
        raise CommandFailed(f"database {name!r} not created")
    raise CommandFailed(
        f"database {name!r} does not exist in {cfg.target}; pass --create to create it "
        "('sqlkv list' shows the databases)"
    )


def cmd_shell(args: argparse.Namespace) -> int:
    """Run the shell on NAME; 0 on a clean exit, 1 when fenced or a statement failed."""
    cfg = client_config(args, format=args.format, cache_size=args.cache_size)
    created = check_creation(cfg, args.name, args.create)
    with open_connection(cfg, args.name) as conn:
        if created:
            print(f"sqlkv: database {args.name!r} is new (empty) in {cfg.target}", file=sys.stderr)
        shell = make_shell(conn, args.name, cfg.target)
        try:
            if args.sql:
                for line in args.sql:
                    try:
                        shell.process_complete_line(line)
                    except Exception:
                        shell.handle_exception()  # prints it; raises Fenced when fenced
                return 1 if shell.failed else 0
            shell.interactive = shell._using_a_terminal()
            shell.cmdloop(intro=shell.intro)
        except Fenced:
            return 1
        except SystemExit as exc:  # .quit / .exit [CODE]
            return exc.code if isinstance(exc.code, int) else 0
    return 1 if shell.failed and not shell.interactive else 0
