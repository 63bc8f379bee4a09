"""The subcommands. Each is one function taking the parsed arguments and returning an exit code."""

from __future__ import annotations

import argparse
import time

from sqlkv.cli import serve
from sqlkv.store import open_store


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    demo = sub.add_parser("demo", help="run a short workload on the store and print what happened")
    demo.set_defaults(func=cmd_demo)
    serve.register(sub)


def cmd_demo(args: argparse.Namespace) -> int:
    store = open_store(args.store)
    with store:
        start = time.perf_counter()
        for i in range(100):
            store.transact(lambda tr, i=i: tr.set(b"demo/%04d" % i, b"value %d" % i))
        rows = store.transact(lambda tr: tr.get_range(b"demo/", b"demo0"))
        elapsed = time.perf_counter() - start
        print(f"store: {store.url}")
        print(f"100 commits and a range read of {len(rows)} keys in {elapsed * 1000:.1f} ms")
        s = store.stats
        print(
            f"transactions={s.transactions} round_trips={s.round_trips} "
            f"bytes_written={s.bytes_written} bytes_read={s.bytes_read}"
        )
    return 0
