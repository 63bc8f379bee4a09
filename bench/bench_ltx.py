"""Throughput of the LTX page codec (sqlkv.ltx): encode, decode and single-page access.

Usage::

    python bench/bench_ltx.py [--page-size 4096] [--pages 1000] [--repeat 7] [--seed 1]
                              [--clock wall|cpu]

(before ``pip install -e .``, run it as ``PYTHONPATH=src python bench/bench_ltx.py``)

It prints its environment, then for two page kinds, "compressible" (SQLite table leaf pages of
repetitive text rows) and "random" (incompressible bytes), the size ratio of the LTX file to the raw
pages, and throughput in MB/s of RAW page bytes (page_size x pages, 1 MB = 10**6 bytes), best of
``--repeat`` runs:

- encode, NoChecksum delta (Litestream style: no rolling checksum);
- encode, checksum-tracked snapshot (also computes the rolling checksum of every page);
- decode with full verification (file CRC, and the rolling checksum for tracked snapshots);
- decode with ``verify_checksum=False``.

Then the latency of ``read_page`` for one random page, with the index parsed once
(``read_page_index``) and without (the index is parsed on every call), and of ``read_page_index``.

``--clock cpu`` times with this process's CPU time instead of wall time: the codec is
single-threaded and CPU-bound, so on a shared, busy machine CPU time gives the stable figure.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import platform
import random
import struct
import sys
import time
from collections.abc import Callable

import lz4

from sqlkv.errors import LtxError
from sqlkv.ltx import (
    HEADER_FLAG_NO_CHECKSUM,
    LtxHeader,
    decode,
    encode,
    read_page,
    read_page_index,
)

Pages = list[tuple[int, bytes]]


def table_leaf_page(rng: random.Random, page_size: int) -> bytes:
    """A SQLite-like table b-tree leaf: header, cell pointers, free space, then text rows."""
    cells: list[bytes] = []
    used = 8
    rowid = rng.randrange(1, 1 << 20)
    while True:
        name = f"customer-{rng.randrange(10_000):05d}"
        email = f"{name}@example.com"
        city = rng.choice(["Lisbon", "Berlin", "Osaka", "Toronto", "Nairobi"])
        when = f"2024-0{rng.randrange(1, 10)}-1{rng.randrange(10)}"
        record = f"{name}|{email}|{city}|{rng.randrange(100_000)}|{when}".encode()
        cell = bytes([len(record) & 0x7F, rowid & 0x7F]) + record
        if used + len(cell) + 2 > page_size:
            break
        cells.append(cell)
        used += len(cell) + 2
        rowid += 1
    content = b"".join(reversed(cells))
    start = page_size - len(content)
    pointers = bytearray()
    offset = page_size
    for cell in cells:
        offset -= len(cell)
        pointers += struct.pack(">H", offset)
    header = struct.pack(">BHHHB", 0x0D, 0, len(cells), start % 65536, 0)
    page = header + pointers
    return page + bytes(start - len(page)) + content


def make_pages(kind: str, page_size: int, count: int, seed: int) -> Pages:
    rng = random.Random(seed)
    if kind == "random":
        return [(pgno, rng.randbytes(page_size)) for pgno in range(1, count + 1)]
    return [(pgno, table_leaf_page(rng, page_size)) for pgno in range(1, count + 1)]


CLOCKS: dict[str, Callable[[], float]] = {"wall": time.perf_counter, "cpu": time.process_time}


def best_seconds(run: Callable[[], object], repeat: int, clock: Callable[[], float]) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = clock()
        run()
        best = min(best, clock() - start)
    return best


def bench_kind(kind: str, args: argparse.Namespace) -> None:
    pages = make_pages(kind, args.page_size, args.pages, args.seed)
    raw = args.page_size * args.pages
    count = len(pages)
    delta = LtxHeader(
        flags=HEADER_FLAG_NO_CHECKSUM,
        page_size=args.page_size,
        commit=count,
        min_txid=2,
        max_txid=2,
    )
    snapshot = LtxHeader(flags=0, page_size=args.page_size, commit=count)
    delta_file = encode(delta, pages)
    snapshot_file = encode(snapshot, pages)

    def mbps(run: Callable[[], object]) -> str:
        return f"{raw / best_seconds(run, args.repeat, CLOCKS[args.clock]) / 1e6:9.0f}"

    print(f"\n{kind} pages: LTX file / raw pages = {len(delta_file) / raw:.3f}")
    print(f"  {'operation':<44} {'MB/s':>9}")
    rows = [
        ("encode, NoChecksum delta", lambda: encode(delta, pages)),
        ("encode, tracked snapshot (+ rolling checksum)", lambda: encode(snapshot, pages)),
        ("decode, NoChecksum delta, verified", lambda: decode(delta_file)),
        ("decode, tracked snapshot, verified", lambda: decode(snapshot_file)),
        ("decode, verify_checksum=False", lambda: decode(delta_file, verify_checksum=False)),
    ]
    for label, run in rows:
        print(f"  {label:<44} {mbps(run)}")

    rng = random.Random(args.seed)
    probes = [rng.randrange(1, count + 1) for _ in range(args.probes)]
    index = read_page_index(delta_file)

    def per_call_us(run: Callable[[], object], calls: int) -> float:
        return best_seconds(run, args.repeat, CLOCKS[args.clock]) / calls * 1e6

    with_index = per_call_us(lambda: [read_page(delta_file, p, index) for p in probes], len(probes))
    fewer = probes[: max(1, len(probes) // 10)]
    without_index = per_call_us(lambda: [read_page(delta_file, p) for p in fewer], len(fewer))
    index_us = per_call_us(lambda: read_page_index(delta_file), 1)
    print(f"  {'read_page, random page, index given':<44} {with_index:9.1f} us")
    print(f"  {'read_page, random page, index parsed per call':<44} {without_index:9.1f} us")
    print(f"  {'read_page_index (' + str(count) + ' entries)':<44} {index_us:9.1f} us")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--page-size", type=int, default=4096)
    parser.add_argument("--pages", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=7, help="runs per measurement (best kept)")
    parser.add_argument("--probes", type=int, default=1000, help="random pages for read_page")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="wall", help="timer to use")
    args = parser.parse_args(argv)
    if args.pages < 1 or args.repeat < 1 or args.probes < 1:
        parser.error("--pages, --repeat and --probes must be at least 1")
    raw_mb = args.page_size * args.pages / 1e6
    print(
        f"python {platform.python_version()} ({platform.python_implementation()}), {sys.platform}"
    )
    print(f"cpu {platform.machine()} {platform.processor() or '?'}, {os.cpu_count()} cores")
    lz4_version = f"{getattr(lz4, '__version__', '?')} (liblz4 {lz4.library_version_string()})"
    print(f"lz4 {lz4_version}, anycrc {importlib.metadata.version('anycrc')}")
    print(f"page size {args.page_size}, {args.pages} pages per file ({raw_mb:.1f} MB raw)")
    print(
        f"best of {args.repeat} runs, {args.clock} clock; MB/s of raw page bytes (1 MB = 10**6 B)"
    )
    try:
        for kind in ("compressible", "random"):
            bench_kind(kind, args)
    except LtxError as exc:
        print(f"bench_ltx: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
