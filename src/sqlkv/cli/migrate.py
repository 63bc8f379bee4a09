"""``sqlkv migrate NAME``: convert a v1 database into the v2 format (``sqlkv.migrate``).

Progress goes to stderr (redrawn on one line when stderr is a terminal, one line per
finished phase otherwise); the summary goes to stdout. Running it again after an
interruption resumes safely; running it after it completed only says so.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import TYPE_CHECKING, TextIO

from sqlkv.cli.common import database_name

if TYPE_CHECKING:
    from sqlkv.migrate import MigrationReport

# sqlkv.migrate's DEFAULT_BATCH_PAGES and MAX_BATCH_PAGES (tests/cli/test_startup.py checks
# they agree): named here so that registering the command imports no engine (docs/cli.md)
DEFAULT_BATCH_PAGES = 1024
MAX_BATCH_PAGES = 4096

_PHASES = {
    "stage": "copying pages",
    "digest": "reading the source",
    "verify": "verifying pages",
    "finalize": "finalizing",
    "record": "recording",
    "delete": "deleting the v1 files",
}


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser(
        "migrate",
        help="convert a v1 database into the v2 format (resumable, verified); "
        "the v1 data is kept unless --delete-source",
        description="Copy v1 database NAME into the v2 database of the same name, verify "
        "the copy page by page and with PRAGMA integrity_check, and record that it is done. "
        "Run it again after an interruption to finish. The v1 data stays in place unless "
        "--delete-source is given.",
    )
    parser.add_argument("name", metavar="NAME", type=database_name, help="the database to migrate")
    parser.add_argument(
        "--delete-source",
        action="store_true",
        help="delete the v1 files once the v2 copy is verified",
    )
    parser.add_argument(
        "--batch-pages",
        type=_batch_pages,
        default=DEFAULT_BATCH_PAGES,
        metavar="N",
        help=f"pages per store read and per staged batch (default {DEFAULT_BATCH_PAGES})",
    )
    parser.set_defaults(func=cmd_migrate)


def _batch_pages(text: str) -> int:
    """``--batch-pages``: an integer within 1..MAX_BATCH_PAGES (else a usage error, exit 2)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= MAX_BATCH_PAGES:
        raise argparse.ArgumentTypeError(f"must be an integer within 1..{MAX_BATCH_PAGES}")
    return value


class ProgressLine:
    """A text progress indicator on ``out``: redrawn in place on a terminal, at most every
    ``interval_s``; elsewhere one line when each phase finishes."""

    def __init__(self, out: TextIO, name: str, *, interval_s: float = 0.1) -> None:
        self.out = out
        self.name = name
        self.tty = out.isatty()
        self.interval_s = interval_s
        self._last = 0.0
        self._open = False

    def __call__(self, phase: str, done: int, total: int) -> None:
        finished = done >= total
        now = time.monotonic()
        if not finished and (not self.tty or now - self._last < self.interval_s):
            return
        self._last = now
        label = _PHASES.get(phase, phase)
        if phase in ("stage", "digest", "verify"):
            pct = 100 * done // total if total else 100
            text = f"migrate {self.name}: {label} {done}/{total} pages ({pct}%)"
        else:
            text = f"migrate {self.name}: {label}{' done' if finished else '...'}"
        if self.tty:
            self.out.write(f"\r\x1b[K{text}")
            self._open = not finished
            if finished:
                self.out.write("\n")
        else:
            self.out.write(text + "\n")
        self.out.flush()

    def close(self) -> None:
        """End a line left open by an interrupted phase."""
        if self._open:
            self.out.write("\n")
            self._open = False


def summary(report: MigrationReport) -> str:
    """The line printed when the migration finished."""
    from sqlkv.migrate import Outcome

    where = "deleted" if report.source_deleted else "kept"
    if report.outcome is Outcome.ALREADY_DONE:
        return f"{report.name}: already migrated ({report.pages} pages); v1 data {where}"
    how = (
        "copied and verified"
        if report.outcome is Outcome.MIGRATED
        else "verified (copied by an interrupted earlier run)"
    )
    journal = ", v1 hot journal rolled back first" if report.journal_rolled_back else ""
    return (
        f"{report.name}: {report.pages} pages {how} in {report.seconds:.1f} s "
        f"({report.pages_stored} stored in {report.stage_calls} batches, attempt "
        f"{report.attempts}{journal}); sha256 {report.checksum[:16]}; v1 data {where}"
    )


def cmd_migrate(args: argparse.Namespace) -> int:
    """Migrate one database; refusals and failures are one line on stderr, exit 1."""
    import apsw

    from sqlkv.migrate import migrate_v1_to_v2
    from sqlkv.store import open_store

    progress = ProgressLine(sys.stderr, args.name)
    with open_store(args.store) as store:
        try:
            report = migrate_v1_to_v2(
                args.name,
                store,
                batch_pages=args.batch_pages,
                progress=progress,
                delete_source=args.delete_source,
            )
        except apsw.Error as exc:  # the v1 source failed under SQLite (store I/O, corruption)
            progress.close()
            print(f"sqlkv: error: reading v1 database {args.name!r}: {exc}", file=sys.stderr)
            return 1
        finally:
            progress.close()
    print(summary(report))
    return 0
