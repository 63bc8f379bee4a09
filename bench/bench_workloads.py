"""The §7 workloads on local SQLite and on sqlkv, side by side.

Usage:
    python bench/bench_workloads.py [--scale small|full] [--only NAME ...] [--modes A,B]

Modes (``MODES``; adding one is one line):
- ``sqlite-wal``: plain SQLite on a local file, journal_mode=WAL, synchronous=NORMAL: the
  same durability as the embedded store's default (survives a killed process, not a power
  loss), so the fair anchor for ``v2-embedded``;
- ``sqlite-file``: plain SQLite on a local file, journal_mode=DELETE, synchronous=FULL (fsync
  on every commit: a stronger guarantee, shown beside it);
- ``v2-memory``: sqlkv v2 on the in-memory store (an in-process engine);
- ``v2-embedded``: sqlkv v2 on the embedded store in a temporary directory;
- ``v2-embedded-24h``: the same with a 24-hour history retention window
  (``EngineConfig(retention_s=86400)``, docs/history.md): every committed state stays
  readable, so its "stored" column against ``v2-embedded`` is what the window costs;
- ``v2-memory-20ms``: the memory store with 20 ms injected per store round trip
  (``MemoryStore(latency_s=0.02)``);
- ``v2-postgres``, ``v2-etcd``: sqlkv v2 on the PostgreSQL server of ``SQLKV_TEST_PG_URL``
  (a table of its own) and on the etcd cluster of ``SQLKV_TEST_ETCD_URL`` (a key prefix of
  its own; ``scripts/etcd-test-cluster`` starts a 3-member one); left out when unset;
- ``v1-memory``, ``v1-embedded``, ``v1-memory-20ms``: the same three stores under the v1
  format (files as chunked KV, one store transaction per xWrite, no engine). At full scale
  ``v1-memory-20ms`` takes long (v1 pays a round trip per xWrite, setup included): leave
  it out with ``--modes`` when that matters.

Each workload gets a fresh database per mode: ``setup`` (not measured), a reopen when the
workload is cold (measured: a cold start includes its open), then ``run`` (measured). Every
mode's results are checked against the first mode's.

Columns: run time (ms) and its ratios to ``sqlite-wal`` and to ``sqlite-file`` measured in
this same run; client
round trips to the engine during the run (every engine call; ``-`` for local SQLite; for
v1, every store transaction the VFS ran: reads and commits); bytes sent (page bytes in
commits; v1: chunk bytes written, journal included) and received (page bytes fetched; v1:
chunk bytes read) by the client during the run; bytes stored when done (the engine's
``storage_used``; v1: key and value bytes under the database's v1 prefix; the file size
for local SQLite). Output is a markdown table after the environment.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import apsw

import sqlkv
from sqlkv.client import connect
from sqlkv.store import MemoryStore, Store
from sqlkv.vfs.v1.keys import database_range
from sqlkv.workloads import WORKLOADS, Scale, Workload


@dataclass
class Measured:
    seconds: float
    round_trips: int | None
    bytes_sent: int | None
    bytes_received: int | None
    bytes_stored: int
    rows: object


class Target:
    """One database in one mode: ``connect()`` opens it; ``stats``/``stored`` measure it."""

    def connect(self) -> apsw.Connection:
        raise NotImplementedError

    def counters(self, conn: apsw.Connection) -> tuple[int, int, int] | None:
        """(round trips, bytes sent, bytes received) so far on ``conn``; None if unknown."""
        return None

    def stored(self, conn: apsw.Connection) -> int:
        raise NotImplementedError

    def close(self) -> None:
        pass


class SqliteFile(Target):
    def __init__(self, where: Path, name: str, pragmas: str) -> None:
        self.path = where / f"{name}.db"
        self.pragmas = pragmas

    def connect(self) -> apsw.Connection:
        conn = apsw.Connection(str(self.path))
        conn.execute(self.pragmas).fetchall()
        return conn

    def stored(self, conn: apsw.Connection) -> int:
        files = [self.path, self.path.with_name(self.path.name + "-wal")]
        return sum(f.stat().st_size for f in files if f.exists())


class SqlkvV2(Target):
    def __init__(self, store: Store, name: str) -> None:
        self.store, self.name = store, name

    def connect(self) -> apsw.Connection:
        return connect(self.name, self.store)

    def counters(self, conn: apsw.Connection) -> tuple[int, int, int] | None:
        s = conn.sqlkv_stats  # type: ignore[attr-defined]
        return s.round_trips, s.bytes_sent, s.bytes_received

    def stored(self, conn: apsw.Connection) -> int:
        return int(conn.sqlkv_head().storage_used)  # type: ignore[attr-defined]


class SqlkvV2Retained(SqlkvV2):
    """sqlkv v2 through an in-process engine that keeps 24 hours of history."""

    def __init__(self, store: Store, name: str) -> None:
        from sqlkv.engine import Engine, EngineConfig

        super().__init__(store, name)
        self.engine = Engine(store, EngineConfig(retention_s=86_400), compaction=True)

    def connect(self) -> apsw.Connection:
        return connect(self.name, engine=self.engine)

    def close(self) -> None:
        self.engine.close()


class SqlkvV1(Target):
    def __init__(self, store: Store, name: str) -> None:
        self.store, self.name = store, name

    def connect(self) -> apsw.Connection:
        return connect(self.name, self.store, format="v1")

    def counters(self, conn: apsw.Connection) -> tuple[int, int, int] | None:
        s = conn.v1_stats  # type: ignore[attr-defined]
        return s.round_trips, s.bytes_written, s.bytes_read

    def stored(self, conn: apsw.Connection) -> int:
        rows = self.store.transact(lambda tr: tr.get_range(*database_range(self.name)))
        return sum(len(k) + len(v) for k, v in rows)


@dataclass(frozen=True)
class Mode:
    name: str
    describe: str
    target: Callable[[Path, str], contextlib.AbstractContextManager[Target]]


def _sqlite_file(pragmas: str) -> Callable[[Path, str], contextlib.AbstractContextManager[Target]]:
    @contextlib.contextmanager
    def target(where: Path, name: str) -> Iterator[Target]:
        yield SqliteFile(where, name, pragmas)

    return target


def _on_store(
    make_store: Callable[[Path], Store], kind: Callable[[Store, str], Target] = SqlkvV2
) -> Callable[[Path, str], contextlib.AbstractContextManager[Target]]:
    @contextlib.contextmanager
    def target(where: Path, name: str) -> Iterator[Target]:
        store = make_store(where)
        target = kind(store, name)
        try:
            yield target
        finally:
            target.close()
            store.close()

    return target


def _embedded(where: Path) -> Store:
    from sqlkv.store.embedded import EmbeddedStore

    return EmbeddedStore(where / "embedded")


def _server_store(kind: str) -> Callable[[Path], Store]:
    def make(where: Path) -> Store:
        import uuid

        from sqlkv.store import open_store

        if kind == "postgres":
            from sqlkv.store.postgres import PostgresStore

            return _Dropping(PostgresStore(os.environ[PG_ENV], table=f"bench_{uuid.uuid4().hex}"))
        url = os.environ[ETCD_ENV]
        head, _, query = url.partition("?")
        unique = f"{head.rstrip('/')}/bench-{uuid.uuid4().hex[:12]}" + (
            f"?{query}" if query else ""
        )
        return _Dropping(open_store(unique))

    return make


class _Dropping(Store):
    """A server store whose keys go when the benchmark closes it."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner
        super().__init__(limits=inner.limits, retry=inner.retry)
        self.stats = inner.stats
        self.url = inner.url

    def _open_snapshot(self):  # type: ignore[no-untyped-def]
        return self.inner._open_snapshot()

    def close(self) -> None:
        try:
            self.inner.drop()  # type: ignore[attr-defined]
        finally:
            self.inner.close()


PG_ENV, ETCD_ENV = "SQLKV_TEST_PG_URL", "SQLKV_TEST_ETCD_URL"

MODES = [
    Mode(
        "sqlite-wal",
        "local SQLite file, journal WAL, synchronous NORMAL (the embedded store's durability)",
        _sqlite_file("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL"),
    ),
    Mode(
        "sqlite-file",
        "local SQLite file, journal DELETE, synchronous FULL (fsync per commit)",
        _sqlite_file("PRAGMA journal_mode=DELETE; PRAGMA synchronous=FULL"),
    ),
    Mode("v2-memory", "sqlkv v2, memory store", _on_store(lambda where: MemoryStore())),
    Mode("v2-embedded", "sqlkv v2, embedded store", _on_store(_embedded)),
    Mode(
        "v2-embedded-24h",
        "sqlkv v2, embedded store, 24 h history retention window",
        _on_store(_embedded, SqlkvV2Retained),
    ),
    Mode(
        "v2-memory-20ms",
        "sqlkv v2, memory store, 20 ms per store round trip",
        _on_store(lambda where: MemoryStore(latency_s=0.02)),
    ),
    Mode(
        "v2-postgres",
        "sqlkv v2, PostgreSQL ($SQLKV_TEST_PG_URL)",
        _on_store(_server_store("postgres")),
    ),
    Mode(
        "v2-etcd", "sqlkv v2, etcd cluster ($SQLKV_TEST_ETCD_URL)", _on_store(_server_store("etcd"))
    ),
    Mode("v1-memory", "sqlkv v1, memory store", _on_store(lambda where: MemoryStore(), SqlkvV1)),
    Mode("v1-embedded", "sqlkv v1, embedded store", _on_store(_embedded, SqlkvV1)),
    Mode(
        "v1-memory-20ms",
        "sqlkv v1, memory store, 20 ms per store round trip",
        _on_store(lambda where: MemoryStore(latency_s=0.02), SqlkvV1),
    ),
]


def measure(workload: Workload, target: Target, scale: Scale) -> Measured:
    conn = target.connect()
    try:
        if workload.setup is not None:
            workload.setup(conn, scale)
        before = target.counters(conn)
        start = time.perf_counter()
        if workload.cold:  # the reopen is measured too: a cold start is what it is about
            conn.close()
            conn = target.connect()
            before = None if before is None else (0, 0, 0)
        rows = workload.run(conn, scale)
        seconds = time.perf_counter() - start
        after = target.counters(conn)
        spent = None
        if before is not None and after is not None:
            spent = [a - b for a, b in zip(after, before, strict=True)]
        return Measured(
            seconds,
            spent[0] if spent else None,
            spent[1] if spent else None,
            spent[2] if spent else None,
            target.stored(conn),
            rows,
        )
    finally:
        conn.close()


def _size(n: int | None) -> str:
    if n is None:
        return "-"
    for unit, div in (("GB", 10**9), ("MB", 10**6), ("kB", 10**3)):
        if n >= div:
            return f"{n / div:.1f} {unit}"
    return f"{n} B"


def _ratio(seconds: float, anchor: float | None) -> str:
    return "-" if not anchor else f"{seconds / anchor:.2f}"


def environment(scale: Scale, modes: list[Mode]) -> str:
    lines = [
        "## Environment",
        "",
        f"- sqlkv {sqlkv.__version__}, Python {platform.python_version()}, "
        f"apsw {metadata.version('apsw')}, SQLite {apsw.sqlite_lib_version()}",
        f"- {platform.platform()}, {os.cpu_count()} CPUs",
        f"- scale: {scale.name}",
        *(f"- mode `{m.name}`: {m.describe}" for m in modes),
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scale", choices=["small", "full"], default="small")
    parser.add_argument("--only", action="append", metavar="NAME", help="workload (repeatable)")
    parser.add_argument("--modes", help="comma-separated modes (default: all)")
    args = parser.parse_args(argv)
    scale = Scale.FULL if args.scale == "full" else Scale.SMALL
    names = args.only or list(WORKLOADS)
    unknown = [n for n in names if n not in WORKLOADS]
    if unknown:
        print(f"unknown workload(s) {unknown}; valid: {', '.join(WORKLOADS)}", file=sys.stderr)
        return 2
    modes = [
        m
        for m in MODES
        if not (m.name == "v2-postgres" and not os.environ.get(PG_ENV))
        and not (m.name == "v2-etcd" and not os.environ.get(ETCD_ENV))
    ]
    if args.modes:
        wanted = args.modes.split(",")
        modes = [m for m in MODES if m.name in wanted]
        if len(modes) != len(wanted):
            print(f"unknown mode in {wanted}; valid: {[m.name for m in MODES]}", file=sys.stderr)
            return 2

    print(environment(scale, modes))
    print(
        "| workload | mode | run ms | x WAL/NORMAL | x DELETE/FULL | round trips | sent "
        "| received | stored |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    failures = 0
    with tempfile.TemporaryDirectory(prefix="sqlkv-bench-") as tmp:
        for name in names:
            workload = WORKLOADS[name]
            baseline: Measured | None = None
            anchors: dict[str, float] = {}
            for mode in modes:
                where = Path(tmp) / f"{name}-{mode.name}"
                where.mkdir()
                with mode.target(where, name) as target:
                    m = measure(workload, target, scale)
                if baseline is None:
                    baseline = m
                elif m.rows != baseline.rows:
                    failures += 1
                    print(f"<!-- {name} on {mode.name}: results differ -->", file=sys.stderr)
                if mode.name in ("sqlite-wal", "sqlite-file"):
                    anchors[mode.name] = m.seconds
                wal = _ratio(m.seconds, anchors.get("sqlite-wal"))
                full = _ratio(m.seconds, anchors.get("sqlite-file"))
                trips = "-" if m.round_trips is None else str(m.round_trips)
                print(
                    f"| {name} | {mode.name} | {m.seconds * 1000:.1f} | {wal} | {full} | {trips} "
                    f"| {_size(m.bytes_sent)} | {_size(m.bytes_received)} "
                    f"| {_size(m.bytes_stored)} |",
                    flush=True,
                )
    if failures:
        print(f"{failures} result mismatches", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
