"""``sqlkv retention NAME [--window DURATION] [--json]``: show or set a database's history
retention window (docs/history.md §5).

Every committed txid of the last DURATION stays readable (``sqlkv.connect(at=...)``,
restore, fork); the retained history counts in the database's storage and quota. A shorter
window (or 0) frees the history outside it at the next compaction pass.
"""

from __future__ import annotations

import argparse
import json
import re

from sqlkv.cli.common import database_missing, database_name, store_config

_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")


def parse_duration(text: str) -> float:
    """Seconds in ``text``: a number with an optional unit s, m, h, d or w (``24h``)."""
    match = _DURATION.match(text.lower())
    if not match:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a duration: give a number of seconds or a number "
            "with a unit s, m, h, d or w (for example 24h, 7d, 0)"
        )
    return float(match.group(1)) * _UNITS[match.group(2)]


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "retention",
        help="show or set how long a database keeps every past state readable",
        description="Show the history retention window of v2 database NAME, or set it with "
        "--window (24h, 7d, 0 = none). Inside the window every committed txid stays "
        "readable; the history counts in the database's storage and quota, and a shorter "
        "window frees it at the next compaction pass.",
    )
    p.add_argument("name", metavar="NAME", type=database_name)
    p.add_argument("--window", type=parse_duration, help="new window (24h, 30m, 7d, 0)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_retention)


def cmd_retention(args: argparse.Namespace) -> int:
    from sqlkv.engine import Engine
    from sqlkv.errors import DatabaseNotFound

    cfg = store_config(args, "retention")
    with cfg.open_store() as store:
        engine = Engine(store)
        try:
            if args.window is not None:
                engine.set_retention(args.name, args.window)
            window = engine.retention(args.name)
        except DatabaseNotFound:
            raise database_missing(args.name, cfg) from None
    if args.json:
        print(json.dumps({"db": args.name, "window_s": window}))
    else:
        what = f"{window:g} s" + (f" ({window / 3600:g} h)" if window >= 3600 else "")
        print(f"retention window of {args.name!r}: {what if window else 'none (0)'}")
    return 0
