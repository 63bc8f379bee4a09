"""``sqlkv import FILE.db NAME`` and ``sqlkv export NAME FILE.db``.

    sqlkv import orders.db orders            # a plain SQLite file into the store
    sqlkv import --replace orders.db orders  # overwrite (one transaction up to --txn-mib)
    sqlkv export orders orders-copy.db       # back out as a plain SQLite file
    sqlkv export --force --check orders orders-copy.db

Both show a progress bar on stderr when it is a terminal (``--progress`` / ``--no-progress``
to choose) and print one summary line on stdout. How pages move: ``importer.py``,
``exporter.py``, ``source.py``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from sqlkv.cli.common import (
    check_store_exists,
    client_config,
    database_missing,
    database_name,
    human_bytes,
    require_store,
    v1_exists,
)
from sqlkv.cli.progress import Progress
from sqlkv.config import FORMATS, ClientConfig
from sqlkv.errors import DatabaseNotFound

if TYPE_CHECKING:
    from sqlkv.engine import Engine
    from sqlkv.engine.head import Head

MiB = 1024 * 1024
IMPORT_TXN_MIB = 256
"""``--txn-mib``'s default: ``importer.ImportOptions.txn_bytes`` in MiB (tests/cli/test_startup.py
checks they agree), named here so that registering the command imports no engine."""


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive integer")
    return value


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    imp = sub.add_parser(
        "import",
        help="load a plain SQLite file into a database",
        description="Load a plain SQLite file into database NAME, reading it page by page. "
        "A file with another page size (or in WAL mode) is first copied to 4096-byte pages "
        "with VACUUM INTO a temporary file. Up to --txn-mib the import is one transaction.",
    )
    imp.add_argument("file", metavar="FILE.db", type=Path, help="the SQLite file to load")
    imp.add_argument("name", metavar="NAME", type=database_name, help="the database to create")
    imp.add_argument("--replace", action="store_true", help="overwrite NAME if it exists")
    imp.add_argument(
        "--check", action="store_true", help="run PRAGMA integrity_check on FILE first"
    )
    imp.add_argument(
        "--tmp-dir",
        type=Path,
        metavar="DIR",
        help="where to convert a file that needs it (default: the system's temporary directory)",
    )
    imp.add_argument(
        "--txn-mib",
        type=positive_int,
        default=IMPORT_TXN_MIB,
        metavar="MIB",
        help="largest transaction, in MiB of pages (default %(default)s); a larger file is "
        "imported in several, and reads as 'not a database' until the last one lands",
    )
    imp.add_argument(
        "--no-compact",
        action="store_true",
        help="leave the new pages as deltas (default: an in-process engine folds them into "
        "shards at the end; an engine server compacts on its own)",
    )
    _progress_flag(imp)
    imp.set_defaults(func=cmd_import)

    exp = sub.add_parser(
        "export",
        help="write a database out as a plain SQLite file",
        description="Write database NAME to FILE.db, a plain SQLite file any SQLite opens. "
        "The database is read without taking it over; the file appears whole or not at all.",
    )
    exp.add_argument("name", metavar="NAME", type=database_name, help="the database to export")
    exp.add_argument("file", metavar="FILE.db", type=Path, help="the file to write")
    exp.add_argument("--force", action="store_true", help="overwrite FILE.db if it exists")
    exp.add_argument(
        "--check", action="store_true", help="run PRAGMA integrity_check on the file written"
    )
    exp.add_argument("--format", choices=FORMATS, help="the database's format (default v2)")
    _progress_flag(exp)
    exp.set_defaults(func=cmd_export)


def _progress_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="show a progress bar on stderr (default: when stderr is a terminal)",
    )


def _note(text: str) -> None:
    print(f"sqlkv: {text}", file=sys.stderr)


def cmd_import(args: argparse.Namespace) -> int:
    """Load FILE.db into NAME through the configured engine."""
    from sqlkv.cli.importer import ImportOptions, import_pages
    from sqlkv.cli.source import SourceDb
    from sqlkv.engine import Engine
    from sqlkv.engine.config import PAGE_SIZE

    cfg = client_config(args)
    options = ImportOptions(replace=args.replace, txn_bytes=args.txn_mib * MiB)
    started = time.perf_counter()
    compacted = ""
    with (
        SourceDb.open(args.file, tmp_dir=args.tmp_dir, check=args.check, note=_note) as source,
        cfg.open_engine() as opened,
    ):
        total = source.page_count * PAGE_SIZE
        with Progress(f"import {args.name}", total, enabled=args.progress) as bar:
            result = import_pages(
                opened.engine, args.name, source, options, advance=bar.advance, target=cfg.target
            )
        seconds = time.perf_counter() - started
        if isinstance(opened.engine, Engine) and not args.no_compact:
            at = time.perf_counter()
            _compact(opened.engine, args.name, total, args.progress)
            compacted = f"; compacted in {time.perf_counter() - at:.2f} s"
    converted = (
        f", converted from {source.converted_from}-byte pages" if source.converted_from else ""
    )
    txns = f"{result.transactions} transaction{'s' if result.transactions > 1 else ''}"
    print(
        f"imported {args.file} into {args.name!r}{' (replaced)' if result.replaced else ''}: "
        f"{source.page_count} pages, {human_bytes(total)} in {seconds:.2f} s "
        f"({total / max(seconds, 1e-9) / 1e6:.1f} MB/s), {txns}{converted}; "
        f"head txid {result.head.head_txid}{compacted}"
    )
    return 0


def _compact(engine: Engine, name: str, total: int, progress: bool | None) -> None:
    """Fold the imported deltas into shards, pass by pass, with a bar of its own (a large
    import spends seconds here)."""
    from sqlkv.engine.config import PAGE_SIZE

    with Progress(f"compact {name}", total, enabled=progress) as bar:
        while True:
            out = engine.compact(name)
            bar.advance(out.pages_folded * PAGE_SIZE)
            if out.head.delta_count == 0 or not out.changed:
                bar.done = max(bar.done, bar.total)  # what was left needed no folding
                return


def cmd_export(args: argparse.Namespace) -> int:
    """Write NAME to FILE.db, atomically."""
    from sqlkv.cli.exporter import atomic_target, check_file, check_target, export_v2
    from sqlkv.engine.config import PAGE_SIZE

    cfg = client_config(args, format=args.format)
    check_target(args.file, args.force)
    check_store_exists(cfg)
    started = time.perf_counter()
    if cfg.format == "v1":
        pages = _export_v1(args, cfg)
        txid = ""
    else:
        with cfg.open_engine() as opened:
            try:
                opened.engine.head(args.name)
            except DatabaseNotFound:
                raise database_missing(args.name, cfg) from None
            with (
                Progress(f"export {args.name}", 0, enabled=args.progress) as bar,
                atomic_target(args.file) as tmp,
            ):

                def start(head: Head) -> None:
                    bar.done = 0
                    bar.set_total(head.db_size_pages * PAGE_SIZE)

                head = export_v2(opened.engine, args.name, tmp, start=start, advance=bar.advance)
                check_file(tmp, args.check)
        pages = head.db_size_pages
        txid = f"; head txid {head.head_txid}"
    seconds = time.perf_counter() - started
    total = pages * PAGE_SIZE
    print(
        f"exported {args.name!r} to {args.file}: {pages} pages, {human_bytes(total)} in "
        f"{seconds:.2f} s ({total / max(seconds, 1e-9) / 1e6:.1f} MB/s)"
        f"{'; integrity_check ok' if args.check else ''}{txid}"
    )
    return 0


def _export_v1(args: argparse.Namespace, cfg: ClientConfig) -> int:
    from sqlkv.cli.exporter import atomic_target, check_file, export_v1
    from sqlkv.engine.config import PAGE_SIZE
    from sqlkv.vfs.v1 import connect_v1

    require_store(cfg, "export --format v1")
    store = cfg.open_store()
    try:
        if not v1_exists(store, args.name):
            raise database_missing(args.name, cfg)
        conn = connect_v1(args.name, store)
        try:
            with (
                Progress(f"export {args.name}", 0, enabled=args.progress) as bar,
                atomic_target(args.file) as tmp,
            ):

                def advance(done: int, total: int) -> None:
                    bar.total = total * PAGE_SIZE
                    bar.advance(done * PAGE_SIZE - bar.done)

                pages = export_v1(conn, tmp, advance)
                check_file(tmp, args.check)
        finally:
            conn.close()
    finally:
        store.close()
    return pages
