"""Store administration: ``sqlkv inspect``, ``compact``, ``list`` and ``delete``.

    sqlkv inspect orders [--json]   # head, deltas, shards, storage, compaction lag
    sqlkv compact orders            # fold every delta into shards now
    sqlkv list [--json]             # every database of the store, v1 and v2
    sqlkv delete orders [--yes]     # remove every key of the database, and no other

``list``, ``compact`` and ``delete`` work on the store itself (``--store``); ``inspect``
also works through an engine server (``--engine``), where it shows the head only. Key
counts come from scanning the database's key range in one snapshot (``scan.py``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from typing import Any

from sqlkv.cli.common import (
    check_store_exists,
    client_config,
    confirm,
    database_missing,
    database_name,
    human_bytes,
    require_store,
    store_config,
)
from sqlkv.config import FORMATS, ClientConfig
from sqlkv.errors import CommandFailed


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "inspect",
        help="show a database's head, deltas, shards, storage and compaction lag",
        description="Show the head of database NAME and count its keys by kind (read-only "
        "snapshot reads). Through an engine server only the head is shown.",
    )
    p.add_argument("name", metavar="NAME", type=database_name)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--format", choices=FORMATS, help="default: v2 if it exists, else v1")
    p.set_defaults(func=cmd_inspect)

    p = sub.add_parser(
        "compact",
        help="fold a database's deltas into shards now",
        description="Run compaction passes on NAME until no delta is left (or a pass "
        "changes nothing), and print what they did.",
    )
    p.add_argument("name", metavar="NAME", type=database_name)
    p.set_defaults(func=cmd_compact)

    p = sub.add_parser(
        "list",
        help="list every database in the store",
        description="List every database of the store, v1 and v2, with its size.",
    )
    p.add_argument("--json", action="store_true", help="print a JSON array")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser(
        "delete",
        help="delete a database: every key of it, and nothing of any other",
        description="Delete database NAME (every format it exists in, or --format). Asks "
        "for confirmation on a terminal; without one, --yes is required.",
    )
    p.add_argument(
        "name", metavar="NAME", help="any name, also one from before the database-name rule"
    )
    p.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    p.add_argument("--format", choices=FORMATS, help="delete only this format's keys")
    p.set_defaults(func=cmd_delete)


# --------------------------------------------------------------------------- inspect


def cmd_inspect(args: argparse.Namespace) -> int:
    """Print the head and key counts of NAME."""
    from sqlkv.errors import DatabaseNotFound

    cfg = client_config(args)
    check_store_exists(cfg)
    if cfg.engine is not None:
        if args.format == "v1":
            require_store(cfg, "inspect --format v1")
        with cfg.open_engine() as opened:
            try:
                head = opened.engine.head(args.name)
            except DatabaseNotFound:
                raise database_missing(args.name, cfg) from None
        report = _v2_report(args.name, cfg, head, None)
    else:
        report = _inspect_store(args.name, cfg, args.format)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(_v2_text(report) if report["format"] == "v2" else _v1_text(report))
    return 0


def _inspect_store(name: str, cfg: ClientConfig, fmt: str | None) -> dict[str, Any]:
    from sqlkv.cli.scan import scan_v1, scan_v2

    with cfg.open_store() as store:
        if fmt in (None, "v2"):
            v2 = scan_v2(store, name)
            if v2 is not None:
                return _v2_report(name, cfg, v2.head, v2)
        if fmt in (None, "v1"):
            v1 = scan_v1(store, name)
            if v1 is not None:
                return {
                    "name": name,
                    "format": "v1",
                    "target": cfg.target,
                    "files": v1.files,
                    "size_bytes": v1.files.get("db"),
                    "keys": {"chunks": v1.chunks.as_dict(), "total_bytes": v1.total_bytes},
                }
    raise database_missing(name, cfg)


def _v2_report(name: str, cfg: ClientConfig, head: Any, scan: Any) -> dict[str, Any]:
    fields = dataclasses.asdict(head)
    fields["last_commit_id"] = head.last_commit_id.hex()
    report: dict[str, Any] = {
        "name": name,
        "format": "v2",
        "target": cfg.target,
        "head": fields,
        "size_bytes": head.db_size_pages * head.page_size,
        "compaction_lag": {
            "txids": head.head_txid - head.materialized_txid,
            "deltas": head.delta_count,
            "bytes": head.delta_bytes,
        },
        "keys": None,
        "accounting_ok": None,
    }
    if scan is not None:
        keys = {kind: fam.as_dict() for kind, fam in sorted(scan.families.items())}
        keys["total_bytes"] = scan.total_bytes
        keys["unknown"] = scan.unknown_keys
        report["keys"] = keys
        report["accounting_ok"] = scan.total_bytes == head.storage_used
    return report


def _v2_text(r: dict[str, Any]) -> str:
    h = r["head"]
    quota = human_bytes(h["storage_quota"]) if h["storage_quota"] else "none"
    lag = r["compaction_lag"]
    lines = [
        f"database        {r['name']!r} (v2) in {r['target']}",
        f"head            generation {h['generation']}, head txid {h['head_txid']}, "
        f"next txid {h['next_txid']}, materialized txid {h['materialized_txid']}",
        f"size            {h['db_size_pages']} pages of {h['page_size']} bytes = "
        f"{human_bytes(r['size_bytes'])} ({r['size_bytes']} bytes)",
        f"storage         {human_bytes(h['storage_used'])} used ({h['storage_used']} bytes), "
        f"quota {quota}",
        f"compaction lag  {lag['txids']} txids ({lag['deltas']} deltas, "
        f"{human_bytes(lag['bytes'])}) not yet folded into shards",
    ]
    k = r["keys"]
    if k is None:
        lines.append(
            "keys            (not counted through an engine server; give --store to count)"
        )
        return "\n".join(lines)
    for kind, label in (
        ("deltas", "txids"),
        ("shards", "shards"),
        ("staged_deltas", "txids"),
        ("pidx", "rows"),
        ("delta_directory", "rows"),
        ("staged", "manifests"),
        ("history", "txids"),
    ):
        fam = k[kind]
        lines.append(
            f"{kind.replace('_', ' '):<16}{fam['objects']} {label}, {fam['keys']} keys, "
            f"{human_bytes(fam['bytes'])}"
        )
    verdict = (
        "keys add up to storage used"
        if r["accounting_ok"]
        else f"MISMATCH: keys hold {k['total_bytes']} bytes, the head says {h['storage_used']}"
    )
    lines.append(f"check           {verdict}")
    return "\n".join(lines)


def _v1_text(r: dict[str, Any]) -> str:
    files = ", ".join(
        f"{role} {size} bytes" for role, size in r["files"].items() if size is not None
    )
    chunks = r["keys"]["chunks"]
    return "\n".join(
        [
            f"database        {r['name']!r} (v1) in {r['target']}",
            f"files           {files or 'none (incomplete: an interrupted delete?)'}",
            f"chunks          {chunks['keys']} keys in {chunks['objects']} files, "
            f"{human_bytes(r['keys']['total_bytes'])} stored",
        ]
    )


# --------------------------------------------------------------------------- compact


def cmd_compact(args: argparse.Namespace) -> int:
    """Fold NAME's deltas into shards until none is left."""
    from sqlkv.engine import Engine
    from sqlkv.errors import DatabaseNotFound

    cfg = store_config(args, "compact")
    started = time.perf_counter()
    with cfg.open_store() as store:
        engine = Engine(store)
        try:
            before = engine.head(args.name)
        except DatabaseNotFound:
            raise database_missing(args.name, cfg) from None
        passes = pages = deltas = shards = 0
        while True:
            out = engine.compact(args.name)
            passes += 1
            pages += out.pages_folded
            deltas += out.deltas_deleted
            shards += out.shards_written
            if out.head.delta_count == 0 or not out.changed:
                break
        after = out.head
    print(
        f"compacted {args.name!r} in {passes} pass{'es' if passes > 1 else ''} "
        f"({time.perf_counter() - started:.2f} s): {pages} pages folded into {shards} shard "
        f"writes, {deltas} deltas deleted; live deltas {before.delta_count} -> "
        f"{after.delta_count}, lag {before.head_txid - before.materialized_txid} -> "
        f"{after.head_txid - after.materialized_txid} txids, storage "
        f"{human_bytes(before.storage_used)} -> {human_bytes(after.storage_used)}"
    )
    return 0


# --------------------------------------------------------------------------- list


def cmd_list(args: argparse.Namespace) -> int:
    """Print every database of the store."""
    from sqlkv.cli.scan import list_databases

    cfg = store_config(args, "list")
    with cfg.open_store() as store:
        entries = sorted(list_databases(store), key=lambda e: (e.name, e.format))
    if args.json:
        print(json.dumps([e.as_dict() for e in entries], indent=2))
        return 0
    if not entries:
        print(f"no databases in {cfg.target}")
        return 0
    width = max(4, *(len(e.name) for e in entries))
    print(f"{'NAME':<{width}}  FORMAT  {'SIZE':>10}  {'STORED':>10}")
    for e in entries:
        size = human_bytes(e.size_bytes) if e.size_bytes is not None else "-"
        stored = human_bytes(e.storage_used) if e.storage_used is not None else "-"
        flag = "" if e.complete else "  (incomplete: run 'sqlkv delete' to remove it)"
        if e.note:
            flag = f"  ({e.note})"
        print(f"{e.name:<{width}}  {e.format:<6}  {size:>10}  {stored:>10}{flag}")
    return 0


# --------------------------------------------------------------------------- delete


def cmd_delete(args: argparse.Namespace) -> int:
    """Remove every key of NAME after confirmation."""
    from sqlkv.cli.scan import Recreated, db_range, delete_database

    cfg = store_config(args, "delete")
    with cfg.open_store() as store:
        wanted = [args.format] if args.format else ["v2", "v1"]

        def present(tr: Any) -> list[str]:
            return [
                f for f in wanted if tr.get_range(*db_range(f, args.name), limit=1, snapshot=True)
            ]

        formats = store.transact(present)
        if not formats:
            raise database_missing(args.name, cfg)
        what = f"database {args.name!r} ({' and '.join(formats)}) from {cfg.target}"
        if not confirm(
            f"Delete {what}? This cannot be undone.",
            assume_yes=args.yes,
            what=f"delete database {args.name!r}",
        ):
            print("not deleted", file=sys.stderr)
            return 1
        for fmt in formats:
            try:
                result = delete_database(store, args.name, fmt)
            except Recreated:
                raise CommandFailed(
                    f"database {args.name!r} was opened again while it was being deleted (and "
                    "so re-created); stop its clients and run 'sqlkv delete' again"
                ) from None
            print(
                f"deleted {args.name!r} ({fmt}): {result.keys} keys, "
                f"{human_bytes(result.bytes)} in {result.transactions} transactions"
            )
    return 0
